"""Reference-vs-candidate histograms of the columns that drive a gate report.

A tracker shows a person *why* a candidate failed: the columns behind the failing
dimensions, each as two overlaid histograms on common bins. Everything is computed
from the profiles the gate already built (sketches and value counts), so no data is
read again. Histograms hold shares of the present values, not counts: the two sides
usually differ in size, and shares overlay directly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from collapse_callbacks.dimensions.base import Status

if TYPE_CHECKING:  # the profile and report modules import pyarrow; this one needs numpy only
    from collapse_callbacks.profile.table import Profile
    from collapse_callbacks.report import GateReport

# The outer 0.1% on each side of the reference would stretch equal-width bins over a
# few outliers and squeeze the body of the distribution into a handful of bins.
CORE_QUANTILES = (0.001, 0.999)
OTHER = "other"
# Column roles (``ColumnRole`` values) that a histogram can show; text and token columns
# show their document lengths; vector columns have no per-value distribution in their
# profile.
KINDS = ("numeric", "categorical", "boolean", "text", "tokens")


@dataclass(frozen=True)
class ColumnHistogram:
    """Two histograms of one column on common bins.

    ``edges_or_categories``: ``bins + 1`` increasing edges for a numeric column (the
    last bin includes its right edge), else the category labels (``"other"`` pools the
    rest). ``reference`` and ``candidate`` are shares: each sums to 1.
    """

    column: str
    edges_or_categories: tuple
    reference: tuple[float, ...]
    candidate: tuple[float, ...]
    kind: str  # "numeric", "categorical" or "boolean"

    @property
    def labels(self) -> tuple[str, ...]:
        """One readable label per bin: ``[a, b)`` ranges or the category names."""
        if self.kind != "numeric":
            return tuple(str(c) for c in self.edges_or_categories)
        edges = self.edges_or_categories
        last = len(edges) - 2
        return tuple(
            f"[{edges[i]:.4g}, {edges[i + 1]:.4g}{']' if i == last else ')'}"
            for i in range(len(edges) - 1)
        )

    @property
    def positions(self) -> tuple[float, ...]:
        """Where each bin sits on a chart's x axis: bin midpoints for numbers; for
        categories their rank (most common first), which draws a rank-frequency curve."""
        if self.kind != "numeric":
            return tuple(float(i) for i in range(len(self.edges_or_categories)))
        edges = np.asarray(self.edges_or_categories, dtype=np.float64)
        return tuple(float(x) for x in (edges[:-1] + edges[1:]) / 2)

    def to_dict(self) -> dict:
        return {
            "column": self.column,
            "kind": self.kind,
            "edges_or_categories": list(self.edges_or_categories),
            "reference": list(self.reference),
            "candidate": list(self.candidate),
        }


def worst_column_histograms(
    report: GateReport,
    reference_profile: Profile,
    candidate_profile: Profile,
    k: int = 4,
    bins: int = 30,
) -> list[ColumnHistogram]:
    """Histograms of the ``k`` columns that drive the report, worst first.

    Columns come first from the failing dimensions (in report order, each dimension's
    drivers worst first, diversity last), then from the remaining signals by score,
    so a passing report still shows its least comfortable columns. Columns without a
    histogram (text, tokens, vectors) or without values on either side are skipped.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if bins < 2:
        raise ValueError(f"bins must be >= 2, got {bins}")
    histograms = []
    for column in ranked_columns(report):
        histogram = column_histogram(column, reference_profile, candidate_profile, bins)
        if histogram is not None:
            histograms.append(histogram)
        if len(histograms) == k:
            break
    return histograms


def ranked_columns(report: GateReport) -> list[str]:
    """Every column a signal names, the ones behind failing dimensions first."""
    results = [*report.dimensions.values(), report.diversity]
    failing = [c for r in results if r.status is Status.FAIL for c in r.drivers]
    signals = [s for r in results if r.status is not Status.NOT_RUN for s in r.signals]
    # sorted() is stable: equal scores keep report order.
    rest = [s.column for s in sorted(signals, key=lambda s: s.score()) if s.column is not None]
    return list(dict.fromkeys([*failing, *rest]))


