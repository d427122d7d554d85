"""log_gate on real reports: into memory, and once into a real offline wandb run."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from collapse_callbacks import CollapseGate, GateReport, Status
from collapse_callbacks.detector import DIMENSIONS, MODEL_DIMENSIONS
from collapse_callbacks.errors import MissingDependencyError
from collapse_callbacks.tracking.histograms import (
    column_histogram,
    numeric_edges,
    worst_column_histograms,
)
from collapse_callbacks.tracking.sinks import (
    ALERT_TITLE,
    ARTIFACT_FILE,
    ARTIFACT_NAME,
    ARTIFACT_TYPE,
    CHART_FIELDS,
    CHART_SPEC,
    CHART_TABLE_SUFFIX,
    FAILING_COLUMNS,
    FAILING_TABLE_KEY,
    HISTOGRAM_COLUMNS,
    HISTOGRAM_TABLE_KEY,
    SCORE_KEY,
    VERDICT_KEY,
    MemorySink,
    WandbSink,
    diversity_key,
    failing_rows,
    find_wandb_run,
    histogram_key,
    log_gate,
    status_key,
)
from tracking.reports import SHRUNK
from tracking.wandb_offline import only_wandb_031


def _logged(checked, *, aborted: bool, step: int | None = 3) -> MemorySink:
    sink = MemorySink()
    log_gate(sink, checked.report, checked.histograms, aborted=aborted, step=step)
    return sink


def _spread(positions, shares) -> float:
    """Standard deviation of a histogram read as a distribution on its bin midpoints."""
    x, w = np.asarray(positions), np.asarray(shares)
    mean = np.sum(w * x)
    return float(np.sqrt(np.sum(w * (x - mean) ** 2)))


# --------------------------------------------------------------------------- memory sink


def test_scalars_and_summary_of_a_collapsed_report(collapsed):
    report = collapsed.report
    sink = _logged(collapsed, aborted=False)
    assert sink.scalars[SCORE_KEY] == pytest.approx(report.score)
    assert report.score < 50
    assert sink.scalars["collapse_gate/collapsed"] == 1
    assert sink.scalars["collapse_gate/shift"] == int(report.shift)
    for name in DIMENSIONS:
        key = f"collapse_gate/{name}"
        if name in MODEL_DIMENSIONS:  # no model here: not run, no score, but a status
            assert key not in sink.scalars
            assert sink.summary[status_key(name)] == "not run"
        else:
            assert sink.scalars[key] == pytest.approx(report.dimensions[name].score)
            assert sink.summary[status_key(name)] == report.dimensions[name].status.value
    assert sink.summary[status_key("distribution_fidelity")] == "fail"
    assert sink.scalars["collapse_gate/diversity"] == pytest.approx(report.diversity.score)
    # The diversity figures the report explains itself with: recall collapsed with the tails.
    statistics = report.diversity.statistics
    assert sink.scalars[diversity_key("recall")] == pytest.approx(statistics["recall"])
    assert statistics["recall"] < statistics["recall_reference"] - 0.2
    assert sink.scalars[diversity_key("distinct_ratio[body_mass_g]")] == pytest.approx(
        statistics["distinct_ratio[body_mass_g]"]
    )
    assert all(math.isfinite(v) for v in sink.scalars.values())
    assert sink.summary[VERDICT_KEY] == "collapsed"
    assert sink.history == [(3, sink.scalars)]


def test_failing_columns_table_names_the_shrunk_columns_with_sentences(collapsed):
    report = collapsed.report
    table = _logged(collapsed, aborted=False).tables[FAILING_TABLE_KEY]
    assert table.columns == FAILING_COLUMNS
    failed = [r for r in [*report.dimensions.values(), report.diversity] if r.status is Status.FAIL]
    assert len(table.rows) == sum(len(r.firing) for r in failed) > len(SHRUNK)
    rows = [dict(zip(table.columns, row)) for row in table.rows]
    assert {r["dimension"] for r in rows} == {r.name for r in failed}
    spread = [
        r for r in rows if r["dimension"] == "distribution_fidelity" and r["signal"] == "spread"
    ]
    assert {r["column"] for r in spread} == set(SHRUNK)
    for row in spread:
        assert f"`{row['column']}` is narrower in the candidate" in row["sentence"]
        assert row["kind"] == "narrowing"
        assert 0.3 < row["effect"] < 0.7  # the spread was halved
        assert row["p_value"] < 1e-4
    # Row-level signals (the classifier test) have no column.
    assert any(r["column"] is None for r in rows if r["dimension"] == "generalization_gap")


def test_histograms_show_the_shrunk_columns_narrower(collapsed):
    sink = _logged(collapsed, aborted=False)
    histograms = collapsed.histograms
    # distribution_fidelity's drivers, worst first: the shrunk columns.
    drivers = collapsed.report.dimensions["distribution_fidelity"].drivers
    assert [h.column for h in histograms] == list(drivers[: len(histograms)])
    assert sorted(h.column for h in histograms) == sorted(SHRUNK)
    assert sink.histograms == {histogram_key(i): h for i, h in enumerate(histograms, 1)}
    for h in histograms:
        assert h.kind == "numeric"
        assert len(h.edges_or_categories) == 31 and len(h.reference) == len(h.candidate) == 30
        assert sum(h.reference) == pytest.approx(1.0) and sum(h.candidate) == pytest.approx(1.0)
        assert min(h.reference + h.candidate) >= 0
        ratio = _spread(h.positions, h.candidate) / _spread(h.positions, h.reference)
        assert 0.35 < ratio < 0.7, (h.column, ratio)
        # The outer edges reach both sides' extremes: nothing falls outside.
        column = collapsed.candidate_frame[h.column].dropna()
        assert h.edges_or_categories[0] <= column.min()
        assert h.edges_or_categories[-1] >= column.max()
    table = sink.tables[HISTOGRAM_TABLE_KEY]
    assert table.columns == HISTOGRAM_COLUMNS
    assert len(table.rows) == 30 * len(histograms)
    assert table.rows[0] == (
        histograms[0].column,
        histograms[0].labels[0],
        *(
            histograms[0].reference[0],
            histograms[0].candidate[0],
        ),
    )


def test_alert_only_when_the_run_is_aborted(collapsed):
    assert _logged(collapsed, aborted=False).alerts == []
    (alert,) = _logged(collapsed, aborted=True).alerts
    assert alert.title == ALERT_TITLE and alert.level == "ERROR"
    lines = alert.text.splitlines()
    assert lines[:3] == list(collapsed.report.reasons[:3])
    assert (
        lines[3]
        == f"... and {len(collapsed.report.reasons) - 3} more in the {ARTIFACT_NAME} artifact"
    )


def test_the_artifact_is_the_full_report(collapsed):
    (artifact,) = _logged(collapsed, aborted=False).artifacts
    assert (artifact.name, artifact.kind, artifact.filename) == (
        ARTIFACT_NAME,
        ARTIFACT_TYPE,
        ARTIFACT_FILE,
    )
    back = GateReport.from_json(artifact.text)
    assert back.score == pytest.approx(collapsed.report.score)
    assert back.reasons == collapsed.report.reasons
    assert artifact.metadata["verdict"] == "collapsed"


def test_a_real_split_passes_with_an_empty_failing_table(passing):
    report = passing.report
    assert not report.collapsed and not report.shift
    sink = _logged(passing, aborted=False, step=None)
    assert sink.summary[VERDICT_KEY] == "pass"
    assert sink.scalars["collapse_gate/collapsed"] == 0
    assert sink.scalars[SCORE_KEY] > 90
    assert sink.tables[FAILING_TABLE_KEY].rows == ()
    assert sink.alerts == [] and sink.history[0][0] is None
    # A passing report still shows its least comfortable columns.
    assert len(passing.histograms) == 4
    for h in passing.histograms:
        assert sum(h.candidate) == pytest.approx(1.0)
        ratio = _spread(h.positions, h.candidate) / _spread(h.positions, h.reference)
        assert 0.7 < ratio < 1.4, (h.column, ratio)


# --------------------------------------------------------------------------- histograms


def test_categorical_and_boolean_histograms(penguins):
    frame = penguins.assign(heavy=penguins["body_mass_g"].fillna(0) > 4500)
    reference, candidate = frame.iloc[:200], frame.iloc[200:]
    comparison, _ = CollapseGate(reference, seed=0).compare(candidate)
    ref, cand = comparison.reference, comparison.candidate

    species = column_histogram("species", ref, cand, bins=30)
    assert species.kind == "categorical"
    assert set(species.edges_or_categories) == {"Adelie", "Gentoo", "Chinstrap"}
    counts = reference["species"].value_counts(normalize=True)
    for label, share in zip(species.edges_or_categories, species.reference):
        assert share == pytest.approx(counts.get(label, 0.0))
    # The file is sorted by species: Adelie only in the reference, Chinstrap only in the
    # candidate; both still get a bin on both sides.
    assert species.candidate[species.edges_or_categories.index("Adelie")] == 0
    assert species.reference[species.edges_or_categories.index("Chinstrap")] == 0

    pooled = column_histogram("species", ref, cand, bins=2)
    assert pooled.edges_or_categories[-1] == "other" and len(pooled.reference) == 2
    assert sum(pooled.reference) == pytest.approx(1) and sum(pooled.candidate) == pytest.approx(1)

    heavy = column_histogram("heavy", ref, cand, bins=30)
    assert heavy.kind == "boolean" and heavy.edges_or_categories == ("true", "false")
    assert heavy.reference[0] == pytest.approx(reference["heavy"].mean())


def test_text_columns_show_their_document_lengths(penguins):
    import pandas as pd

    notes = [
        f"a {s} penguin from {i} weighing {m} grams in {y}"
        for s, i, m, y in zip(
            penguins.species, penguins.island, penguins.body_mass_g, penguins.year
        )
    ]
    reference = pd.DataFrame({"note": notes[:170]})
    candidate = pd.DataFrame({"note": [" ".join(n.split()[:4]) for n in notes[170:]]})
    comparison, _ = CollapseGate(reference, seed=0).compare(candidate)
    lengths = column_histogram("note", comparison.reference, comparison.candidate, bins=10)
    assert lengths.kind == "numeric" and lengths.column == "note (length in words)"
    # Four words in every candidate document, ten or eleven in the reference's.
    assert lengths.edges_or_categories[0] == 4.0 and lengths.edges_or_categories[-1] == 11.0
    assert lengths.candidate[0] == pytest.approx(1.0)
    assert lengths.reference[0] < 0.02 and lengths.reference[-1] > 0.95


def test_numeric_edges_cover_outliers_beyond_the_reference_core():
    edges = numeric_edges(0.0, 10.0, -5.0, 100.0, bins=10)
    assert edges[0] == -5.0 and edges[-1] == 100.0
    assert np.allclose(edges[1:-1], np.arange(1.0, 10.0))
    assert list(numeric_edges(3.0, 3.0, 3.0, 3.0, bins=10)) == [3.0, 3.0]
    # A constant reference core: the bins span both sides' range instead.
    assert list(numeric_edges(3.0, 3.0, 1.0, 5.0, bins=4)) == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_worst_columns_validates_its_arguments(collapsed):
    with pytest.raises(ValueError, match="k must be"):
        worst_column_histograms(collapsed.report, collapsed.reference, collapsed.candidate, k=0)
    with pytest.raises(ValueError, match="bins must be"):
        worst_column_histograms(collapsed.report, collapsed.reference, collapsed.candidate, bins=1)


# --------------------------------------------------------------------------- finding a run


class _LiveRun:
    """The shape of a wandb run, as find_wandb_run checks it."""

    id = "abc123"
    summary: dict = {}  # noqa: RUF012

    def log(self, *args, **kwargs): ...

    def alert(self, *args, **kwargs): ...


class _NoOpExperiment:
    """What Lightning's WandbLogger returns off rank zero: every attribute a no-op."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


