"""Send a gate report to an experiment tracker: a live W&B run, or memory.

``log_gate`` decides *what* is logged (keys, tables, charts, the report artifact, the
alert); a sink decides *how*. ``MemorySink`` keeps everything in plain lists and dicts,
for tests and for users without W&B; ``WandbSink`` wraps a live ``wandb`` run. Every key
is built here, and ``logged_keys`` lists them, so the dashboard definition
(``integrations/wandb/dashboard.py``) and this module cannot drift apart.

wandb is imported lazily, inside the functions that need it: ``import
collapse_callbacks`` must stay cheap, and a missing wandb is never an error here
(``find_wandb_run`` then returns None).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from collapse_callbacks.detector import DIMENSIONS
from collapse_callbacks.dimensions.base import Status
from collapse_callbacks.errors import MissingDependencyError

if TYPE_CHECKING:
    from collapse_callbacks.report import GateReport
    from collapse_callbacks.tracking.histograms import ColumnHistogram

PREFIX = "collapse_gate"
SCORE_KEY = f"{PREFIX}/score"
COLLAPSED_KEY = f"{PREFIX}/collapsed"
SHIFT_KEY = f"{PREFIX}/shift"
VERDICT_KEY = f"{PREFIX}/verdict"
FAILING_TABLE_KEY = f"{PREFIX}/failing_columns"
HISTOGRAM_TABLE_KEY = f"{PREFIX}/histograms"
DIVERSITY = "diversity"
ARTIFACT_NAME = "collapse-gate-report"
ARTIFACT_TYPE = "collapse-gate-report"
ARTIFACT_FILE = "collapse_gate_report.json"
ALERT_TITLE = "collapse-gate aborted the run"
ALERT_REASONS = 3
# How many histogram charts a dashboard reserves room for; the callbacks log this many.
DEFAULT_HISTOGRAMS = 4

FAILING_COLUMNS = ("dimension", "column", "signal", "kind", "effect", "p_value", "sentence")
HISTOGRAM_COLUMNS = ("column", "bin", "reference", "candidate")
# The long form a chart draws from: one row per bin and side, "side" picks the line.
CHART_COLUMNS = ("bin", "share", "side", "label")
# The chart: wandb.plot.line's preset with these fields. A dashboard panel that draws
# the same chart needs all three, so they are named once, here.
CHART_SPEC = "wandb/line/v0"
CHART_FIELDS = {"x": "bin", "y": "share", "stroke": "side"}
# wandb.plot charts keep their data in the run under "<key>_table" (wandb's
# CustomChartSpec.table_key); a panel queries that table.
CHART_TABLE_SUFFIX = "_table"


def dimension_key(name: str) -> str:
    """The score of one dimension (or of diversity)."""
    return f"{PREFIX}/{name}"


def status_key(name: str) -> str:
    """A dimension's status ("pass", "fail", "not run"), kept in the run summary."""
    return f"{PREFIX}/{name}_status"


def diversity_key(statistic: str) -> str:
    return f"{PREFIX}/{DIVERSITY}/{statistic}"


def histogram_key(slot: int) -> str:
    """The chart of the ``slot``-th worst column (1-based). Keys are slots rather than
    column names so that a dashboard defined once shows every run's worst columns."""
    return f"{PREFIX}/histogram/{slot}"


def gate_names() -> tuple[str, ...]:
    """Every dimension a report can hold, in report order, then diversity."""
    return (*DIMENSIONS, DIVERSITY)


@dataclass(frozen=True)
class LoggedKeys:
    """Everything ``log_gate`` can write, by where it lands in the run."""

    history: tuple[str, ...]  # numbers, one point per gate check
    patterns: tuple[str, ...]  # regular expressions for data-dependent history keys
    summary: tuple[str, ...]  # strings set in the run summary
    tables: tuple[str, ...]
    charts: tuple[str, ...]
    artifacts: tuple[str, ...]