def column_histogram(
    column: str, reference: Profile, candidate: Profile, bins: int
) -> ColumnHistogram | None:
    """The column's histogram pair, or None where its role or its data has none."""
    role = _role(reference, column)
    if role not in KINDS or _role(candidate, column) != role:
        return None
    ref_state, cand_state = reference.states[column], candidate.states[column]
    if role in ("text", "tokens"):
        unit = "words" if role == "text" else "tokens"
        return _numeric(
            f"{column} (length in {unit})",
            ref_state.sequence.length_sketch,
            cand_state.sequence.length_sketch,
            bins,
        )
    if role == "numeric":
        return _numeric(column, ref_state.sketch, cand_state.sketch, bins)
    if role == "boolean":
        # A fixed order, so the same column reads the same way in every run.
        ref_counts = {"true": ref_state.true, "false": ref_state.false}
        cand_counts = {"true": cand_state.true, "false": cand_state.false}
        return _categorical(column, ref_counts, cand_counts, bins, "boolean", ordered=True)
    return _categorical(
        column, ref_state.values.counts, cand_state.values.counts, bins, "categorical"
    )


def _role(profile: Profile, column: str) -> str | None:
    role = profile.roles.get(column)
    return None if role is None else role.value


def _numeric(column: str, reference, candidate, bins: int) -> ColumnHistogram | None:
    ref_values, ref_counts = reference.points()
    cand_values, cand_counts = candidate.points()
    if ref_counts.sum() == 0 or cand_counts.sum() == 0:
        return None
    low = min(ref_values[0], cand_values[0])
    high = max(ref_values[-1], cand_values[-1])
    edges = numeric_edges(
        reference.quantile(CORE_QUANTILES[0]),
        reference.quantile(CORE_QUANTILES[1]),
        low,
        high,
        bins,
    )
    return ColumnHistogram(
        column=column,
        edges_or_categories=tuple(float(e) for e in edges),
        reference=_binned_shares(ref_values, ref_counts, edges),
        candidate=_binned_shares(cand_values, cand_counts, edges),
        kind="numeric",
    )


def numeric_edges(core_low: float, core_high: float, low: float, high: float, bins: int):
    """Equal-width edges over the reference's core range, the outer two moved out to
    ``low`` / ``high`` (both sides' extremes) so that every value falls in a bin."""
    if high <= low:  # one value on both sides: one bin holds everything
        return np.array([low, high])
    if not core_high > core_low:  # the reference's core is a single value
        core_low, core_high = low, high
    edges = np.linspace(core_low, core_high, bins + 1)
    edges[0], edges[-1] = min(edges[0], low), max(edges[-1], high)
    return edges


def _binned_shares(values: np.ndarray, counts: np.ndarray, edges: np.ndarray):
    if edges[0] == edges[-1]:
        return (1.0,)
    binned, _ = np.histogram(values, bins=edges, weights=counts)
    return tuple(float(x) for x in binned / counts.sum())


def _categorical(
    column: str,
    reference: Mapping,
    candidate: Mapping,
    bins: int,
    kind: str,
    ordered: bool = False,
) -> ColumnHistogram | None:
    ref_shares, cand_shares = _shares(reference), _shares(candidate)
    if not ref_shares or not cand_shares:
        return None
    keys = list(dict.fromkeys([*ref_shares, *cand_shares]))
    if not ordered:
        # Pooled *shares*, not counts: a candidate ten times the reference's size would
        # otherwise choose the categories alone.
        keys.sort(key=lambda v: (-(ref_shares.get(v, 0.0) + cand_shares.get(v, 0.0)), str(v)))
    top, rest = (keys, []) if len(keys) <= bins else (keys[: bins - 1], keys[bins - 1 :])
    labels = [str(v) for v in top]
    reference_row = [ref_shares.get(v, 0.0) for v in top]
    candidate_row = [cand_shares.get(v, 0.0) for v in top]
    if rest:
        labels.append(_other_label(labels))
        reference_row.append(math.fsum(ref_shares.get(v, 0.0) for v in rest))
        candidate_row.append(math.fsum(cand_shares.get(v, 0.0) for v in rest))
    return ColumnHistogram(column, tuple(labels), tuple(reference_row), tuple(candidate_row), kind)


def _shares(counts: Mapping) -> dict:
    total = sum(counts.values())
    return {value: n / total for value, n in counts.items() if n} if total else {}


def _other_label(labels: list[str]) -> str:
    """ "other", unless a real category already has that name."""
    label = OTHER
    while label in labels:
        label = f"({label})"
    return label
