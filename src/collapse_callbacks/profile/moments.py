"""Streaming count/mean/variance/min/max that merge exactly (Chan et al.'s pairwise update)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass
class Moments:
    count: int = 0
    mean: float = 0.0
    m2: float = 0.0  # sum of squared deviations from the mean
    min: float = math.inf
    max: float = -math.inf

    def update(self, values: np.ndarray) -> None:
        """Fold in finite float64 values."""
        if values.size == 0:
            return
        batch = Moments(
            count=int(values.size),
            mean=float(values.mean()),
            m2=float(((values - values.mean()) ** 2).sum()),
            min=float(values.min()),
            max=float(values.max()),
        )
        self._absorb(batch)

    def merge(self, other: Moments) -> Moments:
        merged = Moments(self.count, self.mean, self.m2, self.min, self.max)
        merged._absorb(other)
        return merged

    def _absorb(self, other: Moments) -> None:
        if other.count == 0:
            return
        if self.count == 0:
            self.count, self.mean, self.m2 = other.count, other.mean, other.m2
            self.min, self.max = other.min, other.max
            return
        total = self.count + other.count
        delta = other.mean - self.mean
        self.mean += delta * other.count / total
        self.m2 += other.m2 + delta * delta * self.count * other.count / total
        self.count = total
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)

    @property
    def std(self) -> float | None:
        """Sample standard deviation; None below two values."""
        return math.sqrt(self.m2 / (self.count - 1)) if self.count > 1 else None

    def summary(self) -> dict:
        if self.count == 0:
            return {"count": 0, "mean": None, "std": None, "min": None, "max": None}
        return {
            "count": self.count,
            "mean": self.mean,
            "std": self.std,
            "min": self.min,
            "max": self.max,
        }
