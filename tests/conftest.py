"""Shared fixtures: real data shipped by installed packages."""

from __future__ import annotations

import pandas as pd
import pytest
from palmerpenguins import load_penguins


@pytest.fixture(scope="session")
def penguins() -> pd.DataFrame:
    """Palmer penguins: 344 rows, 8 columns, real missing values (CC0)."""
    return load_penguins()
