"""The comparison of two profiles, and the calibration of sample statistics.

Sampling noise differs by dataset and by size, so a sample statistic is judged against
its own null distribution: the same statistic computed between two *disjoint random
splits of both samples pooled* (the reference's rows and the candidate's, ``h`` rows
each). The observed value is computed at that same size (``h`` reference rows against
``h`` candidate rows), so null and observed are directly comparable, whatever the
statistic's bias at small sizes. With ``B`` null draws, ``(observed - mean) / (sd *
sqrt(1 + 1/B))`` is referred to a Student t with ``B - 1`` degrees of freedom (a
prediction interval for one new draw).

Why pooled, not splits of the reference alone: when nothing differs, the observed pair
is itself a random split of the pooled rows, so the null is the permutation null of the
statistic, right at any size. Splits of the reference alone all partition the same few
reference rows when the reference is not much larger than the candidate; they then show
how the statistic varies within that one set of rows, not from one sample of the data
to another, and heavy-tailed figures (vocabulary divergence, distinct n-grams) read
p < 0.01 in 4-10% of real text splits (benchmarks/quality/calibration.py). A collapsed
candidate's rows in the null widen it a little; ``h`` stays at most half the reference
(``matched_rows``), and detection of mixtures was measured unchanged
(benchmarks/quality/mixture_size.py).
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Generic, TypeVar

import numpy as np
import pyarrow as pa
from scipy import stats

from collapse_callbacks.data.roles import ColumnRole
from collapse_callbacks.profile.columns import float64_with_nulls
from collapse_callbacks.profile.table import Profile

T = TypeVar("T")
DEFAULT_SPLITS = 40
MIN_MATCHED_ROWS = 20
# The matched size of the observed comparison and of every null split.
MAX_MATCHED_ROWS = 10_000
MAX_CATEGORIES_ENCODED = 20


class SampleView:
    """Column arrays of one profile's row sample, cached; categories share one index
    across the reference and the candidate so that codes are comparable."""

    def __init__(
        self, table: pa.Table, roles: dict[str, ColumnRole], categories: dict[str, list]
    ) -> None:
        self.table = table
        self.rows = table.num_rows
        self._roles = roles
        self._categories = categories
        self._cache: dict[tuple[str, str], np.ndarray] = {}

    def numeric(self, column: str) -> np.ndarray:
        """float64 with NaN for missing (booleans as 0/1)."""
        key = ("numeric", column)
        if key not in self._cache:
            self._cache[key] = float64_with_nulls(self.table.column(column))[0]
        return self._cache[key]

    def codes(self, column: str) -> np.ndarray:
        """int64 category codes in the shared index; -1 for missing or unseen-in-index."""
        key = ("codes", column)
        if key not in self._cache:
            values = self.table.column(column).to_pylist()
            index = {v: i for i, v in enumerate(self._categories[column])}
            self._cache[key] = np.array(
                [index.get(v, -1) if v is not None else -1 for v in values], dtype=np.int64
            )
        return self._cache[key]

    def texts(self, column: str) -> list[str | None]:
        """A text column's documents (None where missing)."""
        key = ("texts", column)
        if key not in self._cache:
            self._cache[key] = self.table.column(column).to_pylist()
        return self._cache[key]

    def tensors(self, column: str) -> np.ndarray:
        """A vector or tensor column as float32 ``[rows, *shape]``; missing rows are NaN.
        Variable-length vectors are cut or NaN-padded to the longest row."""
        key = ("tensors", column)
        if key not in self._cache:
            self._cache[key] = _tensor_matrix(self.table.column(column))
        return self._cache[key]


class PooledView(SampleView):
    """The reference sample's rows followed by the candidate sample's, for the null
    splits. Column arrays are the two views' own, concatenated (nothing is re-read);
    there is no pooled Arrow table: per-sample work goes through :class:`PerView`."""

    def __init__(self, reference: SampleView, candidate: SampleView) -> None:
        self.parts = (reference, candidate)
        self.rows = reference.rows + candidate.rows
        self._cache = {}

    def _joined(self, key: tuple[str, str], read: Callable[[SampleView], np.ndarray]):
        if key not in self._cache:
            self._cache[key] = join_rows([read(view) for view in self.parts])
        return self._cache[key]

    def numeric(self, column: str) -> np.ndarray:
        return self._joined(("numeric", column), lambda view: view.numeric(column))

    def codes(self, column: str) -> np.ndarray:
        return self._joined(("codes", column), lambda view: view.codes(column))

    def texts(self, column: str) -> list[str | None]:
        key = ("texts", column)
        if key not in self._cache:
            self._cache[key] = [v for view in self.parts for v in view.texts(column)]
        return self._cache[key]

    def tensors(self, column: str) -> np.ndarray:
        return self._joined(("tensors", column), lambda view: view.tensors(column))


