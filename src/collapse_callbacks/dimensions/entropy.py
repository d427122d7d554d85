"""Entropy stability: has the candidate lost entropy the reference has?

Every statistic is computed on the comparison's matched parts and calibrated against
disjoint random splits of both samples pooled, of the same size, so the small-sample bias of plug-in and
nearest-neighbour entropies cancels. Signals:

* ``categorical_entropy`` per categorical/boolean column (narrowing): Shannon entropy
  (nats) of the present values.
* ``binned_entropy`` per numeric column (narrowing): entropy over bins cut at the
  reference part's deciles (with bins of a tenth of the reference's range beyond its
  minimum and maximum, so a *wider* candidate spreads over more bins rather than piling
  into two open-ended ones). The candidate is first moved onto the reference's location
  (median decile difference, in whole steps of the reference's values): a change of
  location is shift, not lost entropy.
* ``mutual_information`` (structure, two-sided): the RMS, over column pairs, of the
  change in mutual information. Numeric columns are binned on each side's own
  quintiles (so the figure sees dependence only, not location or scale), categoricals
  by category, missing values as their own bin.
* ``spectral_entropy`` (narrowing): entropy of the normalized eigenvalues of the
  encoded rows' covariance (winsorized, as in the spectral dimension), i.e. the log of
  the effective rank.
* ``knn_entropy`` (narrowing): the Kozachenko-Leonenko k-nearest-neighbour estimate of
  the joint differential entropy of the encoded rows. Shi et al. (NeurIPS 2025) found
  this training-set entropy tracks the damage of recursive training closely.

Repeated rows have zero distance to each other, which would send ``log`` to minus
infinity. A point repeated more than ``KNN_K`` times is one the data holds as a point mass,
so the k-NN distance is floored at ``KNN_DISTANCE_FLOOR`` times the reference's median
k-NN distance: the estimate is then the entropy at that resolution, finite, and each
such point still lowers it by a bounded amount. The effect is expressed per encoded
dimension (nats per dimension = log of the ratio of typical neighbour spacings), so one
tolerance fits narrow and wide tables; the dimension used is given in the statistics.

The helpers :func:`squared_distances` and :func:`kth_neighbour_distance` are shared with
the diversity analyzer.
"""

from __future__ import annotations

import numpy as np
from scipy.special import digamma, gammaln

from collapse_callbacks.comparison import Comparison, Part, PerView
from collapse_callbacks.data.roles import ColumnRole
from collapse_callbacks.dimensions.base import DimensionEvidence, Signal, SignalKind
from collapse_callbacks.dimensions.spectral import (
    EncodedRows,
    Paired,
    ProjectedRows,
    SpectralRows,
    covariance_spectrum,
    figures,
    not_calibratable,
    percent,
    spectrum_entropy,
)

NAME = "entropy_stability"

DECILES = np.linspace(0.1, 0.9, 9)
QUINTILES = np.linspace(0.2, 0.8, 4)
# Categories beyond the reference's most frequent ones share one "other" bin for the
# mutual information, which keeps the contingency tables small enough to be estimated.
MI_CATEGORIES = 10
# Mutual information is computed for the pairs among at most this many columns (the
# first ones in column order) on at most MI_ROWS rows per side.
MAX_MI_COLUMNS = 64
MI_ROWS = 2000
# Added to the RMS before its log, so identical tables (RMS 0) stay finite.
MI_EPSILON = 1e-6
KNN_K = 5
KNN_ROWS = 2000
KNN_DISTANCE_FLOOR = 0.01
# Distance-based statistics (k-NN entropy here, PRDC and Vendi in the diversity
# analyzer) run on at most this many leading principal axes of the encoded rows.
MAX_NEIGHBOUR_DIMENSIONS = 64

# Tolerances: the effect each signal must exceed to matter in practice.
# Categorical entropy, as the share of the reference's entropy lost: folding a category
# that holds 1% of rows into the mode costs a three-category column 6-7%.
CATEGORICAL_ENTROPY_TOLERANCE = 0.05
# Decile entropy, as the share lost. It is a coarse measure of spread: a normal column
# loses 2% when its standard deviation shrinks by 22% (its variance by 40%), 4% when its
# variance halves.
BINNED_ENTROPY_TOLERANCE = 0.02
# RMS change of pairwise mutual information, in nats: 0.02 is every pair's quintile-
# binned mutual information moving as much as a correlation of 0.3 fading to 0.2
# (0.038 -> 0.017 nats).
MUTUAL_INFORMATION_TOLERANCE = 0.02
# log effective rank: about 10% fewer effective directions.
SPECTRAL_ENTROPY_TOLERANCE = 0.10
# Nats per dimension = log of the typical nearest-neighbour spacing ratio: rows 5%
# closer together in every direction.
KNN_ENTROPY_TOLERANCE = 0.05


# -- distances shared with the diversity analyzer ------------------------------------


def squared_distances(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``[len(x), len(y)]`` squared Euclidean distances, in float32 (clipped at 0).

    float32 halves the memory traffic that dominates this at a few thousand rows; both
    sides are centred first, which keeps the cancellation error of ``|x|^2 + |y|^2 -
    2 x.y`` far below the distance floors the callers apply to repeated rows.
    """
    centre = y.mean(axis=0) if len(y) else np.zeros(x.shape[1])
    x32 = (x - centre).astype(np.float32)
    y32 = x32 if y is x else (y - centre).astype(np.float32)
    sq = x32 @ y32.T
    sq *= -2.0
    sq += (x32 * x32).sum(axis=1)[:, None]
    sq += (y32 * y32).sum(axis=1)[None, :]
    return np.maximum(sq, 0.0, out=sq)


def kth_neighbour_distance(x: np.ndarray, k: int) -> np.ndarray:
    """Distance from each row of ``x`` to its ``k``-th nearest *other* row of ``x``."""
    if len(x) <= k:
        return np.full(len(x), np.nan)
    sq = squared_distances(x, x)
    np.fill_diagonal(sq, -1.0)  # the row itself sorts first, whatever its duplicates do
    kth = np.partition(sq, k, axis=1)[:, k]
    return np.sqrt(np.maximum(kth, 0.0)).astype(np.float64)


def log_unit_ball_volume(d: int) -> float:
    return 0.5 * d * np.log(np.pi) - float(gammaln(0.5 * d + 1.0))


def knn_entropy(
    x: np.ndarray, k: int = KNN_K, floor: float = 0.0, kth: np.ndarray | None = None
) -> float:
    """Kozachenko-Leonenko entropy estimate (nats) of the rows of ``x``, with k-NN
    distances floored at ``floor``; ``kth``: their k-th neighbour distances, if known."""
    n, d = x.shape
    if n <= k or d == 0:
        return np.nan
    distances = np.maximum(kth_neighbour_distance(x, k) if kth is None else kth, floor)
    if not (distances > 0).all():
        return -np.inf
    return float(digamma(n) - digamma(k) + log_unit_ball_volume(d) + d * np.log(distances).mean())


class NeighbourRows(ProjectedRows):
    """The rows the distance statistics use (encoded, on at most
    ``MAX_NEIGHBOUR_DIMENSIONS`` leading axes), one per comparison, with each part's
    k-th neighbour distances kept: the k-NN entropy and the diversity analyzer's PRDC
    ask for those of the same parts at every null split, and computing them twice was
    a tenth of a check on small tables."""

    def __init__(self, comparison: Comparison) -> None:
        super().__init__(EncodedRows(comparison), MAX_NEIGHBOUR_DIMENSIONS)
        self._kth: dict[tuple, np.ndarray] = {}

    @classmethod
    def of(cls, comparison: Comparison) -> NeighbourRows:
        if "neighbour rows" not in comparison.cache:
            comparison.cache["neighbour rows"] = cls(comparison)
        return comparison.cache["neighbour rows"]

    def kth(self, part: Part, k: int, limit: int | None = None) -> np.ndarray:
        """``kth_neighbour_distance`` of the part's rows (its first ``limit``)."""
        rows = part.rows if limit is None else part.rows[:limit]
        # By content: parts made on the fly (``head``) have short-lived row arrays.
        key = (id(part.view), k, rows.tobytes())
        if key not in self._kth:
            self._kth[key] = kth_neighbour_distance(self.rows(part, limit), k)
        return self._kth[key]


# -- per-column entropies -------------------------------------------------------------


def _entropy_of_counts(counts: np.ndarray) -> float:
    total = counts.sum()
    if total == 0:
        return np.nan
    p = counts[counts > 0] / total
    return float(-(p * np.log(p)).sum()) + 0.0  # + 0.0: no -0.0 for a single value


def categorical_entropy(codes: np.ndarray) -> float:
    codes = codes[codes >= 0]
    return _entropy_of_counts(np.bincount(codes)) if len(codes) else np.nan


class NumericRows:
    """The numeric columns of both samples as float64 matrices (NaN where missing or not
    finite), built once; ``rows(part)`` indexes them."""

    def __init__(self, comparison: Comparison, columns: list[str]) -> None:
        self.columns = columns

        def build(view) -> np.ndarray:
            matrix = np.empty((view.rows, len(columns)))
            for j, column in enumerate(columns):
                matrix[:, j] = view.numeric(column)
            matrix[~np.isfinite(matrix)] = np.nan
            return matrix

        self._matrices = PerView(comparison, build)

    def rows(self, part: Part, limit: int | None = None) -> np.ndarray:
        return self._matrices[part.view][part.rows if limit is None else part.rows[:limit]]


def column_quantiles(x: np.ndarray, q) -> np.ndarray:
    """``[len(q), columns]`` quantiles (numpy's default, linear interpolation) of each
    column over its non-NaN values; one sort of the matrix, several times faster than
    ``np.quantile`` along an axis."""
    q = np.asarray(q, dtype=np.float64)
    ordered = np.sort(x, axis=0)  # NaN sorts last
    present = (~np.isnan(x)).sum(axis=0)
    position = q[:, None] * np.maximum(present - 1, 0)[None, :]
    below = np.floor(position).astype(np.int64)
    above = np.minimum(below + 1, np.maximum(present - 1, 0)[None, :])
    fraction = position - below
    if len(x) == 0:
        return np.full((len(q), x.shape[1]), np.nan)
    low = np.take_along_axis(ordered, below, axis=0)
    high = np.take_along_axis(ordered, above, axis=0)
    with np.errstate(invalid="ignore"):
        result = low + (high - low) * fraction
    return np.where(present[None, :] > 0, result, np.nan)


def _bin_ids(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Per cell, how many of its column's ``edges`` (``[k, columns]``) are <= the value:
    the bin index with bins closed on the left (NaN gives 0; callers mask it)."""
    ids = np.zeros(values.shape, dtype=np.int64)
    with np.errstate(invalid="ignore"):
        for edge in edges:
            ids += values >= edge[None, :]
    return ids


def _count_bins(ids: np.ndarray, valid: np.ndarray, bins: int) -> np.ndarray:
    """``[columns, bins]`` counts of the ``[rows, columns]`` bin ids where ``valid``."""
    flat = ids + bins * np.arange(ids.shape[1])[None, :]
    counts = np.bincount(flat[valid], minlength=bins * ids.shape[1])
    return counts.reshape(ids.shape[1], bins)


def _entropy_of_rows(counts: np.ndarray) -> np.ndarray:
    total = counts.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = counts / total
        terms = np.where(p > 0, -p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    return np.where(total[:, 0] > 0, terms.sum(axis=1) + 0.0, np.nan)


# Beyond the reference's range, bins a tenth of its range wide, at most this many on
# each side (values farther out share the last one).
OUTSIDE_BINS = 50
# Candidates are moved onto the reference's location only when the move exceeds this
# share of the reference's 10-90% range (0.26 standard deviations of a normal column,
# which costs its decile entropy 1.3%, below BINNED_ENTROPY_TOLERANCE).
ALIGN_MIN_SHIFT = 0.1
_BINNED_QUANTILES = np.concatenate([[0.0], DECILES, [1.0]])


def value_steps(x: np.ndarray) -> np.ndarray:
    """Smallest gap between distinct values of each column (0 when it has one value):
    the resolution of counts, grades and rounded measurements."""
    ordered = np.sort(x, axis=0)
    with np.errstate(invalid="ignore"):
        gaps = np.diff(ordered, axis=0)
        gaps = np.where(gaps > 0, gaps, np.inf)
    step = gaps.min(axis=0) if len(gaps) else np.full(x.shape[1], np.inf)
    return np.where(np.isfinite(step), step, 0.0)


def binned_entropies(
    reference: np.ndarray, others: list[np.ndarray], align: bool = True
) -> np.ndarray:
    """Entropy (nats) of each column of each matrix in ``others`` over bins cut at the
    deciles of the same column of ``reference``. Returns ``[len(others), columns]``.

    With ``align`` each column is first moved by the median of its nine decile
    differences to the reference, rounded to the reference's value step (so that whole
    numbers stay whole), when that exceeds ``ALIGN_MIN_SHIFT`` of the reference's 10-90%
    range: a change of location is shift, not lost entropy. The median of decile
    differences is the whole move for a shift and about zero for a change of spread or
    of the mix of two modes (a 0..16 pixel with more 16s), which the median or the
    interquartile mean would both have "aligned" away into a false loss. Smaller moves
    cost less than the tolerance and are left alone: on whole numbers every move jumps a
    step across a decile edge that sits on a value.
    """
    q = column_quantiles(reference, _BINNED_QUANTILES)
    low, edges, high = q[0], q[1:10], q[10]
    width = (high - low) / 10.0
    width = np.where(width > 0, width, np.maximum(np.abs(low), 1.0) * 1e-6)
    step = value_steps(reference) if align else None
    results = []
    for values in others:
        if align and values is not reference:
            shift = np.median(column_quantiles(values, DECILES) - edges, axis=0)
            with np.errstate(invalid="ignore", divide="ignore"):
                shift = np.where(step > 0, np.round(shift / step) * step, shift)
                shift = np.where(np.abs(shift) > ALIGN_MIN_SHIFT * (q[9] - q[1]), shift, 0.0)
            values = values - np.nan_to_num(shift)[None, :]
        valid = ~np.isnan(values) & ~np.isnan(low)[None, :]
        with np.errstate(invalid="ignore"):
            ids = _bin_ids(values, edges)
            below, above = values < low, values > high
            for mask, start, distance in (
                (below, 10, low[None, :] - values),
                (above, 10 + OUTSIDE_BINS, values - high[None, :]),
            ):
                if mask.any():
                    steps = np.floor(distance[mask] / np.broadcast_to(width, values.shape)[mask])
                    ids[mask] = start + np.minimum(steps, OUTSIDE_BINS - 1).astype(np.int64)
        counts = _count_bins(ids, valid, 10 + 2 * OUTSIDE_BINS)
        results.append(_entropy_of_rows(counts))
    return np.array(results)


def _binned_pair(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``[[H(b) per column], [H(a) per column]]`` over ``a``'s decile bins."""
    return binned_entropies(a, [b, a])


def binned_entropy(reference: np.ndarray, values: np.ndarray) -> float:
    """Entropy of ``values`` over bins cut at the reference's deciles, after moving
    ``values`` onto the reference's location (one column)."""
    reference = np.where(np.isfinite(reference), reference, np.nan)[:, None]
    values = np.where(np.isfinite(values), values, np.nan)[:, None]
    return float(binned_entropies(reference, [values])[0, 0])


# -- mutual information -----------------------------------------------------------------


class _MutualInformation:
    """Pairwise mutual information of all chosen columns from one one-hot matrix."""

    def __init__(self, comparison: Comparison) -> None:
        numeric = comparison.columns(ColumnRole.NUMERIC)
        categorical = comparison.columns(ColumnRole.CATEGORICAL, ColumnRole.BOOLEAN)
        chosen = [c for c in comparison.roles if c in numeric or c in categorical]
        self.columns = chosen[:MAX_MI_COLUMNS]
        self.numeric_columns = [c for c in self.columns if c in numeric]
        self.categorical_columns = [c for c in self.columns if c not in numeric]
        self.numeric_rows = NumericRows(comparison, self.numeric_columns)
        # Slots: numeric columns first (quintile bins + missing), then categoricals
        # (top categories + "other" + missing); ``order`` maps back to column order.
        self.categorical_slots = [
            min(len(comparison.categories[c]), MI_CATEGORIES) + 2 for c in self.categorical_columns
        ]
        slots = [len(QUINTILES) + 2] * len(self.numeric_columns) + self.categorical_slots
        self.offsets = np.concatenate([[0], np.cumsum(slots)])[:-1].astype(np.int64)
        self.width = int(sum(slots))
        groups = np.zeros((self.width, len(slots)))
        for j, (start, size) in enumerate(zip(self.offsets, slots)):
            groups[start : start + size, j] = 1.0
        order = self.numeric_columns + self.categorical_columns
        position = [order.index(c) for c in self.columns]
        self.groups = groups[:, position]
        self.upper = np.triu_indices(len(self.columns), k=1)

    def _bins(self, part: Part) -> np.ndarray:
        blocks = []
        if self.numeric_columns:
            values = self.numeric_rows.rows(part)
            edges = column_quantiles(values, QUINTILES)
            ids = _bin_ids(values, edges)
            blocks.append(np.where(np.isnan(values), len(QUINTILES) + 1, ids))
        for column, size in zip(self.categorical_columns, self.categorical_slots):
            codes = part.codes(column)
            blocks.append(np.where(codes < 0, size - 1, np.minimum(codes, size - 2))[:, None])
        return np.hstack(blocks) + self.offsets

    def matrix(self, part: Part) -> np.ndarray:
        """``[columns, columns]`` mutual information in nats (entropies on the diagonal)."""
        n = len(part)
        onehot = np.zeros((n, self.width), dtype=np.float32)
        onehot[np.arange(n)[:, None], self._bins(part)] = 1.0
        joint = (onehot.T @ onehot).astype(np.float64) / n
        marginal = np.diag(joint).copy()
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = joint * np.log(joint / np.outer(marginal, marginal))
        terms[~(joint > 0)] = 0.0
        return self.groups.T @ terms @ self.groups

    def pairs(self, part: Part) -> np.ndarray:
        return self.matrix(part)[self.upper]

    def statistic(self, a: Part, b: Part) -> float:
        """log of the RMS change (the RMS is skewed right; its log is near symmetric)."""
        a, b = a.head(MI_ROWS), b.head(MI_ROWS)
        change = self.pairs(b) - self.pairs(a)
        return float(np.log(np.sqrt(np.mean(change**2)) + MI_EPSILON))


# -- the dimension ----------------------------------------------------------------------


def _per_column_signals(
    comparison: Comparison,
    columns: list[str],
    statistic,
    name: str,
    tolerance: float,
    what: str,
    root_deficit: bool = False,
) -> tuple[list[Signal], dict[str, float]]:
    """``statistic(a, b)`` gives ``[[f(b, column) ...], [f(a, column) ...]]``."""
    signals, statistics = [], {}
    if not columns:
        return signals, statistics
    fig = Paired.from_calibrated(
        comparison.calibrate(statistic), "lower", relative=True, root_deficit=root_deficit
    )
    for j, column in enumerate(columns):
        if not fig.finite(j):
            continue
        value, reference = fig.value[j], fig.reference[j]
        statistics[f"{name}[{column}]"] = float(value)
        statistics[f"{name}_reference[{column}]"] = float(reference)
        if value < reference:
            sentence = (
                f"entropy of `{column}`{what} fell from {reference:.3g} to {value:.3g} nats "
                f"({percent(fig.effect[j])} of it lost)"
            )
        else:
            sentence = (
                f"entropy of `{column}`{what}: candidate {value:.3g} vs reference "
                f"{reference:.3g} nats"
            )
        signals.append(
            Signal(
                name=name,
                kind=SignalKind.NARROWING,
                column=column,
                value=float(value),
                reference_value=float(reference),
                effect=float(fig.effect[j]),
                tolerance=tolerance,
                noise=float(fig.noise[j]),
                p_value=float(fig.p_value[j]),
                sentence=sentence,
            )
        )
    return signals, statistics


def _mutual_information_signal(comparison: Comparison) -> tuple[list[Signal], dict[str, float]]:
    mi = _MutualInformation(comparison)
    if len(mi.columns) < 2:
        return [], {}
    cal = comparison.calibrate(mi.statistic)
    log_value, log_reference, spread, p = figures(cal, "higher")
    value = float(np.exp(log_value[0]) - MI_EPSILON)
    reference = float(np.exp(log_reference[0]) - MI_EPSILON)
    a, b = comparison.observed_parts
    before, after = mi.pairs(a.head(MI_ROWS)), mi.pairs(b.head(MI_ROWS))
    worst = int(np.argmax(np.abs(after - before)))
    i, j = mi.upper[0][worst], mi.upper[1][worst]
    pair = f"`{mi.columns[i]}`-`{mi.columns[j]}`"
    statistics = {
        "mutual_information_rms_change": value,
        "mutual_information_rms_change_reference": reference,
        "mutual_information_pairs": float(len(before)),
    }
    sentence = (
        f"mutual information between column pairs changed by {value:.3f} nats RMS over "
        f"{len(before)} pairs (between random splits of both samples {reference:.3f}); largest "
        f"change {pair}: {before[worst]:.3f} -> {after[worst]:.3f} nats"
    )
    signal = Signal(
        name="mutual_information",
        kind=SignalKind.STRUCTURE,
        column=None,
        value=value,
        reference_value=reference,
        effect=value - reference,
        tolerance=MUTUAL_INFORMATION_TOLERANCE,
        # the null spread of log(RMS) times the RMS: the spread of the RMS itself
        noise=float(spread[0] * (reference + MI_EPSILON)),
        p_value=float(p[0]),
        sentence=sentence,
    )
    return [signal], statistics


def _spectral_entropy_signal(
    comparison: Comparison, encoded: SpectralRows
) -> tuple[list[Signal], dict[str, float]]:
    if encoded.width == 0:
        return [], {}

    def statistic(a: Part, b: Part) -> np.ndarray:
        return np.array([spectrum_entropy(covariance_spectrum(encoded.rows(p))[0]) for p in (b, a)])

    fig = Paired.from_calibrated(comparison.calibrate(statistic), "lower", relative=False)
    if not fig.finite(0):
        return [], {}
    v, r = float(fig.value[0]), float(fig.reference[0])
    verb = "fell to" if v < r else "is"
    sentence = (
        f"effective rank of the encoded rows {verb} {np.exp(v):.3g} (reference "
        f"{np.exp(r):.3g}; eigen-spectrum entropy {v:.3g} vs {r:.3g} nats over "
        f"{encoded.width} winsorized encoded dimensions)"
    )
    statistics = {"effective_rank": float(np.exp(v)), "effective_rank_reference": float(np.exp(r))}
    signal = Signal(
        name="spectral_entropy",
        kind=SignalKind.NARROWING,
        column=None,
        value=v,
        reference_value=r,
        effect=float(fig.effect[0]),
        tolerance=SPECTRAL_ENTROPY_TOLERANCE,
        noise=float(fig.noise[0]),
        p_value=float(fig.p_value[0]),
        sentence=sentence,
    )
    return [signal], statistics


def _knn_entropy_signal(
    comparison: Comparison, encoded: NeighbourRows
) -> tuple[list[Signal], dict[str, float]]:
    d = encoded.width
    spacing = encoded.kth(comparison.observed_parts[0], KNN_K, KNN_ROWS)
    statistics = {
        "knn_entropy_dimensions": float(d),
        "encoded_dimensions": float(encoded.source_width),
        "knn_entropy_k": float(KNN_K),
        "knn_entropy_rows": float(min(comparison.matched_rows, KNN_ROWS)),
    }
    if not np.isfinite(spacing).all() or np.median(spacing) <= 0:
        # Most reference rows have more than KNN_K copies: differential entropy is no
        # measure of such data (the categorical entropies are).
        statistics["knn_entropy_repeated_share"] = float(np.mean(spacing <= 0))
        return [], statistics
    floor = KNN_DISTANCE_FLOOR * float(np.median(spacing))
    statistics["knn_distance_floor"] = floor

    def statistic(a: Part, b: Part) -> np.ndarray:
        return np.array(
            [
                knn_entropy(
                    encoded.rows(p, KNN_ROWS), KNN_K, floor, encoded.kth(p, KNN_K, KNN_ROWS)
                )
                for p in (b, a)
            ]
        )

    fig = Paired.from_calibrated(comparison.calibrate(statistic), "lower", relative=False)
    if not fig.finite(0):
        return [], statistics
    v, r = float(fig.value[0]), float(fig.reference[0])
    per_dimension = float(fig.effect[0]) / d
    statistics["knn_entropy"] = v
    statistics["knn_entropy_reference"] = r
    closer = 1.0 - np.exp(-per_dimension)
    where = f"over {encoded.describe()}, k={KNN_K}"
    if v < r:
        sentence = (
            f"k-NN (Kozachenko-Leonenko) entropy of the rows fell from {r:.4g} to {v:.4g} "
            f"nats ({where}): candidate rows sit {closer:.0%} closer to their "
            f"{KNN_K}th-nearest neighbours"
        )
    else:
        sentence = (
            f"k-NN (Kozachenko-Leonenko) entropy of the rows: candidate {v:.4g} vs "
            f"reference {r:.4g} nats ({where})"
        )
    signal = Signal(
        name="knn_entropy",
        kind=SignalKind.NARROWING,
        column=None,
        value=v,
        reference_value=r,
        effect=float(per_dimension),
        tolerance=KNN_ENTROPY_TOLERANCE,
        noise=float(fig.noise[0]) / d,
        p_value=float(fig.p_value[0]),
        sentence=sentence,
    )
    return [signal], statistics


def run(comparison: Comparison) -> DimensionEvidence:
    numeric = comparison.columns(ColumnRole.NUMERIC)
    categorical = comparison.columns(ColumnRole.CATEGORICAL, ColumnRole.BOOLEAN)
    if not numeric and not categorical:
        return DimensionEvidence(
            NAME,
            not_run="no numeric or categorical columns (text and token columns add their "
            "own entropy signals, see dimensions/sequences.py)",
        )
    if not comparison.can_calibrate:
        return DimensionEvidence(NAME, not_run=not_calibratable(comparison))

    signals: list[Signal] = []
    statistics: dict[str, float] = {"matched_rows": float(comparison.matched_rows)}

    def add(result: tuple[list[Signal], dict[str, float]]) -> None:
        signals.extend(result[0])
        statistics.update(result[1])

    add(
        _per_column_signals(
            comparison,
            categorical,
            lambda a, b: np.array(
                [[categorical_entropy(p.codes(c)) for c in categorical] for p in (b, a)]
            ),
            "categorical_entropy",
            CATEGORICAL_ENTROPY_TOLERANCE,
            "",
        )
    )
    numeric_rows = NumericRows(comparison, numeric)
    add(
        _per_column_signals(
            comparison,
            numeric,
            lambda a, b: _binned_pair(numeric_rows.rows(a), numeric_rows.rows(b)),
            "binned_entropy",
            BINNED_ENTROPY_TOLERANCE,
            " over the reference's deciles",
            # The reference part fills its own deciles evenly: the difference is a
            # chi-square-like deficit, tested on its square root.
            root_deficit=True,
        )
    )
    add(_mutual_information_signal(comparison))
    encoded = EncodedRows(comparison)
    if encoded.width:
        add(_spectral_entropy_signal(comparison, SpectralRows(encoded)))
        if numeric:
            add(_knn_entropy_signal(comparison, NeighbourRows.of(comparison)))
    return DimensionEvidence(NAME, signals=tuple(signals), statistics=statistics)