def logged_keys(
    dimensions: Sequence[str] | None = None, histograms: int = DEFAULT_HISTOGRAMS
) -> LoggedKeys:
    names = tuple(dimensions) if dimensions is not None else gate_names()
    return LoggedKeys(
        history=(SCORE_KEY, COLLAPSED_KEY, SHIFT_KEY, *(dimension_key(n) for n in names)),
        # Diversity statistics depend on the data (one distinct ratio per column).
        patterns=("^" + re.escape(f"{PREFIX}/{DIVERSITY}/") + ".+$",),
        summary=(VERDICT_KEY, *(status_key(n) for n in names)),
        tables=(FAILING_TABLE_KEY, HISTOGRAM_TABLE_KEY),
        charts=tuple(histogram_key(slot) for slot in range(1, histograms + 1)),
        artifacts=(ARTIFACT_NAME,),
    )


# --------------------------------------------------------------------------- sinks


class Sink(Protocol):
    """What ``log_gate`` needs from a tracker. ``log``, ``log_table`` and
    ``log_histograms`` stage values that ``commit`` writes as one step."""

    def log(self, values: Mapping[str, float]) -> None: ...
    def log_table(self, key: str, columns: Sequence[str], rows: Sequence[Sequence]) -> None: ...
    def log_histograms(self, histograms: Mapping[str, ColumnHistogram]) -> None: ...
    def commit(self, step: int | None) -> None: ...
    def set_summary(self, values: Mapping[str, Any]) -> None: ...
    def log_artifact(
        self, name: str, kind: str, filename: str, text: str, metadata: Mapping[str, Any]
    ) -> None: ...
    def alert(self, title: str, text: str, level: str = "ERROR") -> None: ...


@dataclass(frozen=True)
class Table:
    columns: tuple[str, ...]
    rows: tuple[tuple, ...]


@dataclass(frozen=True)
class Artifact:
    name: str
    kind: str
    filename: str
    text: str
    metadata: dict


@dataclass(frozen=True)
class Alert:
    title: str
    text: str
    level: str


@dataclass
class MemorySink:
    """Keeps everything: ``scalars`` (latest value per key), ``history`` (one
    ``(step, values)`` per commit), ``summary``, ``tables``, ``histograms`` (the
    ``ColumnHistogram`` objects by chart key), ``artifacts`` and ``alerts``."""

    scalars: dict[str, float] = field(default_factory=dict)
    history: list[tuple[int | None, dict[str, float]]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, Table] = field(default_factory=dict)
    histograms: dict[str, ColumnHistogram] = field(default_factory=dict)
    artifacts: list[Artifact] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    _staged: dict[str, float] = field(default_factory=dict, repr=False)

    def log(self, values: Mapping[str, float]) -> None:
        self._staged.update(values)

    def log_table(self, key: str, columns: Sequence[str], rows: Sequence[Sequence]) -> None:
        self.tables[key] = Table(tuple(columns), tuple(tuple(row) for row in rows))

    def log_histograms(self, histograms: Mapping[str, ColumnHistogram]) -> None:
        self.histograms.update(histograms)

    def commit(self, step: int | None) -> None:
        self.history.append((step, dict(self._staged)))
        self.scalars.update(self._staged)
        self._staged.clear()

    def set_summary(self, values: Mapping[str, Any]) -> None:
        self.summary.update(values)

    def log_artifact(
        self, name: str, kind: str, filename: str, text: str, metadata: Mapping[str, Any]
    ) -> None:
        self.artifacts.append(Artifact(name, kind, filename, text, dict(metadata)))

    def alert(self, title: str, text: str, level: str = "ERROR") -> None:
        self.alerts.append(Alert(title, text, level))

    def keys(self) -> set[str]:
        """Every key written, wherever it landed (history, summary, tables, charts)."""
        return {*self.scalars, *self.summary, *self.tables, *self.histograms}


