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


@pytest.fixture(scope="session")
def breast_cancer() -> pd.DataFrame:
    """scikit-learn's bundled Wisconsin breast cancer table: 569 rows, 30 measurements."""
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    frame["target"] = frame["target"].map({0: "malignant", 1: "benign"})
    return frame


@pytest.fixture(scope="session")
def digits() -> pd.DataFrame:
    """scikit-learn's bundled 8x8 digit scans: 1,797 rows, 64 pixel columns."""
    from sklearn.datasets import load_digits

    frame = load_digits(as_frame=True).frame
    frame["target"] = frame["target"].astype(str)
    return frame


# The offline W&B fixture, shared by the tracking and the callback tests.
from tracking.wandb_offline import offline_wandb  # noqa: E402, F401
