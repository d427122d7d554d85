"""Generator families for the recursive-generation (Shumailov) cases.

Each family fits on a table and draws ``n`` new rows: ``family.fit_sample(df, n, rng)``.
A chain feeds every generation's output into the next fit, so each family's own bias
compounds the way it does in recursive training.

Mixed tables. Numeric and categorical columns are handled as follows:

- ``gmm`` and ``gmm-lowtemp`` fit the mixture on the standardized numeric columns only,
  then assign every training row to its most probable component. A sampled row draws its
  categorical values *jointly* from the training rows of the same component, so the
  dependence between categories and numbers is kept through the component.
- ``kde`` picks a training row and adds Gaussian noise to its numeric part (the same
  algorithm as ``sklearn.neighbors.KernelDensity.sample`` with a Gaussian kernel); its
  categorical values are copied from that row (a Dirac kernel on categories).
- ``copula`` maps each categorical column to an interval of [0, 1] whose width is the
  category's frequency (the SDV "frequency encoding"), so categories take part in the
  Gaussian dependence like any other column.

Output format. Like SDV's synthesizers by default, every family rounds a numeric column
to the number of decimals the training column has and clips it to the training min/max.
Without this a test could flag gen-1 output because its integers got decimals, which is a
formatting artefact, not collapse. Clipping also means no generation can produce values
beyond what the previous one saw, which is one of the mechanisms by which tails vanish.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pandas as pd
from scipy import special

from .datasets import categorical_columns, numeric_columns

# Decimal places tried when learning a column's rounding; beyond this it is continuous.
MAX_DECIMALS = 4


class Family(Protocol):
    """A generator family: fit on ``df`` and draw ``n`` rows of the same schema."""

    name: str

    def fit_sample(self, df: pd.DataFrame, n: int, rng: np.random.Generator) -> pd.DataFrame: ...


@dataclass(frozen=True)
class NumericCodec:
    """Standardizes the non-constant numeric columns; decodes with rounding and clipping."""

    columns: tuple[str, ...]
    varying: np.ndarray  # bool per column: False for a constant column
    mean: np.ndarray
    std: np.ndarray
    low: np.ndarray
    high: np.ndarray
    decimals: tuple[int | None, ...]

    @classmethod
    def fit(cls, df: pd.DataFrame) -> NumericCodec:
        columns = tuple(numeric_columns(df))
        x = df[list(columns)].to_numpy(dtype=float) if columns else np.empty((len(df), 0))
        std = x.std(axis=0) if len(columns) else np.empty(0)
        return cls(
            columns=columns,
            varying=std > 0,
            mean=x.mean(axis=0) if len(columns) else np.empty(0),
            std=np.where(std > 0, std, 1.0),
            low=x.min(axis=0) if len(columns) else np.empty(0),
            high=x.max(axis=0) if len(columns) else np.empty(0),
            decimals=tuple(_decimals(x[:, j]) for j in range(x.shape[1])),
        )

    @property
    def width(self) -> int:
        return int(self.varying.sum())

    def encode(self, df: pd.DataFrame) -> np.ndarray:
        if not self.columns:
            return np.empty((len(df), 0))
        x = df[list(self.columns)].to_numpy(dtype=float)
        return ((x - self.mean) / self.std)[:, self.varying]

    def decode(self, z: np.ndarray) -> dict[str, np.ndarray]:
        n = z.shape[0]
        x = np.tile(self.mean, (n, 1))
        x[:, self.varying] = z * self.std[self.varying] + self.mean[self.varying]
        return self.finish(x)

    def finish(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Clip to the training range and round like the training column."""
        out = {}
        for j, column in enumerate(self.columns):
            values = np.clip(x[:, j], self.low[j], self.high[j])
            if self.decimals[j] is not None:
                values = np.round(values, self.decimals[j])
            out[column] = values
        return out


def _decimals(values: np.ndarray) -> int | None:
    for d in range(MAX_DECIMALS + 1):
        scaled = values * 10.0**d
        if np.allclose(scaled, np.round(scaled), rtol=0, atol=1e-6):
            return d
    return None


def _assemble(
    template: pd.DataFrame, numeric: dict[str, np.ndarray], rows: pd.DataFrame | None
) -> pd.DataFrame:
    """Build a frame with the template's column order and dtypes.

    ``rows`` holds the categorical values (already in the template's category dtype).
    """
    out = {}
    for column in template.columns:
        if column in numeric:
            out[column] = numeric[column]
        else:
            assert rows is not None
            out[column] = pd.Categorical(rows[column].to_numpy(), dtype=template[column].dtype)
    return pd.DataFrame(out)


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**31 - 1))


