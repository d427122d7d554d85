"""Helpers shared by the dimension tests (tests/ is on pytest's pythonpath)."""

from __future__ import annotations

import numpy as np
import pandas as pd

ALPHA = 0.01


def split(frame: pd.DataFrame, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two disjoint random halves of a real table."""
    order = np.random.default_rng(seed).permutation(len(frame))
    half = len(frame) // 2
    return frame.iloc[order[:half]], frame.iloc[order[half:]]


def signal(result, name: str, column: str | None = None):
    (found,) = [s for s in result.signals if s.name == name and s.column == column]
    return found


def fired(result, alpha: float = ALPHA) -> list:
    """Signals that fire with the false-alarm rate shared across the dimension's signals."""
    return [s for s in result.signals if s.fires(alpha / len(result.signals))]
