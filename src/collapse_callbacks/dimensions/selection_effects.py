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

import numpy as np

from collapse_callbacks.comparison import Comparison, Part
from collapse_callbacks.data.roles import ColumnRole
from collapse_callbacks.dimensions.fidelity import (
    TAIL_LEVELS,
    TAIL_TOLERANCE,
    lower_proportion_test,
    tail_label,
)
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
        f"tail_coverage_{tail_label(level)}:{column}"
        for column in comparison.columns(ColumnRole.NUMERIC)
        for level in TAIL_LEVELS
        if _tails_reproduced(comparison, column, level, reference, candidate)
    ]
    keys += _duplicates_reproduced(comparison, reference, candidate)
    return tuple(keys)


def _tails_reproduced(
    comparison: Comparison, column: str, level: float, reference: Part, candidate: Part
) -> bool:
    sketch = comparison.reference.states[column].sketch
    r_values, c_values = reference.numeric(column), candidate.numeric(column)
    r_values, c_values = r_values[np.isfinite(r_values)], c_values[np.isfinite(c_values)]
    if sketch.count == 0 or len(r_values) == 0 or len(c_values) == 0:
        return False
    low, high = sketch.quantile(level), sketch.quantile(1 - level)
    n_r, n_c = len(r_values), len(c_values)
    coverages, p_values = [], []
    for r_beyond, c_beyond in (
        (r_values < low, c_values < low),
        (r_values > high, c_values > high),
    ):
        r, c = int(r_beyond.sum()), int(c_beyond.sum())
        # A selection that leaves no matched reference row beyond predicts the
        # candidate's empty tail: nothing is lost beyond what it explains.
        coverages.append((c / n_c) / (r / n_r) if r else 1.0)
        p_values.append(lower_proportion_test(c, n_c, r, n_r)[0])
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
        distinct_r = _distinct_rows(reference, comparison, digits)
        distinct_c = _distinct_rows(candidate, comparison, digits)
        # More repeated rows is a lower share of distinct ones.
        p, _ = lower_proportion_test(distinct_c, len(candidate), distinct_r, len(reference))
        excess = distinct_r / len(reference) - distinct_c / len(candidate)
        if not (p < RETEST_P and excess > tolerance):
            keys.append(name)
    return keys


def _distinct_rows(part: Part, comparison: Comparison, digits: int | None) -> int:
    """How many of the part's rows differ from every earlier row of the part."""
    table = part.view.table.take(part.rows)
    hashes = [row_hashes(batch, comparison.roles, digits) for batch in table.to_batches()]
    return len(np.unique(np.concatenate(hashes)))