def join_rows(arrays: list[np.ndarray]) -> np.ndarray:
    """Row-wise concatenation of per-view arrays; variable-length vector columns are
    NaN-padded to the wider view's width first."""
    if all(a.ndim <= 1 for a in arrays):
        return np.concatenate(arrays)
    width = max(a.shape[1] for a in arrays)
    padded = []
    for a in arrays:
        if a.shape[1] < width:
            pad = np.full((a.shape[0], width - a.shape[1], *a.shape[2:]), np.nan, a.dtype)
            a = np.concatenate([a, pad], axis=1)
        padded.append(a)
    return np.concatenate(padded)


class PerView(Generic[T]):
    """A value computed once per sample: ``build(view)`` for the reference's and the
    candidate's, and for the pooled view ``join`` of those two (rows concatenated, the
    reference's first), so the null splits cost no second pass over the data."""

    def __init__(
        self,
        comparison: Comparison,
        build: Callable[[SampleView], T],
        join: Callable[[list[T]], T] = join_rows,
    ) -> None:
        pooled = comparison.pooled_view
        self._start(pooled, [build(view) for view in pooled.parts], join)

    @classmethod
    def of(
        cls,
        comparison: Comparison,
        reference: T,
        candidate: T,
        join: Callable[[list[T]], T] = join_rows,
    ) -> PerView[T]:
        """From values already built for the reference and the candidate."""
        out = cls.__new__(cls)
        out._start(comparison.pooled_view, [reference, candidate], join)
        return out

    def _start(self, pooled: PooledView, values: list[T], join) -> None:
        self._pooled = pooled
        self._join = join
        self._values = {id(view): value for view, value in zip(pooled.parts, values)}

    def samples(self) -> tuple[T, T]:
        """The reference's and the candidate's values."""
        return tuple(self._values[id(v)] for v in self._pooled.parts)

    def __getitem__(self, view: SampleView) -> T:
        key = id(view)
        if key not in self._values:
            if view is not self._pooled:
                raise ValueError("the view belongs to no sample of this comparison")
            self._values[key] = self._join([self._values[id(v)] for v in self._pooled.parts])
        return self._values[key]

    @property
    def reference(self) -> T:
        return self[self._pooled.parts[0]]


@dataclass(frozen=True)
class Part:
    """Some rows of a sample (a view and row indices), as one side of a statistic."""

    view: SampleView
    rows: np.ndarray

    def __len__(self) -> int:
        return len(self.rows)

    def numeric(self, column: str) -> np.ndarray:
        return self.view.numeric(column)[self.rows]

    def codes(self, column: str) -> np.ndarray:
        return self.view.codes(column)[self.rows]

    def texts(self, column: str) -> list[str | None]:
        values = self.view.texts(column)
        return [values[i] for i in self.rows]

    def tensors(self, column: str) -> np.ndarray:
        return self.view.tensors(column)[self.rows]

    def head(self, n: int) -> Part:
        """The first ``n`` rows; rows are in random order, so a random subset."""
        return Part(self.view, self.rows[:n])


@dataclass(frozen=True)
class Calibrated:
    observed: np.ndarray
    null: np.ndarray  # [B, ...]

    # A statistic undefined on every split (NaN: a column constant in the sample, a
    # spectrum of one direction) has a NaN mean and spread, which the dimensions skip;
    # numpy would also warn about the empty slice on the user's terminal.
    @property
    def null_mean(self) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmean(self.null, axis=0)

    @property
    def null_sd(self) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanstd(self.null, axis=0, ddof=1)

    def p_value(self, worse: str) -> np.ndarray:
        """``worse`` is "lower", "higher" or "either": the direction that counts as damage."""
        b = self.null.shape[0]
        scale = self.null_sd * np.sqrt(1 + 1 / b)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (self.observed - self.null_mean) / scale
            change = np.sign(self.observed - self.null_mean) * np.inf
        # A statistic that never varies under the null: any change is significant.
        degenerate = ~(scale > 0)
        t = np.where(
            degenerate,
            np.where(self.observed == self.null_mean, 0.0, change),
            t,
        )
        dist = stats.t(df=max(b - 1, 1))
        if worse == "lower":
            return dist.cdf(t)
        if worse == "higher":
            return dist.sf(t)
        return np.minimum(1.0, 2 * dist.sf(np.abs(t)))


