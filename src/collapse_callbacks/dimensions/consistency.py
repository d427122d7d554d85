"""Statistical consistency: classical two-sample tests, one per column.

* categorical and boolean columns: the chi-square test of homogeneity on the full
  counts (categories whose expected count is under 5 merged into one);
* numeric columns: the k-sample Anderson-Darling test and the Mann-Whitney U test on
  the matched-size samples (``comparison.observed_parts``: ``h`` reference rows
  against ``h`` candidate rows).

They test *any* difference, so every signal is of kind ``shift``: they tell that the
candidate is not the reference's distribution, and the other dimensions tell whether
the difference is narrowing or structural. The detector applies Holm's correction
across the signals of this dimension; each signal carries its own test's p-value.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter

import numpy as np
from scipy import stats

from collapse_callbacks.comparison import Comparison
from collapse_callbacks.data.roles import ColumnRole
from collapse_callbacks.dimensions.base import DimensionEvidence, Signal, SignalKind
from collapse_callbacks.dimensions.fidelity import category_counts, percent, quote

NAME = "statistical_consistency"

# Cochran's rule: the chi-square approximation needs expected counts of 5 or more.
CHI2_MIN_EXPECTED = 5.0
# Cramér's V (bias-corrected, Bergsma 2013) of 0.1 is Cohen's "small" association
# between the column and the reference/candidate label.
CRAMERS_V_TOLERANCE = 0.1
# Anderson-Darling distance sqrt((A2 - 1) / n_eff): the size-free form of the statistic,
# an estimate of sqrt(integral (F_c - F_r)^2 / (H (1 - H)) dH). 0.1 is a location shift
# of about 0.17 standard deviations for a normal column, comparable to a KS of 0.07.
AD_TOLERANCE = 0.1
# |AUC - 0.5| * 2 (the rank-biserial correlation): 0.1 means a candidate value exceeds a
# reference value 55% of the time instead of 50%, Cohen's small effect for ranks.
AUC_TOLERANCE = 0.1

# Numeric columns with at most this many distinct values are tested as categories.
DISCRETE_MAX_VALUES = 20

# Beyond scipy's table (p < 0.001) the asymptotic A2 tail is used from here on.
_AD_TABLE_END = 6.0


def run(comparison: Comparison) -> DimensionEvidence:
    numeric = comparison.columns(ColumnRole.NUMERIC)
    categorical = comparison.columns(ColumnRole.CATEGORICAL, ColumnRole.BOOLEAN)
    if not numeric and not categorical:
        return DimensionEvidence(NAME, not_run="no numeric or categorical column to test")
    signals: list[Signal] = []
    statistics: dict[str, float] = {}
    for column in categorical:
        reference, candidate = category_counts(comparison, column)
        signal = _chi_square(column, reference, candidate, statistics)
        if signal is not None:
            signals.append(signal)
    # A numeric column with few values (ratings, counts, pixel levels) gets the
    # chi-square test on its exact value counts instead of Anderson-Darling, whose
    # normal-theory p-value is too small under heavy ties (on random splits of the
    # digits pixels it fell below 0.01 in 2.5% of tests).
    discrete = [c for c in numeric if _value_counts(comparison, c) is not None]
    for column in discrete:
        reference, candidate = _value_counts(comparison, column)
        signal = _chi_square(column, reference, candidate, statistics)
        if signal is not None:
            signals.append(signal)
    if numeric and comparison.can_calibrate:
        reference_part, candidate_part = comparison.observed_parts
        statistics["matched_rows"] = float(comparison.matched_rows)
        for column in numeric:
            a = reference_part.numeric(column)
            b = candidate_part.numeric(column)
            a, b = a[np.isfinite(a)], b[np.isfinite(b)]
            if len(a) < 2 or len(b) < 2 or np.unique(np.concatenate([a, b])).size < 2:
                statistics[f"{column}.sample_tests_skipped"] = 1.0
                continue
            if column not in discrete:
                signals.append(_anderson_darling(column, a, b, statistics))
            signals.append(_mann_whitney(column, a, b, statistics))
    elif numeric:
        statistics["sample_tests_skipped_matched_rows"] = float(comparison.matched_rows)
    if not signals:
        return DimensionEvidence(
            NAME,
            statistics=statistics,
            not_run="no column had enough rows on both sides for a two-sample test",
        )
    return DimensionEvidence(NAME, signals=tuple(signals), statistics=statistics)


def _value_counts(comparison: Comparison, column: str) -> tuple[Counter, Counter] | None:
    """Exact value counts of a numeric column with at most DISCRETE_MAX_VALUES values in
    the reference, or None when the column is continuous (or the candidate's is)."""
    ref = comparison.reference.states[column].sketch
    cand = comparison.candidate.states[column].sketch
    if not (ref.exact and cand.exact) or not 0 < len(ref.keys) <= DISCRETE_MAX_VALUES:
        return None
    if cand.count == 0:
        return None
    return (
        Counter(dict(zip(ref.keys.tolist(), ref.counts.tolist()))),
        Counter(dict(zip(cand.keys.tolist(), cand.counts.tolist()))),
    )


# --- chi-square -------------------------------------------------------------------


def merged_table(
    reference: Counter, candidate: Counter, min_expected: float = CHI2_MIN_EXPECTED
) -> tuple[np.ndarray, list]:
    """A 2 x k table (reference, candidate) over the categories of both, the rarest
    merged into one bucket (labelled None) until every expected count is at least
    ``min_expected``. Returns the table and the bucket labels."""
    keys = sorted(
        set(reference) | set(candidate),
        key=lambda v: (reference.get(v, 0) + candidate.get(v, 0), str(v)),
    )
    n_r, n_c = sum(reference.values()), sum(candidate.values())
    total = n_r + n_c
    smaller = min(n_r, n_c)
    kept, other = [], np.zeros(2)
    for v in keys:
        counts = np.array([reference.get(v, 0), candidate.get(v, 0)], dtype=np.float64)
        if smaller * counts.sum() / total < min_expected:
            other += counts
        else:
            kept.append((v, counts))
    # kept is in ascending order of size: fold the merged bucket into the smallest kept
    # categories until it is large enough on its own.
    while other.sum() and smaller * other.sum() / total < min_expected and kept:
        other += kept.pop(0)[1]
    labels = [v for v, _ in kept]
    columns = [c for _, c in kept]
    if other.sum():
        labels.append(None)
        columns.append(other)
    if not columns:
        return np.zeros((2, 0)), []
    return np.column_stack(columns), labels


def _chi_square(
    column: str, reference: Counter, candidate: Counter, statistics: dict
) -> Signal | None:
    table, labels = merged_table(reference, candidate)
    k = table.shape[1]
    n = table.sum()
    if k < 2 or table.sum(axis=1).min() == 0:
        statistics[f"{column}.chi_square_skipped"] = 1.0
        return None
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / n
    chi2 = float(((table - expected) ** 2 / expected).sum())
    df = k - 1
    p_value = float(stats.chi2.sf(chi2, df))
    v = math.sqrt(max(0.0, chi2 / n - df / (n - 1)))
    statistics[f"{column}.chi_square"] = chi2
    statistics[f"{column}.chi_square_df"] = float(df)
    shares = table / table.sum(axis=1, keepdims=True)
    j = int(np.argmax(np.abs(shares[1] - shares[0])))
    label = "the merged rare categories" if labels[j] is None else quote(labels[j])
    return Signal(
        name="chi_square",
        kind=SignalKind.SHIFT,
        column=column,
        value=v,
        reference_value=0.0,
        effect=v,
        tolerance=CRAMERS_V_TOLERANCE,
        # V at one standard deviation of chi-square above its null mean.
        noise=math.sqrt(math.sqrt(2 * df) / n),
        p_value=p_value,
        sentence=(
            f"the category frequencies of {quote(column)} differ from the reference's "
            f"(chi-square {chi2:.1f} on {df} df, Cramér's V {v:.3f}); {label} is "
            f"{percent(shares[0, j])} of the reference and {percent(shares[1, j])} of the "
            "candidate"
        ),
    )


# --- Anderson-Darling and Mann-Whitney ----------------------------------------------


def _ad_variance(n1: int, n2: int) -> float:
    """Variance of the 2-sample A2 under the null (Scholz & Stephens 1987, eq. 4), as
    scipy computes it to standardize the statistic."""
    k, big_n = 2, n1 + n2
    h_sum = 1 / n1 + 1 / n2
    hs_cs = (1.0 / np.arange(big_n - 1, 1, -1)).cumsum()
    h = hs_cs[-1] + 1
    g = (hs_cs / np.arange(2, big_n)).sum()
    a = (4 * g - 6) * (k - 1) + (10 - 6 * g) * h_sum
    b = (2 * g - 4) * k**2 + 8 * h * k + (2 * g - 14 * h - 4) * h_sum - 8 * h + 4 * g - 6
    c = (6 * h + 2 * g - 2) * k**2 + (4 * h - 4 * g + 6) * k + (2 * h - 6) * h_sum + 4 * h
    d = (2 * h + 6) * k**2 - 4 * h * k
    return float(
        (a * big_n**3 + b * big_n**2 + c * big_n + d)
        / ((big_n - 1.0) * (big_n - 2.0) * (big_n - 3.0))
    )


def _ad_asymptotic_sf(a2: float) -> float:
    """P(A2 > a2) for the limiting distribution of the 2-sample statistic (that of the
    one-sample A-infinity; Marsaglia & Marsaglia 2004, accurate to ~1e-6 absolute).
    Past the end of scipy's table the tail decays as exp(-a2) (its largest
    eigenvalue is 1/2), which we follow from there: slightly conservative."""
    z = max(a2, 1e-6)
    if z > _AD_TABLE_END:
        return _ad_asymptotic_sf(_AD_TABLE_END) * math.exp(-(z - _AD_TABLE_END))
    if z < 2:
        cdf = (
            math.exp(-1.2337141 / z)
            / math.sqrt(z)
            * (
                2.00012
                + (0.247105 - (0.0649821 - (0.0347962 - (0.011672 - 0.00168691 * z) * z) * z) * z)
                * z
            )
        )
        return min(1.0, max(0.0, 1 - cdf))
    exponent = (
        1.0776 - (2.30695 - (0.43424 - (0.082433 - (0.008056 - 0.0003146 * z) * z) * z) * z) * z
    )
    return -math.expm1(-math.exp(exponent))


def _anderson_darling(column: str, a: np.ndarray, b: np.ndarray, statistics: dict) -> Signal:
    with warnings.catch_warnings():
        # scipy caps its p-value to [0.001, 0.25] with a warning; we extend it below.
        warnings.simplefilter("ignore", UserWarning)
        result = stats.anderson_ksamp([a, b], variant="right")
    standardized = float(result.statistic)
    a2 = standardized * math.sqrt(_ad_variance(len(a), len(b))) + 1.0
    p_value = float(result.pvalue)
    if p_value <= 0.001:
        # Floored by scipy's table: the asymptotic tail, never above the floor.
        p_value = min(0.001, _ad_asymptotic_sf(a2))
        statistics[f"{column}.anderson_darling_p_beyond_table"] = 1.0
    elif p_value >= 0.25:
        p_value = max(0.25, _ad_asymptotic_sf(a2))
    n_eff = len(a) * len(b) / (len(a) + len(b))
    distance = math.sqrt(max(0.0, a2 - 1.0) / n_eff)
    statistics[f"{column}.anderson_darling"] = standardized
    return Signal(
        name="anderson_darling",
        kind=SignalKind.SHIFT,
        column=column,
        value=distance,
        reference_value=0.0,
        effect=distance,
        tolerance=AD_TOLERANCE,
        # The distance at one null standard deviation of A2 above its mean of 1.
        noise=math.sqrt(math.sqrt(_ad_variance(len(a), len(b))) / n_eff),
        p_value=p_value,
        sentence=(
            f"{quote(column)} is distributed differently in the candidate "
            f"(Anderson-Darling {standardized:.1f} standard deviations above real data, "
            f"distance {distance:.3f}, on samples of {len(a)} and {len(b)} rows)"
        ),
    )


def _mann_whitney(column: str, a: np.ndarray, b: np.ndarray, statistics: dict) -> Signal:
    result = stats.mannwhitneyu(b, a, alternative="two-sided", method="asymptotic")
    auc = float(result.statistic) / (len(a) * len(b))
    effect = abs(auc - 0.5) * 2
    statistics[f"{column}.mann_whitney_auc"] = auc
    direction = "larger" if auc > 0.5 else "smaller"
    return Signal(
        name="mann_whitney",
        kind=SignalKind.SHIFT,
        column=column,
        value=auc,
        reference_value=0.5,
        effect=effect,
        tolerance=AUC_TOLERANCE,
        noise=2 * math.sqrt((len(a) + len(b) + 1) / (12 * len(a) * len(b))),
        p_value=float(result.pvalue),
        sentence=(
            f"{quote(column)} tends to be {direction} in the candidate: a candidate value "
            f"exceeds a reference value with probability {auc:.2f} instead of 0.50 "
            f"(Mann-Whitney, samples of {len(a)} and {len(b)} rows)"
        ),
    )
