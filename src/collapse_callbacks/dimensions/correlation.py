"""Correlation preservation: are the dependencies between columns intact?

Collapse smooths correlations away or invents them (a mixture with few components, a
copula fitted on too little data). Both directions are damage, so the statistics are
norms of the change and larger is worse:

* **Pearson** (on values clipped to the reference's 1%/99% quantiles) and **Spearman**
  (rank) correlation matrices of the numeric columns, on the matched-size samples (so
  that the observed change and its null, changes between disjoint random splits of both samples pooled,
  are measured alike): the RMS change over all pairs,
  ``||R_c - R_r||_F / sqrt(2 * pairs)`` (the largest change of any pair is a statistic);
* **Cramér's V** association matrix of the categorical (and boolean) columns: the RMS
  change over all pairs.

The full-data Pearson matrices (co-moments over complete rows) name the pairs that
changed most in the sentences, and the correlation of the two matrices' upper
triangles is reported as a statistic.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable

import numpy as np

from collapse_callbacks.comparison import (
    MAX_CATEGORIES_ENCODED,
    MIN_MATCHED_ROWS,
    Calibrated,
    Comparison,
    Part,
)
from collapse_callbacks.data.roles import ColumnRole
from collapse_callbacks.dimensions.base import DimensionEvidence, Signal, SignalKind
from collapse_callbacks.dimensions.fidelity import SAMPLE_MIN_MINORITY, quote

NAME = "correlation_preservation"

# RMS change of 0.05 over all pairs: e.g. every correlation off by 0.05, or a quarter
# of them off by 0.1 - the scale at which a linear model's coefficients on the data move
# noticeably. Real splits at the matched size are corrected for (see _debiased).
RMS_TOLERANCE = 0.05
# Cramér's V changes: the same scale as RMS_TOLERANCE.
ASSOCIATION_TOLERANCE = 0.05
# Pearson is computed on values clipped to the reference's 1% and 99% quantiles. Its
# sampling noise grows with the fourth moment, which a few extreme rows dominate in
# heavy-tailed columns: the splits of one reference sample then do not show how much a
# different sample's correlations move (on multivariate-t data, 14% of real splits gave
# p < 0.01 unclipped; breast_cancer's error columns behave alike). Clipping 1% per side
# keeps the linear dependence a model sees and bounds any one row's pull.
WINSOR = 0.01
# Bounds on the work per sample split (pairs grow with the square of the columns).
MAX_NUMERIC_COLUMNS = 64
MAX_CATEGORICAL_COLUMNS = 16
TOP_PAIRS = 3


def run(comparison: Comparison) -> DimensionEvidence:
    numeric = _usable_numeric(comparison)
    categorical = _usable_categorical(comparison)
    if len(numeric) < 2 and len(categorical) < 2:
        return DimensionEvidence(
            NAME,
            not_run=(
                "needs two varying numeric or two varying categorical columns; found "
                f"{len(numeric)} numeric and {len(categorical)} categorical"
            ),
        )
    if not comparison.can_calibrate:
        return DimensionEvidence(
            NAME,
            not_run=(
                f"the samples give {comparison.matched_rows} matched rows; correlations "
                f"need at least {MIN_MATCHED_ROWS} on each side"
            ),
        )
    statistics: dict[str, float] = {
        "numeric_columns": float(len(numeric)),
        "categorical_columns": float(len(categorical)),
        "matched_rows": float(comparison.matched_rows),
    }
    if len(numeric) < 2:
        numeric = []
    if len(categorical) < 2:
        categorical = []
    k_num, k_cat = len(numeric), len(categorical)
    num_pairs = np.triu_indices(k_num, 1)
    cat_pairs = np.triu_indices(k_cat, 1)
    levels = [min(len(comparison.categories[c]), MAX_CATEGORIES_ENCODED) for c in categorical]

    ranks = _PartRanks(numeric)
    sketches = [comparison.reference.states[c].sketch for c in numeric]
    low = np.array([s.quantile(WINSOR) for s in sketches])
    high = np.array([s.quantile(1 - WINSOR) for s in sketches])

    def matrices(part: Part) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x = np.column_stack([part.numeric(c) for c in numeric]) if numeric else None
        if numeric:
            with np.errstate(invalid="ignore"):
                x = np.clip(x, low, high)  # NaN stays NaN
        pearson = _pearson(x)[num_pairs] if numeric else np.empty(0)
        spearman = _pearson(ranks(part))[num_pairs] if numeric else np.empty(0)
        if categorical:
            codes = [np.minimum(part.codes(c), k - 1) for c, k in zip(categorical, levels)]
            association = _cramers_v_matrix(codes, levels)[cat_pairs]
        else:
            association = np.empty(0)
        return pearson, spearman, association

    def statistic(a: Part, b: Part) -> np.ndarray:
        (pa, sa, va), (pb, sb, vb) = matrices(a), matrices(b)
        return np.array([_rms(pb - pa), _rms(sb - sa), _max_abs(pb - pa), _rms(vb - va)])

    with _quiet():
        calibrated = comparison.calibrate(statistic)
    observed = calibrated.observed
    null = calibrated.null
    # p-values on a started-log scale, log(norm + the null's median norm): norms are
    # right-skewed, and the t approximation of their raw null under-states the upper
    # tail (see fidelity's Wasserstein); a plain logarithm over-states the spread
    # instead when a null draw falls near 0 (few pairs, e.g. three categorical
    # columns), which hid a destroyed association on penguins. The offset comes from
    # the null alone.
    with _quiet():  # a statistic with no pairs (no categorical columns) is NaN throughout
        start = np.nanmedian(null, axis=0)
        p_values = Calibrated(np.log(observed + start), np.log(null + start)).p_value("higher")
    (pa, sa, va), (pb, sb, vb) = (matrices(p) for p in comparison.observed_parts)

    signals = []
    if numeric:
        full = _full_pearson(comparison, numeric)
        pairs = list(zip(*num_pairs))
        if full is not None:
            ref_full, cand_full = full
            statistics["pearson_full_rms_change"] = _rms(cand_full - ref_full)
            statistics["pearson_full_correlation_of_correlations"] = _corr(ref_full, cand_full)
            changes = (ref_full, cand_full)
        else:
            changes = (pa, pb)
        statistics["pearson_correlation_of_correlations"] = _corr(pa, pb)
        statistics["spearman_correlation_of_correlations"] = _corr(sa, sb)
        drivers = _top_changes(numeric, pairs, *changes)
        if full is not None and drivers:
            drivers += " (full data)"
        n_pairs = len(pairs)
        signals.append(
            _norm_signal(
                "pearson_rms_change",
                observed[0],
                null[:, 0],
                p_values[0],
                RMS_TOLERANCE,
                lambda expected: (
                    f"correlations between numeric columns changed by {observed[0]:.3f} RMS "
                    f"over {n_pairs} pairs (random splits of both samples: {expected:.3f})"
                    + drivers
                ),
            )
        )
        signals.append(
            _norm_signal(
                "spearman_rms_change",
                observed[1],
                null[:, 1],
                p_values[1],
                RMS_TOLERANCE,
                lambda expected: (
                    f"rank (Spearman) correlations between numeric columns changed by "
                    f"{observed[1]:.3f} RMS over {n_pairs} pairs (random splits of both samples: "
                    f"{expected:.3f})" + _top_changes(numeric, pairs, sa, sb)
                ),
            )
        )
        # The largest single change is a statistic, not a signal: the null of a maximum
        # over many pairs is too skewed for the t approximation (on digits splits it
        # gave p < 0.01 five times as often as it should).
        statistics["pearson_max_pair_change"] = float(observed[2])
        statistics["pearson_max_pair_change_real_data"] = float(np.nanmean(null[:, 2]))
    if categorical:
        pairs = list(zip(*cat_pairs))
        signals.append(
            _norm_signal(
                "cramers_v_rms_change",
                observed[3],
                null[:, 3],
                p_values[3],
                ASSOCIATION_TOLERANCE,
                lambda expected: (
                    f"associations between categorical columns (Cramér's V) changed by "
                    f"{observed[3]:.3f} RMS over {len(pairs)} pairs (random splits of both samples: "
                    f"{expected:.3f})" + _top_changes(categorical, pairs, va, vb, "association")
                ),
            )
        )
    return DimensionEvidence(NAME, signals=tuple(signals), statistics=statistics)


# --- columns ----------------------------------------------------------------------


def _usable_numeric(comparison: Comparison) -> list[str]:
    """Numeric columns that vary in the reference (a near-constant column's correlations
    are noise at sample sizes), at most MAX_NUMERIC_COLUMNS, in column order."""
    h = comparison.matched_rows
    out = []
    for column in comparison.columns(ColumnRole.NUMERIC):
        sketch = comparison.reference.states[column].sketch
        total = sketch.count
        if total == 0 or comparison.candidate.states[column].sketch.count == 0:
            continue
        if h * (1 - sketch.counts.max() / total) >= SAMPLE_MIN_MINORITY:
            out.append(column)
    return out[:MAX_NUMERIC_COLUMNS]


def _usable_categorical(comparison: Comparison) -> list[str]:
    h = comparison.matched_rows
    out = []
    for column in comparison.columns(ColumnRole.CATEGORICAL, ColumnRole.BOOLEAN):
        codes = comparison.reference_view.codes(column)
        codes = codes[codes >= 0]
        if len(codes) == 0:
            continue
        top = np.bincount(codes).max() / len(codes)
        if h * (1 - top) >= SAMPLE_MIN_MINORITY:
            out.append(column)
    return out[:MAX_CATEGORICAL_COLUMNS]


# --- statistics -------------------------------------------------------------------


@contextlib.contextmanager
def _quiet():
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def _pearson(x: np.ndarray) -> np.ndarray:
    """Pearson correlation matrix over pairwise-complete rows; 0 where a column does
    not vary among them."""
    finite = np.isfinite(x)
    with np.errstate(all="ignore"):
        if finite.all():
            centered = x - x.mean(axis=0)
            norms = np.sqrt((centered**2).sum(axis=0))
            z = centered / np.where(norms > 0, norms, np.inf)
            corr = z.T @ z
        else:
            m = finite.astype(np.float64)
            counts = np.maximum(m.sum(axis=0), 1)
            x0 = np.where(finite, x - np.where(finite, x, 0).sum(axis=0) / counts, 0.0)
            n = m.T @ m
            sx = x0.T @ m  # [i, j]: sum of x_i over rows where both i and j are present
            sxx = (x0**2).T @ m
            sxy = x0.T @ x0
            mean_i = sx / n
            cov = sxy / n - mean_i * mean_i.T
            var = sxx / n - mean_i**2
            corr = cov / np.sqrt(var * var.T)
    corr[~np.isfinite(corr)] = 0.0
    corr = np.clip(corr, -1.0, 1.0)
    np.fill_diagonal(corr, 1.0)
    return corr


class _PartRanks:
    """Average ranks of each numeric column within a part, without sorting the part.

    Each sample view is sorted once (dense ranks of its values); a part's ranks then
    follow from counting its rows per dense rank: a value's average rank is the number
    of the part's smaller values plus half the number of its ties, plus one half. Equal
    to ``scipy.stats.rankdata`` on the part (NaN stays NaN), at a fraction of the cost
    of sorting each of the ~80 parts a calibration uses.
    """

    def __init__(self, columns: list[str]) -> None:
        self.columns = columns
        self._dense: dict[int, tuple[np.ndarray, list[int]]] = {}

    def _view(self, part: Part) -> tuple[np.ndarray, list[int]]:
        key = id(part.view)
        if key not in self._dense:
            dense, levels = [], []
            for column in self.columns:
                values = part.view.numeric(column)
                finite = np.isfinite(values)
                codes = np.full(len(values), -1, dtype=np.int64)
                unique, inverse = np.unique(values[finite], return_inverse=True)
                codes[finite] = inverse
                dense.append(codes)
                levels.append(len(unique))
            self._dense[key] = (np.column_stack(dense), levels)
        return self._dense[key]

    def __call__(self, part: Part) -> np.ndarray:
        dense, levels = self._view(part)
        codes = dense[part.rows]
        out = np.full(codes.shape, np.nan)
        for j, g in enumerate(levels):
            c = codes[:, j]
            present = c >= 0
            counts = np.bincount(c[present], minlength=g)
            below = np.cumsum(counts) - counts
            out[present, j] = below[c[present]] + (counts[c[present]] + 1) / 2
        return out


def _cramers_v_matrix(codes: list[np.ndarray], levels: list[int]) -> np.ndarray:
    """Bias-corrected Cramér's V (Bergsma 2013) for every pair, over rows where both
    are present; categories past MAX_CATEGORIES_ENCODED share the last level."""
    k = len(codes)
    out = np.eye(k)
    for i in range(k):
        for j in range(i + 1, k):
            ci, cj = codes[i], codes[j]
            both = (ci >= 0) & (cj >= 0)
            out[i, j] = out[j, i] = _cramers_v(ci[both], cj[both], levels[i], levels[j])
    return out


def _cramers_v(a: np.ndarray, b: np.ndarray, ka: int, kb: int) -> float:
    n = len(a)
    if n < 2:
        return 0.0
    table = np.bincount(a * kb + b, minlength=ka * kb).reshape(ka, kb).astype(np.float64)
    table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]
    r, c = table.shape
    if r < 2 or c < 2:
        return 0.0
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / n
    phi2 = ((table - expected) ** 2 / expected).sum() / n
    phi2 = max(0.0, phi2 - (r - 1) * (c - 1) / (n - 1))
    rc = r - (r - 1) ** 2 / (n - 1)
    cc = c - (c - 1) ** 2 / (n - 1)
    denominator = min(rc - 1, cc - 1)
    return float(math.sqrt(phi2 / denominator)) if denominator > 0 else 0.0


def _rms(d: np.ndarray) -> float:
    return float(np.sqrt(np.mean(d**2))) if d.size else math.nan


def _max_abs(d: np.ndarray) -> float:
    return float(np.abs(d).max()) if d.size else math.nan


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    if a.size < 2 or np.std(a) == 0 or np.std(b) == 0:
        return math.nan
    return float(np.corrcoef(a, b)[0, 1])


def _full_pearson(comparison: Comparison, columns: list[str]) -> tuple[np.ndarray, ...] | None:
    """Upper triangles of the full-data Pearson matrices (complete rows), or None."""
    out = []
    for profile in (comparison.reference, comparison.candidate):
        covariance = profile.comoments.result()
        if covariance.rows < 3:
            return None
        index = [covariance.columns.index(c) for c in columns]
        corr = covariance.correlation()[np.ix_(index, index)]
        out.append(corr[np.triu_indices(len(columns), 1)])
    return tuple(out)


def _top_changes(
    columns: list[str], pairs: list, before: np.ndarray, after: np.ndarray, word="correlation"
) -> str:
    change = np.abs(after - before)
    order = np.argsort(-change, kind="stable")[:TOP_PAIRS]
    parts = []
    for n, j in enumerate(order):
        if not change[j] > 0:
            break
        a, b = pairs[j]
        head = f"the {word} of " if n == 0 else ""
        parts.append(
            f"{head}{quote(columns[a])} and {quote(columns[b])} "
            f"{'went ' if n == 0 else ''}from {before[j]:.2f} to {after[j]:.2f}"
        )
    return ("; " + ", ".join(parts)) if parts else ""


# --- signals ----------------------------------------------------------------------


def _norm_signal(
    name: str,
    observed: float,
    null: np.ndarray,
    p_value: float,
    tolerance: float,
    sentence: Callable[[float], str],
) -> Signal:
    """A norm of changes, debiased in quadrature: an observed RMS is the root of the
    true change squared plus the sampling noise squared, so the effect is
    sqrt(observed^2 - mean(null^2)), zero for real data of the matched size."""
    null = null[np.isfinite(null)]
    floor = float(np.mean(null**2)) if null.size else 0.0
    effect = math.sqrt(max(0.0, observed**2 - floor))
    null_effect = np.sqrt(np.clip(null**2 - floor, 0, None))
    expected = float(np.mean(null)) if null.size else math.nan
    return Signal(
        name=name,
        kind=SignalKind.STRUCTURE,
        column=None,
        value=float(observed),
        reference_value=expected,
        effect=effect,
        tolerance=tolerance,
        noise=float(np.std(null_effect, ddof=1)) if null.size > 1 else math.nan,
        p_value=float(p_value),
        sentence=sentence(expected),
    )