class Comparison:
    """Everything a dimension needs: both profiles, the aligned roles, the samples as
    :class:`SampleView`, matched-size splits, and deterministic random generators."""

    def __init__(
        self,
        reference: Profile,
        candidate: Profile,
        roles: dict[str, ColumnRole],
        *,
        alpha: float,
        seed: int,
        n_splits: int = DEFAULT_SPLITS,
    ) -> None:
        self.reference = reference
        self.candidate = candidate
        self.roles = dict(roles)
        self.alpha = alpha
        self.seed = seed
        self.n_splits = n_splits
        reference_table = reference.sample.result()
        candidate_table = candidate.sample.result()
        categories = {
            name: _category_index(reference_table, candidate_table, name)
            for name, role in self.roles.items()
            if role in (ColumnRole.CATEGORICAL, ColumnRole.BOOLEAN)
        }
        self.reference_view = SampleView(reference_table, self.roles, categories)
        self.candidate_view = SampleView(candidate_table, self.roles, categories)
        self.categories = categories
        # Work shared between dimensions (e.g. the sequence statistics), per comparison.
        self.cache: dict[str, object] = {}
        # Profiled columns left out of ``roles`` (no values on one side), with why.
        self.left_out: dict[str, str] = {}
        # Arrow types of the date and time columns, for showing their values.
        self.temporal: dict[str, object] = {}
        # Names a token id in sentences (set from the user's tokenizer).
        self.token_text: Callable[[int], str] | None = None
        # Maps a column's sample values to vectors (the user's own encoder).
        self.embedder: Callable | dict | None = None

    def without(self, *columns: str) -> Comparison:
        """The same comparison with ``columns`` left out: the same samples, parts and
        null splits (they depend on the seed and the sample sizes only)."""
        roles = {name: role for name, role in self.roles.items() if name not in columns}
        other = Comparison(
            self.reference,
            self.candidate,
            roles,
            alpha=self.alpha,
            seed=self.seed,
            n_splits=self.n_splits,
        )
        other.token_text = self.token_text
        other.embedder = self.embedder
        other.left_out = dict(self.left_out)
        other.temporal = dict(self.temporal)
        return other

    def rng(self, purpose: str) -> np.random.Generator:
        """A generator for one purpose: the same seed gives the same draws, and adding a
        new purpose does not shift the draws of the others."""
        digest = hashlib.sha256(f"{self.seed}:{purpose}".encode()).digest()
        return np.random.default_rng(int.from_bytes(digest[:8], "little"))

    def columns(self, *roles: ColumnRole) -> list[str]:
        return [name for name, role in self.roles.items() if role in roles]

    @cached_property
    def pooled_view(self) -> PooledView:
        return PooledView(self.reference_view, self.candidate_view)

    @cached_property
    def matched_rows(self) -> int:
        # At most half the reference: comparing every candidate row (up to as many
        # reference rows) gained power on small mixtures, but on real data filtered on
        # one column it called collapse twice as often (benchmarks/quality, session 4).
        return min(self.candidate_view.rows, self.reference_view.rows // 2, MAX_MATCHED_ROWS)

    @property
    def can_calibrate(self) -> bool:
        return self.matched_rows >= MIN_MATCHED_ROWS

    @cached_property
    def observed_parts(self) -> tuple[Part, Part]:
        rng = self.rng("observed")
        h = self.matched_rows
        reference = rng.permutation(self.reference_view.rows)[:h]
        candidate = rng.permutation(self.candidate_view.rows)[:h]
        return Part(self.reference_view, reference), Part(self.candidate_view, candidate)

    @cached_property
    def null_parts(self) -> list[tuple[Part, Part]]:
        rng = self.rng("null splits")
        h = self.matched_rows
        pooled = self.pooled_view
        parts = []
        for _ in range(self.n_splits):
            order = rng.permutation(pooled.rows)
            parts.append((Part(pooled, order[:h]), Part(pooled, order[h : 2 * h])))
        return parts

    def calibrate(self, statistic: Callable[[Part, Part], float | np.ndarray]) -> Calibrated:
        """``statistic(reference_part, other_part)`` at the observed parts and on every
        null split. It may return one number or an array (one value per column).

        The statistic must compare its two parts (a difference, a ratio, a distance).
        A figure of the other part alone is liberal here: two halves of one finite
        reference sample vary less than a fresh sample does, so its null is too narrow.
        """
        observed = np.asarray(statistic(*self.observed_parts), dtype=np.float64)
        null = np.stack([np.asarray(statistic(a, b), dtype=np.float64) for a, b in self.null_parts])
        return Calibrated(observed, null)

    @cached_property
    def encoder(self) -> RowEncoder:
        return RowEncoder(self)


def _tensor_matrix(column: pa.ChunkedArray) -> np.ndarray:
    array = column.combine_chunks()
    if isinstance(array.type, pa.BaseExtensionType):
        shape = list(array.type.shape) if isinstance(array.type, pa.FixedShapeTensorType) else []
        array = array.storage
    else:
        shape = []
    rows = len(array)
    valid = ~np.asarray(array.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    dtype = array.type
    fixed = []
    while pa.types.is_fixed_size_list(dtype):
        fixed.append(dtype.list_size)
        dtype = dtype.value_type
    if fixed and not (pa.types.is_list(dtype) or pa.types.is_large_list(dtype)):
        shape = shape or fixed
        width = int(np.prod(fixed))
        flat = array
        while pa.types.is_fixed_size_list(flat.type):
            flat = flat.flatten()
        values = np.asarray(flat.cast(pa.float32()).to_numpy(zero_copy_only=False))
        matrix = np.full((rows, width), np.nan, dtype=np.float32)
        if valid.any():
            matrix[valid] = values.reshape(-1, width)
        return matrix.reshape(rows, *shape)
    # Variable-length lists: cut or pad every row to the longest one.
    items = array.to_pylist()
    width = max((len(np.ravel(v)) for v in items if v is not None), default=0)
    matrix = np.full((rows, width), np.nan, dtype=np.float32)
    for i, value in enumerate(items):
        if value is not None:
            flat_row = np.asarray(value, dtype=np.float32).ravel()
            matrix[i, : len(flat_row)] = flat_row
    return matrix


def _category_index(reference: pa.Table, candidate: pa.Table, column: str) -> list:
    """Reference categories by frequency, then categories only the candidate has."""
    from collections import Counter

    ref = Counter(v for v in reference.column(column).to_pylist() if v is not None)
    cand = Counter(v for v in candidate.column(column).to_pylist() if v is not None)
    ordered = [v for v, _ in sorted(ref.items(), key=lambda kv: (-kv[1], str(kv[0])))]
    ordered += [
        v for v, _ in sorted(cand.items(), key=lambda kv: (-kv[1], str(kv[0]))) if v not in ref
    ]
    return ordered


class RowEncoder:
    """Rows as numeric vectors for distance- and classifier-based statistics.

    Numeric columns are centered on the reference sample's median and scaled by its
    inter-quartile range (robust to the outliers a tail test looks for); a missing value
    becomes 0 plus a 0/1 missing-indicator column where the reference has any missing.
    Categorical and boolean columns are one-hot over the reference's
    ``MAX_CATEGORIES_ENCODED`` most frequent categories, scaled by 1/sqrt(2) so that two
    different categories are at distance 1. Text and token columns add hashed n-gram
    features, vector and tensor columns a projection of their values, and a user's
    ``embedder`` its vectors (``feature_blocks``): each block has ``width``,
    ``names()`` and ``encode(part)``.
    """

    def __init__(self, comparison: Comparison) -> None:
        self.numeric = comparison.columns(ColumnRole.NUMERIC)
        self.categorical = comparison.columns(ColumnRole.CATEGORICAL, ColumnRole.BOOLEAN)
        ref = comparison.reference_view
        self.center, self.scale, self.missing = {}, {}, {}
        for name in self.numeric:
            values = ref.numeric(name)
            finite = values[np.isfinite(values)]
            if len(finite) == 0:
                finite = np.zeros(1)
            q25, q50, q75 = np.percentile(finite, [25, 50, 75])
            spread = q75 - q25 or np.std(finite) or 1.0
            self.center[name], self.scale[name] = q50, spread
            self.missing[name] = bool((~np.isfinite(values)).any())
        from collapse_callbacks.dimensions.features import feature_blocks

        self.blocks = feature_blocks(comparison)
        self.width = (
            len(self.numeric)
            + sum(self.missing.values())
            + sum(
                min(len(comparison.categories[c]), MAX_CATEGORIES_ENCODED) for c in self.categorical
            )
            + sum(block.width for block in self.blocks)
        )

    def sources(self, comparison: Comparison) -> list[str]:
        """The data column behind each encoded column, in ``encode``'s order."""
        out = []
        for name in self.numeric:
            out += [name] * (2 if self.missing[name] else 1)
        for name in self.categorical:
            out += [name] * min(len(comparison.categories[name]), MAX_CATEGORIES_ENCODED)
        for block in self.blocks:
            out += [block.column] * block.width
        return out

    def encode(self, part: Part) -> np.ndarray:
        blocks = []
        for name in self.numeric:
            values = (part.numeric(name) - self.center[name]) / self.scale[name]
            finite = np.isfinite(values)
            blocks.append(np.where(finite, values, 0.0)[:, None])
            if self.missing[name]:
                blocks.append((~finite).astype(np.float64)[:, None])
        for name in self.categorical:
            codes = part.codes(name)
            k = min(len(part.view._categories[name]), MAX_CATEGORIES_ENCODED)
            onehot = np.zeros((len(codes), k))
            known = (codes >= 0) & (codes < k)
            onehot[np.flatnonzero(known), codes[known]] = 1 / np.sqrt(2)
            blocks.append(onehot)
        for block in self.blocks:
            blocks.append(block.encode(part))
        if not blocks:
            return np.zeros((len(part), 0))
        return np.hstack(blocks)
