"""Which of the signals no selection produces by itself does this selection produce?

When the classifier test reads the candidate as real rows selected on one column
(``generalization.py``), the detector reads the narrowing and structure that follow as
shift, but not the signals in ``detector.NOT_FROM_SELECTION``: both tails of a column
thinner, more repeated rows. A selection on one column does not thin both tails of
that column, yet it can thin both tails of another through the data's own structure,
and it can keep a subpopulation whose rows repeat more often:

* flights filtered on a late `arr_time` loses both tails of `dep_time`: the earliest
  departures arrive early, and the latest arrive after midnight (times are HHMM);
* randhie filtered on `fmde` > its 30th percentile keeps the insured with a deductible,
  whose household rows repeat from year to year: 43% of rows repeat an earlier one
  against 33% in the reference.

So these signals are tested again on the selection test's matched samples: reference
and candidate rows drawn in equal numbers from each bin of the selection column, which
is the reference selected the way the candidate was. What the matched reference shows
as well is a consequence of the selection; what it does not still fails the gate. The
re-tests use a lenient level (``RETEST_P``): a signal is excused only when the matched
samples show no sign of it at 5%.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from collapse_callbacks.comparison import Comparison, Part
from collapse_callbacks.data.roles import ColumnRole
from collapse_callbacks.dimensions.fidelity import TAIL_LEVELS, TAIL_TOLERANCE
from collapse_callbacks.diversity import DUPLICATE_TOLERANCE, NEAR_DUPLICATE_TOLERANCE
from collapse_callbacks.profile.rows import row_hashes
from collapse_callbacks.profile.table import NEAR_DUPLICATE_DIGITS

# A signal that the matched samples show at this level (and beyond its tolerance) is
# not a consequence of the selection.
RETEST_P = 0.05
TABULAR = frozenset({ColumnRole.NUMERIC, ColumnRole.CATEGORICAL, ColumnRole.BOOLEAN})


def reproduced(comparison: Comparison, reference: Part, candidate: Part) -> tuple[str, ...]:
    """Keys (``Signal.key``) of the tail and duplicate signals this selection accounts
    for: in those tails the matched candidate rows are no thinner, and among themselves
    they repeat no more, than the matched reference rows."""
    keys = [
        f"tail_coverage_{_label(level)}:{column}"
        for column in comparison.columns(ColumnRole.NUMERIC)
        for level in TAIL_LEVELS
        if _tails_reproduced(comparison, column, level, reference, candidate)
    ]
    keys += _duplicates_reproduced(comparison, reference, candidate)
    return tuple(keys)


def _label(level: float) -> str:
    return f"{level:.1%}".replace(".0%", "%")  # as fidelity names its tail signals


def _tails_reproduced(
    comparison: Comparison, column: str, level: float, reference: Part, candidate: Part
) -> bool:
    sketch = comparison.reference.states[column].sketch
    r_values, c_values = reference.numeric(column), candidate.numeric(column)
    r_values, c_values = r_values[np.isfinite(r_values)], c_values[np.isfinite(c_values)]
    if sketch.count == 0 or len(r_values) == 0 or len(c_values) == 0:
        return False
    low, high = sketch.quantile(level), sketch.quantile(1 - level)
    coverages, p_values = [], []
    for r_beyond, c_beyond in (
        (r_values < low, c_values < low),
        (r_values > high, c_values > high),
    ):
        share_r, share_c = r_beyond.mean(), c_beyond.mean()
        # A selection that leaves no matched reference row beyond predicts the
        # candidate's empty tail: nothing is lost beyond what it explains.
        coverages.append(share_c / share_r if share_r > 0 else 1.0)
        p_values.append(_one_sided_p(share_r, len(r_values), share_c, len(c_values)))
    # As fidelity's signal: both tails thinner, the better-kept one beyond tolerance.
    still_thinner = max(p_values) < RETEST_P and 1.0 - max(coverages) > TAIL_TOLERANCE
    return not still_thinner


def _duplicates_reproduced(comparison: Comparison, reference: Part, candidate: Part) -> list[str]:
    """Duplicate rates of the two matched samples, equal in size. Only when both samples
    hold every row of their data and every column is tabular: a sample keeps a pair of
    copies whole with the square of its sampling rate, so samples of larger data would
    hide the candidate's copies, and text rows are compared by MinHash elsewhere."""
    whole = (
        comparison.reference_view.rows == comparison.reference.rows
        and comparison.candidate_view.rows == comparison.candidate.rows
    )
    if not whole or not set(comparison.roles.values()) <= TABULAR or len(candidate) == 0:
        return []
    keys = []
    for name, digits, tolerance in (
        ("duplicate_rate", None, DUPLICATE_TOLERANCE),
        ("near_duplicate_rate", NEAR_DUPLICATE_DIGITS, NEAR_DUPLICATE_TOLERANCE),
    ):
        rate_r = _repeat_rate(reference, comparison, digits)
        rate_c = _repeat_rate(candidate, comparison, digits)
        p = _one_sided_p(1 - rate_r, len(reference), 1 - rate_c, len(candidate))
        if not (p < RETEST_P and rate_c - rate_r > tolerance):
            keys.append(name)
    return keys


def _repeat_rate(part: Part, comparison: Comparison, digits: int | None) -> float:
    """Share of the part's rows that repeat an earlier row of the part."""
    table = part.view.table.take(part.rows)
    hashes = np.concatenate(
        [row_hashes(batch, comparison.roles, digits) for batch in table.to_batches()]
    )
    return 1.0 - len(np.unique(hashes)) / len(hashes)


def _one_sided_p(share_r: float, n_r: int, share_c: float, n_c: int) -> float:
    """Two-proportion z-test that the candidate's share is lower than the reference's."""
    pool = (share_r * n_r + share_c * n_c) / (n_r + n_c)
    se = math.sqrt(pool * (1 - pool) * (1 / n_r + 1 / n_c))
    if se == 0:
        return 0.5 if share_c >= share_r else 0.0
    return float(stats.norm.cdf((share_c - share_r) / se))
