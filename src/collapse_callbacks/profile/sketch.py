"""A mergeable distribution sketch for one numeric column.

Exact value counts while a column has at most ``EXACT_LIMIT`` distinct values (integer
codes, years, ratings: data where a relative-error grid would blur values together);
past that, a logarithmic grid with relative accuracy ``ALPHA`` (the DDSketch layout:
bucket ``i`` holds values in ``(gamma**(i-1), gamma**i]``, mirrored for negatives).
Both forms merge by adding counts, so two halves merged equal the whole exactly.

Every query works on ``points()``: sorted representative values with their weights,
from which CDFs, quantiles, tail masses and distances between two sketches follow.
"""

from __future__ import annotations

import math

import numpy as np

from collapse_callbacks.profile.counting import unique_counts, unique_sums

EXACT_LIMIT = 2048
ALPHA = 0.002
_GAMMA = (1 + ALPHA) / (1 - ALPHA)
_LOG_GAMMA = math.log(_GAMMA)
_MIN_MAGNITUDE = 1e-12  # smaller magnitudes count as zero


def _merge_counts(keys_a, counts_a, keys_b, counts_b):
    keys = np.concatenate([keys_a, keys_b])
    counts = np.concatenate([counts_a, counts_b])
    return unique_sums(keys, counts)


class QuantileSketch:
    def __init__(self) -> None:
        self.exact = True
        self.keys = np.empty(0, dtype=np.float64)  # values (exact) or signed bucket ids
        self.counts = np.empty(0, dtype=np.int64)

    @property
    def count(self) -> int:
        return int(self.counts.sum())

    def update(self, values: np.ndarray) -> None:
        """Fold in finite float64 values."""
        if values.size == 0:
            return
        keys = values if self.exact else _bucket_ids(values)
        unique, counts = unique_counts(keys)
        self.keys, self.counts = _merge_counts(self.keys, self.counts, unique, counts)
        if self.exact and len(self.keys) > EXACT_LIMIT:
            self._to_grid()

    def merge(self, other: QuantileSketch) -> QuantileSketch:
        merged = QuantileSketch()
        a, b = common_grid(self, other)
        merged.exact = a.exact
        merged.keys, merged.counts = _merge_counts(a.keys, a.counts, b.keys, b.counts)
        if merged.exact and len(merged.keys) > EXACT_LIMIT:
            merged._to_grid()
        return merged

    def _as_grid(self) -> QuantileSketch:
        if not self.exact:
            return self
        copy = QuantileSketch()
        copy.keys, copy.counts = self.keys, self.counts
        copy._to_grid()
        return copy

    def _to_grid(self) -> None:
        ids = _bucket_ids(self.keys)
        self.keys, self.counts = unique_sums(ids, self.counts)
        self.exact = False

    def points(self) -> tuple[np.ndarray, np.ndarray]:
        """(sorted values, counts); on the grid a bucket's value is its midpoint."""
        if self.exact:
            return self.keys, self.counts
        return _bucket_values(self.keys), self.counts

    def quantile(self, q: float) -> float:
        values, counts = self.points()
        if len(values) == 0:
            return math.nan
        cumulative = np.cumsum(counts)
        rank = q * (cumulative[-1] - 1)
        return float(values[np.searchsorted(cumulative, rank, side="right")])

    def mass_above(self, threshold: float) -> float:
        values, counts = self.points()
        total = counts.sum()
        return float(counts[values > threshold].sum() / total) if total else math.nan

    def mass_below(self, threshold: float) -> float:
        values, counts = self.points()
        total = counts.sum()
        return float(counts[values < threshold].sum() / total) if total else math.nan

    def to_state(self) -> dict:
        return {"exact": self.exact, "keys": self.keys, "counts": self.counts}

    @classmethod
    def from_state(cls, state: dict) -> QuantileSketch:
        sketch = cls()
        sketch.exact = bool(state["exact"])
        sketch.keys = np.asarray(state["keys"], dtype=np.float64)
        sketch.counts = np.asarray(state["counts"], dtype=np.int64)
        return sketch


def _bucket_ids(values: np.ndarray) -> np.ndarray:
    """Signed bucket ids: 0 for (near) zero, +i / -i for positive / negative values.

    Ids are stored as float64 so that exact values and ids share one array type.
    """
    magnitude = np.abs(values)
    small = magnitude < _MIN_MAGNITUDE
    ids = np.ceil(np.log(np.where(small, 1.0, magnitude) / _MIN_MAGNITUDE) / _LOG_GAMMA) + 1
    return np.where(small, 0.0, np.sign(values) * ids)


def _bucket_values(ids: np.ndarray) -> np.ndarray:
    magnitude = _MIN_MAGNITUDE * np.exp((np.abs(ids) - 1) * _LOG_GAMMA) * 2 / (1 + 1 / _GAMMA)
    return np.where(ids == 0, 0.0, np.sign(ids) * magnitude / _GAMMA)


def common_grid(a: QuantileSketch, b: QuantileSketch) -> tuple[QuantileSketch, QuantileSketch]:
    """Both sketches in one representation, so that values and masses compare directly:
    as they are when both are exact or both on the grid, else both on the grid."""
    if a.exact != b.exact:
        return a._as_grid(), b._as_grid()
    return a, b


def cdf_distance(a: QuantileSketch, b: QuantileSketch) -> tuple[float, float]:
    """(Kolmogorov-Smirnov distance, Wasserstein-1 distance) between two sketches."""
    a, b = common_grid(a, b)
    va, ca = a.points()
    vb, cb = b.points()
    grid = np.union1d(va, vb)
    fa = (
        np.cumsum(np.bincount(np.searchsorted(grid, va), weights=ca, minlength=len(grid)))
        / ca.sum()
    )
    fb = (
        np.cumsum(np.bincount(np.searchsorted(grid, vb), weights=cb, minlength=len(grid)))
        / cb.sum()
    )
    diff = np.abs(fa - fb)
    ks = float(diff.max()) if len(diff) else 0.0
    wasserstein = float((diff[:-1] * np.diff(grid)).sum()) if len(grid) > 1 else 0.0
    return ks, wasserstein