@dataclass(frozen=True)
class GaussianMixtureFamily:
    """sklearn GaussianMixture on the numeric columns, categories per component.

    ``temperature`` < 1 gives the low-temperature / truncated-sampling family: every
    component's covariance is multiplied by T and the component weights are sharpened to
    w^(1/T) (renormalized), as a softmax temperature would. Both shrink the tails, the way
    top-p or truncation sampling does in language models (Alemohammad et al.).
    """

    name: str = "gmm"
    temperature: float = 1.0
    max_components: int = 8
    # About 50 rows per component keeps full covariances estimable on small tables.
    rows_per_component: int = 50
    # Added to the diagonal of each covariance, in standardized units; keeps components
    # on near-constant columns (digits' edge pixels) positive definite.
    reg_covar: float = 1e-3

    def fit_sample(self, df: pd.DataFrame, n: int, rng: np.random.Generator) -> pd.DataFrame:
        from sklearn.mixture import GaussianMixture

        codec = NumericCodec.fit(df)
        z = codec.encode(df)
        cats = categorical_columns(df)
        k = max(1, min(self.max_components, len(df) // self.rows_per_component))
        if codec.width == 0:
            labels = np.zeros(len(df), dtype=int)
            weights, means, covs = np.ones(1), np.zeros((1, 0)), np.zeros((1, 0, 0))
        else:
            gm = GaussianMixture(
                n_components=k,
                covariance_type="full",
                reg_covar=self.reg_covar,
                max_iter=200,
                random_state=_seed(rng),
            ).fit(z)
            labels = gm.predict(z)
            weights, means, covs = gm.weights_, gm.means_, gm.covariances_
        if self.temperature != 1.0:
            weights = weights ** (1.0 / self.temperature)
            covs = covs * self.temperature
        weights = weights / weights.sum()

        counts = rng.multinomial(n, weights)
        z_new = np.empty((n, codec.width))
        source_rows = np.empty(n, dtype=int)
        start = 0
        for c, m in enumerate(counts):
            if m == 0:
                continue
            stop = start + m
            if codec.width:
                z_new[start:stop] = rng.multivariate_normal(means[c], covs[c], size=m)
            members = np.flatnonzero(labels == c)
            # A component no training row prefers still needs categories: use all rows.
            pool = members if len(members) else np.arange(len(df))
            source_rows[start:stop] = rng.choice(pool, size=m)
            start = stop
        order = rng.permutation(n)
        rows = df.iloc[source_rows[order]][cats].reset_index(drop=True) if cats else None
        return _assemble(df, codec.decode(z_new[order]), rows)


@dataclass(frozen=True)
class KernelDensityFamily:
    """Gaussian kernel density on standardized numeric columns, Scott's bandwidth."""

    name: str = "kde"

    def fit_sample(self, df: pd.DataFrame, n: int, rng: np.random.Generator) -> pd.DataFrame:
        from sklearn.neighbors import KernelDensity

        codec = NumericCodec.fit(df)
        z = codec.encode(df)
        cats = categorical_columns(df)
        idx = rng.integers(0, len(df), size=n)
        if codec.width:
            # sklearn computes Scott's rule, n^(-1/(d+4)), for the data it is given.
            bandwidth = KernelDensity(bandwidth="scott").fit(z).bandwidth_
            # Same draw as KernelDensity.sample (pick a row, add kernel noise), done here
            # because sample() does not say which rows it picked, and the categories
            # must come from those rows.
            z_new = z[idx] + bandwidth * rng.standard_normal((n, codec.width))
        else:
            z_new = np.empty((n, 0))
        rows = df.iloc[idx][cats].reset_index(drop=True) if cats else None
        return _assemble(df, codec.decode(z_new), rows)


@dataclass(frozen=True)
class GaussianCopulaFamily:
    """Empirical marginals (quantile transform) joined by a Gaussian dependence."""

    name: str = "copula"
    max_quantiles: int = 1000

    def fit_sample(self, df: pd.DataFrame, n: int, rng: np.random.Generator) -> pd.DataFrame:
        from sklearn.preprocessing import QuantileTransformer

        codec = NumericCodec.fit(df)
        num = [c for c, v in zip(codec.columns, codec.varying, strict=True) if v]
        cats = categorical_columns(df)
        blocks = []
        qt = None
        if num:
            qt = QuantileTransformer(
                n_quantiles=min(self.max_quantiles, len(df)),
                output_distribution="normal",
                subsample=10**9,  # use every row: no hidden subsampling
                random_state=_seed(rng),
            ).fit(df[num].to_numpy(dtype=float))
            blocks.append(qt.transform(df[num].to_numpy(dtype=float)))
        encoders = [_FrequencyEncoder.fit(df[c]) for c in cats]
        blocks.extend(
            enc.encode(df[c], rng)[:, None] for enc, c in zip(encoders, cats, strict=True)
        )
        if not blocks:
            raise ValueError("copula: the table has no varying numeric or categorical column")
        normal = np.hstack(blocks)

        corr = _nearest_correlation(np.atleast_2d(np.corrcoef(normal, rowvar=False)))
        z = rng.multivariate_normal(np.zeros(len(corr)), corr, size=n)

        numeric = {}
        if qt is not None:
            x = np.tile(codec.mean, (n, 1))
            x[:, codec.varying] = qt.inverse_transform(z[:, : len(num)])
            numeric = codec.finish(x)
        elif codec.columns:
            numeric = codec.finish(np.tile(codec.mean, (n, 1)))
        rows = None
        if cats:
            rows = pd.DataFrame(
                {
                    c: enc.decode(z[:, len(num) + i])
                    for i, (enc, c) in enumerate(zip(encoders, cats, strict=True))
                }
            )
        return _assemble(df, numeric, rows)


@dataclass(frozen=True)
class _FrequencyEncoder:
    """Category -> interval of [0, 1] as wide as its frequency -> normal score."""

    categories: tuple[str, ...]
    edges: np.ndarray = field(repr=False)  # cumulative upper edges, last is 1

    @classmethod
    def fit(cls, column: pd.Series) -> _FrequencyEncoder:
        freq = column.value_counts(normalize=True, sort=True)
        freq = freq[freq > 0]
        edges = np.cumsum(freq.to_numpy())
        edges[-1] = 1.0
        return cls(categories=tuple(str(c) for c in freq.index), edges=edges)

    def encode(self, column: pd.Series, rng: np.random.Generator) -> np.ndarray:
        position = {c: i for i, c in enumerate(self.categories)}
        i = np.array([position[str(v)] for v in column])
        lower = np.concatenate([[0.0], self.edges[:-1]])[i]
        u = lower + rng.uniform(size=len(i)) * (self.edges[i] - lower)
        eps = 1e-9
        return special.ndtri(np.clip(u, eps, 1 - eps))

    def decode(self, z: np.ndarray) -> np.ndarray:
        i = np.searchsorted(self.edges, special.ndtr(z), side="right")
        return np.asarray(self.categories, dtype=object)[np.minimum(i, len(self.edges) - 1)]


def _nearest_correlation(corr: np.ndarray) -> np.ndarray:
    """Clip negative eigenvalues and rescale to a unit diagonal (a valid correlation)."""
    corr = np.nan_to_num((corr + corr.T) / 2, nan=0.0)
    np.fill_diagonal(corr, 1.0)
    values, vectors = np.linalg.eigh(corr)
    fixed = vectors @ np.diag(np.clip(values, 1e-6, None)) @ vectors.T
    d = np.sqrt(np.diag(fixed))
    return fixed / np.outer(d, d)


FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        GaussianMixtureFamily(),
        KernelDensityFamily(),
        GaussianCopulaFamily(),
        GaussianMixtureFamily(name="gmm-lowtemp", temperature=0.7),
    )
}


def run_chain(
    real: pd.DataFrame,
    family: Family,
    generations: int,
    rng: np.random.Generator,
    n: int | None = None,
) -> list[pd.DataFrame]:
    """Generation 0 is ``real``; generation g is fitted on g-1 and has ``n`` rows."""
    from threadpoolctl import threadpool_limits

    n = len(real) if n is None else n
    chain = [real]
    # The fits work on tiny matrices (d x d covariances); multi-threaded OpenBLAS next to
    # scikit-learn's OpenMP pool spins and made a GaussianMixture fit 10-30x slower here.
    with threadpool_limits(limits=1, user_api="blas"):
        for _ in range(generations):
            chain.append(family.fit_sample(chain[-1], n, rng))
    return chain