class WandbLogger:  # named like Lightning's: find_wandb_run asks only those for .experiment
    def __init__(self, experiment):
        self.experiment = experiment


def test_find_wandb_run_without_an_active_run():
    pytest.importorskip("wandb")
    import wandb

    assert wandb.run is None
    assert find_wandb_run() is None
    assert find_wandb_run([None, object(), _NoOpExperiment()]) is None
    assert find_wandb_run([WandbLogger(_NoOpExperiment())]) is None
    run = _LiveRun()
    assert find_wandb_run([object(), run]) is run
    assert find_wandb_run([WandbLogger(run)]) is run


def test_without_wandb_nothing_raises_but_a_wandb_sink(monkeypatch, collapsed):
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb now raises ImportError
    assert find_wandb_run() is None
    assert find_wandb_run([object()]) is None
    sink = _logged(collapsed, aborted=True)
    assert sink.summary[VERDICT_KEY] == "collapsed" and len(sink.alerts) == 1
    # A run without wandb is a contradiction: say which package is missing.
    with pytest.raises(MissingDependencyError, match="wandb"):
        WandbSink(_LiveRun())


def test_importing_the_tracking_modules_does_not_import_wandb():
    probe = (
        "import sys\n"
        "import collapse_callbacks.tracking.sinks, collapse_callbacks.tracking.histograms\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('wandb', 'torch', 'pyarrow')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


# --------------------------------------------------------------------------- real wandb


@only_wandb_031
def test_offline_reader_reassembles_records_across_blocks(offline_wandb):
    """Records longer than a 32 KiB block, and many blocks: every checksum must hold."""
    import wandb

    from tracking.wandb_offline import read_offline_run

    run = wandb.init(mode="offline", dir=offline_wandb, project="t")
    try:
        for i in range(12):
            run.log({"i": i, "text": f"{i}:" + "x" * 9000})
        run.summary["long"] = "y" * 100_000
    finally:
        run.finish()
        wandb.teardown()
    offline = read_offline_run(offline_wandb)
    (run_file,) = offline.directory.glob("run-*.wandb")
    assert run_file.stat().st_size > 5 * 32 * 1024
    assert [h["i"] for h in offline.history] == list(range(12))
    assert offline.history[5]["text"] == "5:" + "x" * 9000
    assert offline.summary["long"] == "y" * 100_000


@only_wandb_031
def test_real_offline_wandb_run_records_everything(collapsed, offline_wandb):
    import wandb

    from tracking.wandb_offline import read_offline_run

    tmp_path = offline_wandb
    report = collapsed.report
    run = wandb.init(mode="offline", dir=tmp_path, project="t")
    try:
        assert find_wandb_run() is run
        log_gate(WandbSink(run), report, collapsed.histograms, aborted=True, step=7)
    finally:
        run.finish()
        # Stops wandb's core process, which closes the run file; the reader still waits
        # for the exit record in case the file lags behind.
        wandb.teardown()
    offline = read_offline_run(tmp_path)

    assert {"run", "history", "summary", "config", "alert", "artifact", "exit"} <= set(
        offline.kinds
    )
    (history,) = [h for h in offline.history if SCORE_KEY in h]
    assert history["_step"] == 7
    assert history[SCORE_KEY] == pytest.approx(report.score)
    assert history["collapse_gate/collapsed"] == 1
    assert history["collapse_gate/distribution_fidelity"] == pytest.approx(
        report.dimensions["distribution_fidelity"].score
    )
    assert history[diversity_key("recall")] == pytest.approx(report.diversity.statistics["recall"])
    assert offline.summary[VERDICT_KEY] == "collapsed"
    assert offline.summary[status_key("gradient_health")] == "not run"
    assert offline.summary[SCORE_KEY] == pytest.approx(report.score)

    # Tables are JSON files under files/media/table/, referenced from the history.
    failing = history[FAILING_TABLE_KEY]
    assert failing["_type"] == "table-file" and failing["path"].startswith("media/table/")
    data = json.loads((offline.files / failing["path"]).read_text())
    assert data["columns"] == list(FAILING_COLUMNS)
    assert [tuple(row) for row in data["data"]] == [
        tuple(row) for row in json.loads(json.dumps(failing_rows(report)))
    ]
    # Each histogram chart: its long table, and the chart definition in the config.
    chart_table = history[histogram_key(1) + CHART_TABLE_SUFFIX]
    chart = json.loads((offline.files / chart_table["path"]).read_text())
    assert chart["columns"] == ["bin", "share", "side", "label"]
    assert len(chart["data"]) == 2 * len(collapsed.histograms[0].reference)
    visualize = offline.config["_wandb"]["visualize"][histogram_key(1)]["panel_config"]
    assert visualize["panelDefId"] == CHART_SPEC
    assert visualize["fieldSettings"] == CHART_FIELDS
    assert collapsed.histograms[0].column in visualize["stringSettings"]["title"]

    (alert,) = offline.alerts
    assert alert.title == ALERT_TITLE
    assert alert.text.splitlines()[0] == report.reasons[0]
    assert alert.level == "ERROR"

    # wandb also stores each logged table as an artifact of its own ("run_table"); ours is
    # the one of our type, with the report file in its manifest.
    (artifact,) = [a for a in offline.artifacts if a.type == ARTIFACT_TYPE]
    assert artifact.name == ARTIFACT_NAME
    assert json.loads(artifact.metadata)["verdict"] == "collapsed"
    (entry,) = artifact.manifest.contents
    assert entry.path == ARTIFACT_FILE and entry.size == len(report.to_json().encode())