class WandbSink:
    """Writes to a live wandb run. Tables and charts go into the run's history with the
    scalars, in one ``run.log`` call, so that one gate check is one step."""

    def __init__(self, run: Any) -> None:
        wandb = import_wandb()
        if wandb is None:
            raise MissingDependencyError("logging to Weights & Biases", "wandb", "wandb")
        self.run = run
        self._wandb = wandb
        self._staged: dict[str, Any] = {}

    def log(self, values: Mapping[str, float]) -> None:
        self._staged.update(values)

    def log_table(self, key: str, columns: Sequence[str], rows: Sequence[Sequence]) -> None:
        self._staged[key] = self._wandb.Table(columns=list(columns), data=[list(r) for r in rows])

    def log_histograms(self, histograms: Mapping[str, ColumnHistogram]) -> None:
        for key, histogram in histograms.items():
            self._staged[key] = overlay_chart(self._wandb, histogram)

    def commit(self, step: int | None) -> None:
        staged, self._staged = self._staged, {}
        self.run.log(staged, step=step)

    def set_summary(self, values: Mapping[str, Any]) -> None:
        self.run.summary.update(dict(values))

    def log_artifact(
        self, name: str, kind: str, filename: str, text: str, metadata: Mapping[str, Any]
    ) -> None:
        artifact = self._wandb.Artifact(name, type=kind, metadata=dict(metadata))
        with artifact.new_file(filename, mode="w", encoding="utf-8") as handle:
            handle.write(text)
        self.run.log_artifact(artifact)

    def alert(self, title: str, text: str, level: str = "ERROR") -> None:
        self.run.alert(title=title, text=text, level=self._wandb.AlertLevel[level])


def overlay_chart(wandb: Any, histogram: ColumnHistogram) -> Any:
    """Reference and candidate as two lines over the same bins (``wandb.plot.line`` with
    ``stroke``): lines overlay where a bar chart would put one side behind the other.
    Categories sit at their rank; the ``label`` column names them."""
    rows = []
    for x, label, ref, cand in zip(
        histogram.positions, histogram.labels, histogram.reference, histogram.candidate
    ):
        rows.append([x, ref, "reference", label])
        rows.append([x, cand, "candidate", label])
    table = wandb.Table(columns=list(CHART_COLUMNS), data=rows)
    axis = "bin midpoint" if histogram.kind == "numeric" else "category rank"
    return wandb.plot.line(
        table,
        x=CHART_FIELDS["x"],
        y=CHART_FIELDS["y"],
        stroke=CHART_FIELDS["stroke"],
        title=f"{histogram.column}: share per bin, reference vs candidate (x: {axis})",
    )


# --------------------------------------------------------------------------- logging


def log_gate(
    sink: Sink,
    report: GateReport,
    histograms: Sequence[ColumnHistogram],
    *,
    aborted: bool,
    step: int | None = None,
) -> None:
    """Log one gate decision: scores, the failing signals, the worst columns'
    histograms, the verdict and statuses, the full report as an artifact, and an alert
    when the run is being aborted.

    ``step`` is passed to the tracker as is; None lets it count steps itself (W&B drops
    a step lower than one it already has, so give the trainer's step or none).
    ``histograms`` get chart slots 1, 2, ... in order (see ``histogram_key``).
    """
    sink.log(gate_scalars(report))
    sink.log_table(FAILING_TABLE_KEY, FAILING_COLUMNS, failing_rows(report))
    sink.log_table(HISTOGRAM_TABLE_KEY, HISTOGRAM_COLUMNS, histogram_rows(histograms))
    sink.log_histograms({histogram_key(i): h for i, h in enumerate(histograms, start=1)})
    sink.commit(step)
    sink.set_summary(gate_summary(report))
    sink.log_artifact(
        ARTIFACT_NAME,
        ARTIFACT_TYPE,
        ARTIFACT_FILE,
        report.to_json(),
        {"verdict": verdict(report), "score": _finite(report.score), "version": report.version},
    )
    if aborted:
        sink.alert(ALERT_TITLE, alert_text(report), "ERROR")


