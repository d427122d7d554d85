"""The sort-based counting helpers agree with numpy.unique."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from collapse_callbacks.profile.counting import (
    dense_ids,
    distinct_count,
    unique_counts,
    unique_sums,
)

values = st.lists(st.integers(min_value=-5, max_value=5) | st.integers(0, 2**62), max_size=200)


@given(values)
def test_counting_matches_numpy_unique(items):
    x = np.array(items, dtype=np.int64)
    unique, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    assert distinct_count(x) == len(unique)
    got_unique, got_counts = unique_counts(x)
    assert got_unique.tolist() == unique.tolist() and got_counts.tolist() == counts.tolist()
    got_unique, got_inverse = dense_ids(x)
    assert got_unique.tolist() == unique.tolist() and got_inverse.tolist() == inverse.tolist()
    weights = np.arange(len(x), dtype=np.int64)
    keys, sums = unique_sums(x, weights)
    assert keys.tolist() == unique.tolist()
    assert (
        sums.tolist()
        == np.bincount(inverse, weights=weights, minlength=len(unique)).astype(int).tolist()
    )
