"""Shared fixtures: real data shipped by installed packages."""

from __future__ import annotations

import pandas as pd
import pytest
from palmerpenguins import load_penguins


@pytest.fixture(scope="session")
def penguins() -> pd.DataFrame:
    """Palmer penguins: 344 rows, 8 columns, real missing values (CC0)."""
    return load_penguins()


@pytest.fixture(autouse=True, scope="session")
def one_blas_thread():
    """The gate runs its statistics on one BLAS thread (see gate.run_dimensions); tests
    that call dimension modules directly do the same, for speed and identical results."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield
