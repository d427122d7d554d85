"""End to end: CollapseGate on real data (Palmer penguins, scikit-learn's breast cancer)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from collapse_callbacks import CollapseGate, GateReport, Status
from collapse_callbacks.cli import main
from collapse_callbacks.detector import DIMENSIONS
from helpers import split


def test_a_real_split_passes_with_a_high_score(breast_cancer):
    reference, candidate = split(breast_cancer)
    report = CollapseGate(reference, seed=0).check(candidate)
    assert not report.collapsed
    assert report.score > 80
    assert list(report.dimensions) == list(DIMENSIONS)
    assert report.dimensions["gradient_health"].status is Status.NOT_RUN
    for name in ("distribution_fidelity", "correlation_preservation", "generalization_gap"):
        assert report.dimensions[name].status is not Status.NOT_RUN, name


def test_identical_data_scores_about_100(breast_cancer):
    report = CollapseGate(breast_cancer, seed=0).check(breast_cancer)
    assert not report.collapsed and not report.shift
    assert report.score > 95


def test_a_narrowed_candidate_is_caught_and_explained(breast_cancer):
    reference, candidate = split(breast_cancer)
    numeric = candidate.select_dtypes("number").columns
    shrunk = candidate.copy()
    shrunk[numeric] = candidate[numeric].median() + 0.5 * (
        candidate[numeric] - candidate[numeric].median()
    )
    report = CollapseGate(reference, seed=0).check(shrunk)
    assert report.collapsed
    assert report.score < 70
    assert report.dimensions["distribution_fidelity"].status is Status.FAIL
    assert report.reasons and any("`" in reason for reason in report.reasons)


def test_same_seed_same_report_and_json_round_trip(penguins):
    reference, candidate = split(penguins.dropna())
    first = CollapseGate(reference, seed=3).check(candidate)
    second = CollapseGate(reference, seed=3).check(candidate)
    strip = lambda r: {k: v for k, v in r.to_dict().items() if k != "seconds"}  # noqa: E731
    assert strip(first) == strip(second)
    back = GateReport.from_json(first.to_json())
    assert strip(back) == strip(first)
    assert (
        back.dimensions["distribution_fidelity"].signals
        == first.dimensions["distribution_fidelity"].signals
    )


def test_reference_free_check_finds_duplicates(penguins):
    repeated = pd.concat([penguins] * 3, ignore_index=True)
    report = CollapseGate(None).check(repeated)
    assert report.reference_free and report.collapsed
    assert all(d.status is Status.NOT_RUN for d in report.dimensions.values())
    assert "66.7% of the candidate's rows repeat an earlier row" in report.reasons[0]
    clean = CollapseGate(None).check(penguins)
    assert not clean.collapsed


def test_lineage_is_recorded_and_tightens_tolerances(penguins):
    gate = CollapseGate(penguins, lineage="replace", real_fraction=0.0)
    assert gate.tolerance_scale == 0.5
    report = gate.check(penguins)
    assert report.lineage == {"real_fraction": 0.0, "lineage": "replace", "tolerance_scale": 0.5}
    assert any("tolerances are scaled by 0.5" in note for note in report.notes)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"alpha": 0}, "alpha must be in"),
        ({"lineage": "sometimes"}, "lineage must be one of"),
        ({"real_fraction": 2}, "real_fraction must be in"),
    ],
)
def test_bad_arguments_fail_at_construction(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CollapseGate("example:penguins", **kwargs)


def test_cli_check_exit_codes_and_json_keys(tmp_path, breast_cancer, capsys):
    reference, candidate = split(breast_cancer)
    ref_path, cand_path, bad_path = (
        tmp_path / "ref.parquet",
        tmp_path / "cand.parquet",
        tmp_path / "bad.parquet",
    )
    reference.to_parquet(ref_path)
    candidate.to_parquet(cand_path)
    numeric = candidate.select_dtypes("number").columns
    shrunk = candidate.copy()
    shrunk[numeric] = candidate[numeric].median() + 0.5 * (
        candidate[numeric] - candidate[numeric].median()
    )
    shrunk.to_parquet(bad_path)
    out = tmp_path / "report.json"
    assert main(["check", str(ref_path), str(cand_path), "--json", str(out), "--quiet"]) == 0
    data = json.loads(out.read_text())
    assert isinstance(data["score"], float) and data["collapsed"] is False
    assert isinstance(data["shift"], bool)
    for result in data["dimensions"].values():
        assert result["status"] in {"pass", "fail", "not run"}
        assert result["score"] is None or 0 <= result["score"] <= 100
    assert main(["check", str(ref_path), str(bad_path), "--quiet"]) == 1
    assert "COLLAPSE RISK" in capsys.readouterr().out
    assert main(["check", str(ref_path), str(tmp_path / "missing.csv")]) == 2


def test_the_profile_pass_runs_on_one_blas_thread(breast_cancer, monkeypatch):
    # The training integrations profile on every rank outside check(); with BLAS
    # threads beside other busy processes the pass ran 2.6 times slower.
    from threadpoolctl import threadpool_info, threadpool_limits

    from collapse_callbacks.profile.table import Profile

    threads: list[int] = []
    update = Profile.update

    def counting_update(self, batch):
        threads.append(max(pool["num_threads"] for pool in threadpool_info()))
        return update(self, batch)

    monkeypatch.setattr(Profile, "update", counting_update)
    reference, candidate = split(breast_cancer)
    with threadpool_limits(limits=2):
        CollapseGate(reference, seed=0).compare(candidate)
    assert threads and set(threads) == {1}


def _odd_column(kind: str, rows: int):
    import datetime as dt
    import decimal

    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(1)
    gaps = [i % 7 == 0 for i in range(rows)]
    if kind == "boolean with missing values":
        return pa.array([None if g else bool(v) for g, v in zip(gaps, rng.random(rows) < 0.5)])
    if kind == "uint64 beyond 2**53":
        return pa.array(rng.integers(2**60, 2**62, rows).astype(np.uint64) * np.uint64(3))
    if kind == "decimal with missing values":
        values = rng.normal(size=rows)
        return pa.array([None if g else decimal.Decimal(f"{v:.2f}") for g, v in zip(gaps, values)])
    start = dt.datetime(2020, 1, 1)
    hours = rng.integers(0, 1000, rows)
    return pa.array(
        [None if g else start + dt.timedelta(hours=int(h)) for g, h in zip(gaps, hours)]
    )


@pytest.mark.parametrize(
    "kind",
    [
        "boolean with missing values",
        "uint64 beyond 2**53",
        "decimal with missing values",
        "timestamp with missing values",
    ],
)
def test_odd_column_types_are_checked(kind):
    # The first two crashed the pass with an error from inside pyarrow (a boolean's
    # null filled with 0; a uint64 cast to float64 "safely") until session 9.
    import numpy as np
    import pyarrow as pa

    rows = 300
    table = pa.table(
        {"x": np.random.default_rng(0).normal(size=rows), "odd": _odd_column(kind, rows)}
    )
    report = CollapseGate(table, seed=0).check(table)
    assert not report.collapsed and report.score > 95


def test_columns_without_values_are_left_out_with_a_note(penguins):
    import warnings

    reference, candidate = split(penguins)
    reference = reference.assign(empty=float("nan"), lost=1.0)
    candidate = candidate.assign(empty=float("nan"), lost=float("nan"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no NaN statistics, no numpy noise
        report = CollapseGate(reference, seed=0).check(candidate)
    assert "`empty` has no values in either the reference or the candidate: not compared" in (
        report.notes
    )
    assert "`lost` has no values in the candidate: only its missing values are compared" in (
        report.notes
    )
    assert report.collapsed
    assert (
        report.reasons[0] == "`lost` has no value in 100% of the candidate's rows (reference: 0.0%)"
    )


def test_no_column_with_values_on_both_sides_is_a_data_error():
    from collapse_callbacks.errors import NoColumnsError

    reference = pd.DataFrame({"x": [float(i) for i in range(100)]})
    candidate = pd.DataFrame({"x": [float("nan")] * 100})
    with pytest.raises(NoColumnsError, match="'x' has none in the candidate"):
        CollapseGate(reference, seed=0).check(candidate)


def test_small_samples_say_what_they_can_miss(penguins, digits):
    reference, candidate = split(penguins)
    small = CollapseGate(reference, seed=0).check(candidate)
    assert any(
        note.startswith("small samples (172 rows on the smaller side)") for note in small.notes
    )
    large = CollapseGate(digits, seed=0).check(digits)  # 1,797 rows a side
    assert not any(note.startswith("small samples") for note in large.notes)


def _with_keys(frame: pd.DataFrame, first: int) -> pd.DataFrame:
    """An auto-increment key continuing from ``first`` and a string id per row."""
    import numpy as np

    keys = np.arange(first, first + len(frame))
    return frame.assign(row_id=keys, uid=[f"u{k:08d}" for k in keys])


def test_identifier_columns_are_left_out_with_a_note(digits):
    # The candidate's keys continue after the reference's, as in any two exports of one
    # table: session 8's engine called this real split collapsed (score 6.9) on the keys.
    reference, candidate = split(digits)
    report = CollapseGate(_with_keys(reference, 0), seed=0).check(
        _with_keys(candidate, len(reference))
    )
    assert not report.collapsed and report.score > 90
    assert any(note.startswith("`row_id`, `uid`: a different value") for note in report.notes)


def test_rows_copied_under_fresh_ids_are_duplicates(digits):
    import numpy as np

    reference, candidate = split(digits)
    copies = candidate.iloc[
        np.random.default_rng(0).integers(0, len(candidate), len(candidate) // 5)
    ]
    padded = pd.concat([candidate.iloc[: len(candidate) - len(copies)], copies])
    report = CollapseGate(_with_keys(reference, 0), seed=0).check(_with_keys(padded, 10**6))
    assert report.collapsed
    assert "repeat an earlier row exactly" in report.reasons[0]
