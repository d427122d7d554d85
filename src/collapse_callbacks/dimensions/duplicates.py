"""Whole-data duplicate rates of two datasets, compared at the smaller one's size.

Duplicates are pairs, and a uniform sample of rows keeps a pair whole only with the
square of its sampling rate: a million-row candidate in which every document has a
near copy shows almost none of them in a 2,000-row sample. So these rates come from
the profiles' whole-data states (exact row hashes, rounded row hashes, MinHash band
keys of documents), not from the row sample. The larger dataset is thinned to the
smaller's size in expectation (``DuplicateState.at_size``), since duplicates grow
with size, and the difference is tested one-sided (more duplicates is worse) against
the two estimates' standard errors.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from collapse_callbacks.dimensions.base import Signal, SignalKind
from collapse_callbacks.profile.rows import DuplicateFigure, DuplicateState


@dataclass(frozen=True)
class DuplicateTest:
    value: float  # the candidate's rate at the matched size
    reference: float  # the reference's rate at the matched size
    noise: float  # standard error of their difference
    p_value: float
    rows: int  # the matched size

    @property
    def effect(self) -> float:
        return self.value - self.reference

    def signal(self, name: str, column: str | None, tolerance: float, sentence: str) -> Signal:
        """The narrowing signal of this test (more duplicates is worse)."""
        return Signal(
            name=name,
            kind=SignalKind.NARROWING,
            column=column,
            value=self.value,
            reference_value=self.reference,
            effect=self.effect,
            tolerance=tolerance,
            noise=self.noise,
            p_value=self.p_value,
            sentence=sentence,
        )


def compare_duplicates(
    reference: Sequence[DuplicateState], candidate: Sequence[DuplicateState]
) -> DuplicateTest:
    """Candidate vs reference duplicate rate at the smaller one's size.

    Each side is one state (rows) or one per MinHash band (documents), averaged. Paired
    states are first brought to one hash-sampling level, so both sides' figures come
    from the same groups of values: a fixed hash keeps the same half of the values in
    every comparison of a dataset, and two different halves would differ by their luck
    every time. The bands see the same documents, so their errors move together: a
    side's standard error is taken as the mean of its bands' (the bound when they are
    fully correlated)."""
    rows = max(min(reference[0].rows, candidate[0].rows), 1)
    ref, cand = [], []
    for r, c in zip(reference, candidate, strict=True):
        level = max(r.level, c.level)
        ref.append(r.coarsened(level).at_size(rows))
        cand.append(c.coarsened(level).at_size(rows))
    ref_fraction, ref_error = _mean(ref)
    cand_fraction, cand_error = _mean(cand)
    # Both figures vary like those of a dataset of ``rows`` rows (the larger side's
    # includes its thinning), so if nothing differs their errors are alike. On a few
    # hundred rows a side's own error rests on its few groups of repeats, and a side
    # that happened to repeat little looks precise: neither is taken below the other.
    variance = 2.0 * max(ref_error, cand_error) ** 2
    # A binomial floor of one repeat in ``rows``: two datasets that never repeat a row
    # have zero variance, and one repeat must not then read as certainty.
    floor = 2.0 * max(ref_fraction, 1.0 / rows) / rows
    noise = math.sqrt(max(variance, floor))
    effect = cand_fraction - ref_fraction
    return DuplicateTest(
        value=cand_fraction,
        reference=ref_fraction,
        noise=noise,
        p_value=float(stats.norm.sf(effect / noise)),
        rows=rows,
    )


def _mean(figures: list[DuplicateFigure]) -> tuple[float, float]:
    """Mean fraction and mean standard error."""
    return (
        float(np.mean([f.fraction for f in figures])),
        float(np.mean([math.sqrt(f.variance) for f in figures])),
    )
