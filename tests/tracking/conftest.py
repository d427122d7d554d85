"""Real gate reports for the tracking tests, computed once per session."""

from __future__ import annotations

import pandas as pd
import pytest

from collapse_callbacks import CollapseGate
from helpers import split
from tracking.reports import SHRUNK, Checked, check, shrink_to_median


@pytest.fixture(scope="session")
def penguin_halves(penguins) -> tuple[pd.DataFrame, pd.DataFrame]:
    return split(penguins, seed=0)


@pytest.fixture(scope="session")
def collapsed(penguin_halves) -> Checked:
    reference, candidate = penguin_halves
    return check(CollapseGate(reference, seed=0), shrink_to_median(candidate, SHRUNK, 0.5))


@pytest.fixture(scope="session")
def passing(penguin_halves) -> Checked:
    reference, candidate = penguin_halves
    return check(CollapseGate(reference, seed=0), candidate)
