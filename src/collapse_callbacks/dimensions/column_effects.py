"""Do the joint signals change only through the one column that shifted?

Real data reweighted on a column c moves more than c's distribution. Upweighting fair's
rows with many `affairs` (a count that is zero for two thirds of the rows) gives
that column most of the candidate's variance: the eigen-spectrum of the encoded rows
concentrates on it and the effective rank falls by 30%, and rank correlations with it
move. Those are row-level signals, which the detector counts as damage, so the
reweighting failed the gate, although every other column kept its spread, tails and
dependencies. A column that drifted beyond the reference's range (a timestamp of the
next half-year) does the same to the k-NN support of the rows: coverage and recall fell
on a real split of the digits with such a column added. The classifier's selection test (``generalization.py``) reads such a
candidate as a selection only when the classifier itself tells the sets apart, which a
reweighting of a sparse column often does not.

So when every signal that fails the gate is one of the joint ones (``JOINT``) and a
column shows a significant shift, the joint signals are measured again with that column
left out: on the same samples and the same random splits. If none of them shows at 5%
and beyond its tolerance (``RETEST_P``, as for the matched re-test of a selection), the
joint change lives in that one column's distribution and its dependencies, which the
per-column dimensions judge on their own: one column's change is shift. A generator
that damages the joint distribution does so across columns, and leaving one out does
not remove it: on the benchmark's recursive generations and mixtures no verdict changed.
"""

from __future__ import annotations

from dataclasses import dataclass

from collapse_callbacks.comparison import Comparison
from collapse_callbacks.data.roles import ColumnRole
from collapse_callbacks.dimensions.base import Signal, SignalKind
from collapse_callbacks.dimensions.selection_effects import RETEST_P, TABULAR

# Signals of the whole row (no column of their own) that one column's shift can move,
# by the dimension that measures them.
JOINT = {
    "correlation_preservation": frozenset(
        {"pearson_rms_change", "spearman_rms_change", "cramers_v_rms_change"}
    ),
    "entropy_stability": frozenset({"mutual_information", "spectral_entropy", "knn_entropy"}),
    "spectral_coherence": frozenset(
        {"variance_retained", "trailing_variance_retained", "effective_rank_ratio"}
    ),
    # The k-NN support of the rows: a column moved beyond the reference's range (a
    # timestamp or a key continuing after the reference's) puts every candidate row
    # away from the reference's rows in that one direction.
    "diversity": frozenset({"precision", "recall", "density", "coverage"}),
}
JOINT_NAMES = frozenset().union(*JOINT.values())
# The classifier's AUC is re-tested only without a column that moved wholly away: such
# a column alone separates the rows (a month partition: AUC 1.0), while a filter's or a
# mixture's edge is spread over columns, and leaving its most shifted one out would
# also lower the AUC of a real mixture.
DISJOINT_JOINT = {"generalization_gap": frozenset({"classifier_auc"})}


# A column whose candidate values lie almost wholly beyond the reference's (KS or total
# variation at least this) moved away rather than reweighted: a timestamp, a date
# partition or a key continuing after the reference's. Such columns are left out of the
# re-test together with the most significant shift: exports often carry several
# (created and updated times), and each alone keeps the rows apart.
DISJOINT = 0.9
DISJOINT_SIGNALS = frozenset({"ks", "total_variation"})


@dataclass(frozen=True)
class ColumnEffect:
    """The joint signals (``Signal.key``) that vanish once ``columns`` are left out."""

    columns: tuple[str, ...]
    explains: tuple[str, ...]


def shifted_columns(firing: list[Signal], roles: dict[str, ColumnRole]) -> tuple[str, ...]:
    """The tabular column whose firing shift signal is the most significant, and every
    other whose values moved (almost) wholly away from the reference's (``DISJOINT``)."""
    shifts = [
        s
        for s in firing
        if s.kind is SignalKind.SHIFT and s.column is not None and roles.get(s.column) in TABULAR
    ]
    if not shifts:
        return ()
    first = min(shifts, key=lambda s: (s.p_value, -s.effect)).column
    disjoint = [s.column for s in shifts if s.name in DISJOINT_SIGNALS and s.value >= DISJOINT]
    return tuple(dict.fromkeys([first, *disjoint]))


def retest(
    comparison: Comparison, decisive: list[Signal], firing: list[Signal], tolerance_scale: float
) -> ColumnEffect | None:
    """Re-measure the decisive joint signals without the shifted columns
    (``shifted_columns``); None when some decisive signal is not a joint one or no column
    shifted."""
    columns = shifted_columns(firing, comparison.roles)
    joint = dict(JOINT)
    if _disjoint(firing, columns):
        joint.update(DISJOINT_JOINT)
    names = frozenset().union(*joint.values())
    if not decisive or any(s.name not in names or s.column is not None for s in decisive):
        return None
    if not columns or len(columns) == len(comparison.roles):
        return None
    without = comparison.without(*columns)
    wanted = {s.name for s in decisive}
    again: dict[str, Signal] = {}
    for name, module in _modules().items():
        if not wanted & joint.get(name, frozenset()):
            continue
        for signal in module.run(without).scaled(tolerance_scale).signals:
            if signal.column is None and signal.name in wanted:
                again[signal.name] = signal
    # A signal that cannot be measured without the column (two numeric columns left one)
    # was about that column's dependencies alone.
    explains = tuple(
        s.key
        for s in decisive
        if s.name not in again
        or not (again[s.name].p_value < RETEST_P and again[s.name].effect > again[s.name].tolerance)
    )
    return ColumnEffect(columns, explains) if explains else None


def _disjoint(firing: list[Signal], columns: tuple[str, ...]) -> bool:
    """Whether one of ``columns`` moved wholly away from the reference's values."""
    return any(
        s.column in columns and s.name in DISJOINT_SIGNALS and s.value >= DISJOINT
        for s in firing
        if s.kind is SignalKind.SHIFT
    )


def _modules() -> dict:
    from collapse_callbacks import diversity
    from collapse_callbacks.dimensions import correlation, entropy, generalization, spectral

    modules = (correlation, entropy, spectral, diversity, generalization)
    return {module.NAME: module for module in modules}
