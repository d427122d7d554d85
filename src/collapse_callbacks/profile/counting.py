"""Counting distinct values by sorting.

``np.unique`` on 64-bit hashes takes a hash-table path that is two orders of magnitude
slower than sorting the same array (numpy 2.x: 7.5 s against 0.04 s for 7M random
uint64 on one core), and hashes of words, n-grams and rows are exactly such arrays.
"""

from __future__ import annotations

import numpy as np


def _starts(ordered: np.ndarray) -> np.ndarray:
    if len(ordered) == 0:
        return np.empty(0, dtype=np.int64)
    return np.r_[0, np.flatnonzero(ordered[1:] != ordered[:-1]) + 1]


def distinct_count(values: np.ndarray) -> int:
    """How many distinct values ``values`` holds."""
    if len(values) == 0:
        return 0
    ordered = np.sort(values)
    return int(1 + np.count_nonzero(ordered[1:] != ordered[:-1]))


def unique_counts(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values, ascending, and how often each occurs."""
    ordered = np.sort(values)
    starts = _starts(ordered)
    counts = np.diff(np.r_[starts, len(ordered)]).astype(np.int64)
    return ordered[starts], counts


def unique_sums(keys: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct keys, ascending, and the sum of the weights of each."""
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    starts = _starts(ordered)
    if len(starts) == 0:
        return ordered, weights[:0]
    return ordered[starts], np.add.reduceat(weights[order], starts)


def dense_ids(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values, ascending, and each value's index among them (as
    ``np.unique(values, return_inverse=True)``)."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    starts = _starts(ordered)
    group = np.zeros(len(values), dtype=np.int64)
    if len(starts) > 1:
        group[starts[1:]] = 1
    inverse = np.empty(len(values), dtype=np.int64)
    inverse[order] = np.cumsum(group)
    return ordered[starts], inverse