def verdict(report: GateReport) -> str:
    if report.collapsed:
        return "collapsed"
    return "shift" if report.shift else "pass"


def gate_scalars(report: GateReport) -> dict[str, float]:
    values: dict[str, float] = {
        SCORE_KEY: report.score,
        COLLAPSED_KEY: int(report.collapsed),
        SHIFT_KEY: int(report.shift),
    }
    for result in [*report.dimensions.values(), report.diversity]:
        if result.status is not Status.NOT_RUN:
            values[dimension_key(result.name)] = result.score
    for name, value in report.diversity.statistics.items():
        values[diversity_key(name)] = value
    # A tracker plots numbers: NaN/inf (a figure that could not be computed) and None
    # would only break the chart's axis.
    return {k: v for k, v in values.items() if _finite(v) is not None}


def gate_summary(report: GateReport) -> dict[str, str]:
    summary = {VERDICT_KEY: verdict(report)}
    for result in [*report.dimensions.values(), report.diversity]:
        summary[status_key(result.name)] = result.status.value
    return summary


def failing_rows(report: GateReport) -> list[tuple]:
    """One row per firing signal of each failed dimension (diversity included)."""
    rows = []
    for result in [*report.dimensions.values(), report.diversity]:
        if result.status is not Status.FAIL:
            continue
        for signal in result.firing:
            rows.append(
                (
                    result.name,
                    signal.column,  # None for a row-level signal
                    signal.name,
                    signal.kind.value,
                    _finite(signal.effect),
                    _finite(signal.p_value),
                    signal.sentence,
                )
            )
    return rows


def histogram_rows(histograms: Sequence[ColumnHistogram]) -> list[tuple]:
    return [
        (h.column, label, ref, cand)
        for h in histograms
        for label, ref, cand in zip(h.labels, h.reference, h.candidate)
    ]


def alert_text(report: GateReport) -> str:
    reasons = list(report.reasons[:ALERT_REASONS])
    if not reasons:
        reasons = [f"verdict {verdict(report)}, score {report.score:.1f}/100"]
    more = len(report.reasons) - ALERT_REASONS
    if more > 0:
        reasons.append(f"... and {more} more in the {ARTIFACT_NAME} artifact")
    return "\n".join(reasons)


def _finite(value: Any) -> float | None:
    if value is None or isinstance(value, str):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


# --------------------------------------------------------------------------- finding a run


def import_wandb() -> Any:
    """The wandb module, or None when it is not installed."""
    try:
        import wandb
    except ImportError:
        return None
    return wandb


def find_wandb_run(candidates: Sequence[Any] = ()) -> Any:
    """The wandb run to log to, or None.

    Each candidate may be a run, or hold one as ``.experiment`` (Lightning's
    ``WandbLogger``); the first that does wins. Otherwise the active ``wandb.run``, when
    wandb is installed and a run is active.
    """
    for candidate in candidates:
        for obj in (candidate, _experiment(candidate)):
            if _is_run(obj):
                return obj
    wandb = import_wandb()
    if wandb is None:
        return None
    return wandb.run


def _experiment(obj: Any) -> Any:
    # Only a WandbLogger-like object is asked: ``.experiment`` starts a run there, and
    # other loggers' experiments (a TensorBoard writer) are no wandb run.
    if obj is None or type(obj).__name__ != "WandbLogger":
        return None
    return obj.experiment


def _is_run(obj: Any) -> bool:
    """A live wandb run by its shape. A string ``id`` rules out Lightning's
    ``DummyExperiment`` (off rank zero), which answers every attribute with a no-op."""
    return (
        obj is not None
        and isinstance(getattr(obj, "id", None), str)
        and callable(getattr(obj, "log", None))
        and callable(getattr(obj, "alert", None))
        and hasattr(obj, "summary")
    )
