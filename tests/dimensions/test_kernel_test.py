"""The kernel two-sample test: exact under the null, powerful on a shifted share."""

from __future__ import annotations

import numpy as np
import pytest

from collapse_callbacks.dimensions.kernel_test import (
    MAX_PERMUTATIONS,
    MIN_PERMUTATIONS,
    mmd_test,
    permutations_for,
)


def _gram(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    rows = np.vstack([first, second])
    return rows @ rows.T


def test_p_values_are_uniform_when_both_sides_come_from_one_distribution():
    rng = np.random.default_rng(0)
    p_values = []
    for _ in range(200):
        # Heavy tails and repeated rows: the permutation null does not care.
        pool = rng.standard_t(3, size=(40, 3))
        pool[20:25] = pool[:5]
        order = rng.permutation(40)
        p_values.append(mmd_test(_gram(pool[order[:20]], pool[order[20:]]), rng, 199).p_value)
    p_values = np.array(p_values)
    # Binomial(200, 0.1) stays within 8..33 with probability > 0.999.
    assert 8 <= np.count_nonzero(p_values <= 0.1) <= 33
    assert 0.4 < np.median(p_values) < 0.6


def test_a_fifth_of_the_rows_moved_is_found():
    rng = np.random.default_rng(1)
    reference = rng.normal(size=(300, 4))
    candidate = rng.normal(size=(300, 4))
    candidate[:60] = rng.normal(scale=0.2, size=(60, 4)) + 1.0  # a fifth piled on one point
    test = mmd_test(_gram(reference, candidate), rng, 999)
    assert test.p_value <= 0.002
    assert test.effect > 5 * test.null_sd
    same = mmd_test(_gram(reference, rng.normal(size=(300, 4))), rng, 999)
    assert same.p_value > 0.01


def test_identical_sides_give_no_evidence():
    rows = np.random.default_rng(2).normal(size=(50, 2))
    test = mmd_test(_gram(rows, rows), np.random.default_rng(0), 499)
    assert test.mmd2 < 0 < test.p_value


def test_unequal_sides_are_refused():
    with pytest.raises(ValueError, match="same number"):
        mmd_test(np.eye(5), np.random.default_rng(0), 10)


def test_permutations_reach_below_the_threshold_alpha_needs():
    assert permutations_for(0.01) == 3000
    assert permutations_for(0.5) == MIN_PERMUTATIONS
    assert permutations_for(1e-6) == MAX_PERMUTATIONS
