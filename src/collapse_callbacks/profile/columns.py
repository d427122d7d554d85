"""Per-column streaming state, one class per role: ``update`` folds in an Arrow array,
``merge`` combines two states of the same column, ``result`` gives a frozen summary.

Missing values are counted, never fatal: ``nulls`` are Arrow nulls, ``nan``/``pos_inf``/
``neg_inf`` are float values that are not finite; moments use finite values only.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from collapse_callbacks.data.roles import ColumnRole
from collapse_callbacks.profile.minhash import DocumentDuplicates
from collapse_callbacks.profile.moments import Moments
from collapse_callbacks.profile.rows import DuplicateState, _list_hashes
from collapse_callbacks.profile.sequences import (
    REPETITION_N,
    SequenceState,
    ngram_hashes,
    text_units,
    token_units,
)
from collapse_callbacks.profile.sketch import QuantileSketch

# Exact distinct counts are kept up to this many values per column; beyond it the
# summary says "at least" rather than pretending to know.
MAX_TRACKED_DISTINCT = 100_000
TOP_VALUES = 5


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _as_float64(array: pa.Array) -> np.ndarray:
    """Non-null values as float64; temporal values as their integer count of units."""
    values = array.drop_null()
    if pa.types.is_temporal(values.type):
        values = values.view(pa.int64() if values.type.bit_width == 64 else pa.int32())
    if pa.types.is_boolean(values.type):
        values = values.cast(pa.int8())
    values = values.cast(pa.float64(), safe=False)  # integers beyond 2**53 round
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if len(values) == 0:
        return np.empty(0, dtype=np.float64)
    # Read the buffer directly: Array.to_numpy() imports pandas when it is installed.
    return np.frombuffer(
        values.buffers()[1], dtype=np.float64, count=len(values), offset=values.offset * 8
    )


def float64_with_nulls(array: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """All values as float64 with NaN where null, and the null mask."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    nulls = np.zeros(len(array), dtype=bool)
    if array.null_count:
        nulls = np.asarray(array.is_null().to_numpy(zero_copy_only=False))
        array = array.fill_null(False if pa.types.is_boolean(array.type) else 0)
    values = _as_float64(array).copy()
    values[nulls] = np.nan
    return values, nulls


@dataclass(frozen=True)
class ColumnSummary:
    role: str
    nulls: int

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        raise NotImplementedError


@dataclass(frozen=True)
class NumericSummary(ColumnSummary):
    count: int
    nan: int
    pos_inf: int
    neg_inf: int
    mean: float | None
    std: float | None
    min: float | None
    max: float | None

    def describe(self) -> str:
        text = f"mean {_fmt(self.mean)}  std {_fmt(self.std)}  min {_fmt(self.min)}  max {_fmt(self.max)}"
        if self.pos_inf or self.neg_inf:
            text += f"  +inf {self.pos_inf}  -inf {self.neg_inf}"
        return text


@dataclass(frozen=True)
class BooleanSummary(ColumnSummary):
    true: int
    false: int

    def describe(self) -> str:
        total = self.true + self.false
        share = self.true / total if total else 0.0
        return f"true {self.true} ({share:.1%})  false {self.false}"


@dataclass(frozen=True)
class CategoricalSummary(ColumnSummary):
    count: int
    distinct: int
    distinct_exact: bool
    top: list[tuple[str, int]] = field(default_factory=list)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["top"] = [{"value": value, "count": n} for value, n in self.top]
        return data

    def describe(self) -> str:
        distinct = f"{self.distinct}" if self.distinct_exact else f">= {self.distinct}"
        top = ", ".join(f"{value} {n}" for value, n in self.top)
        return f"{distinct} distinct; top: {top}"


@dataclass(frozen=True)
class TextSummary(ColumnSummary):
    count: int
    empty: int
    distinct: int
    distinct_exact: bool
    mean_chars: float | None
    max_chars: float | None
    mean_words: float | None
    vocabulary: dict = field(default_factory=dict)
    near_duplicate_documents: float | None = None

    def describe(self) -> str:
        distinct = f"{self.distinct}" if self.distinct_exact else f">= {self.distinct}"
        return (
            f"{distinct} distinct  mean {_fmt(self.mean_chars)} chars / {_fmt(self.mean_words)} words"
            f"  longest {_fmt(self.max_chars)}  empty {self.empty}"
            + _describe_vocabulary(self.vocabulary)
            + _describe_near_duplicates(self.near_duplicate_documents)
        )


@dataclass(frozen=True)
class TokenSummary(ColumnSummary):
    sequences: int
    tokens: int
    mean_length: float | None
    max_length: float | None
    min_token: int | None
    max_token: int | None
    vocabulary: dict = field(default_factory=dict)
    near_duplicate_documents: float | None = None

    def describe(self) -> str:
        return (
            f"{self.tokens} tokens in {self.sequences} sequences  mean length {_fmt(self.mean_length)}"
            f"  ids {self.min_token}..{self.max_token}"
            + _describe_vocabulary(self.vocabulary)
            + _describe_near_duplicates(self.near_duplicate_documents)
        )


def _describe_near_duplicates(share: float | None) -> str:
    return "" if share is None else f"  near-duplicate documents {share:.1%}"


def _describe_vocabulary(vocabulary: dict) -> str:
    if not vocabulary:
        return ""
    types = vocabulary["types"]
    types = f"{types}" if vocabulary["types_exact"] else f">= {types}"
    return (
        f"  vocabulary {types} types, entropy {_fmt(vocabulary['entropy'])} nats,"
        f" Zipf slope {_fmt(vocabulary['zipf_slope'])}"
    )


@dataclass(frozen=True)
class VectorSummary(ColumnSummary):
    count: int
    shape: list[int]
    nan: int
    mean_norm: float | None
    std_norm: float | None

    def describe(self) -> str:
        shape = "x".join(map(str, self.shape))
        text = f"shape {shape}  mean L2 norm {_fmt(self.mean_norm)}  std {_fmt(self.std_norm)}"
        return text + (f"  NaN values {self.nan}" if self.nan else "")


class NumericState:
    def __init__(self) -> None:
        self.nulls = self.nan = self.pos_inf = self.neg_inf = 0
        self.moments = Moments()
        self.sketch = QuantileSketch()

    def update(self, array: pa.Array) -> None:
        self.nulls += array.null_count
        values = _as_float64(array)
        finite = np.isfinite(values)
        if not finite.all():
            self.nan += int(np.isnan(values).sum())
            self.pos_inf += int(np.isposinf(values).sum())
            self.neg_inf += int(np.isneginf(values).sum())
            values = values[finite]
        self.moments.update(values)
        self.sketch.update(values)

    def merge(self, other: NumericState) -> NumericState:
        merged = NumericState()
        merged.nulls = self.nulls + other.nulls
        merged.nan = self.nan + other.nan
        merged.pos_inf = self.pos_inf + other.pos_inf
        merged.neg_inf = self.neg_inf + other.neg_inf
        merged.moments = self.moments.merge(other.moments)
        merged.sketch = self.sketch.merge(other.sketch)
        return merged

    @property
    def has_values(self) -> bool:
        return self.moments.count + self.pos_inf + self.neg_inf > 0

    def result(self) -> NumericSummary:
        return NumericSummary(
            role=ColumnRole.NUMERIC.value,
            nulls=self.nulls,
            nan=self.nan,
            pos_inf=self.pos_inf,
            neg_inf=self.neg_inf,
            **self.moments.summary(),
        )


class BooleanState:
    def __init__(self) -> None:
        self.nulls = self.true = self.false = 0

    def update(self, array: pa.Array) -> None:
        self.nulls += array.null_count
        if not pa.types.is_boolean(array.type):
            array = pc.not_equal(array, 0)
        true = pc.sum(array).as_py() or 0
        self.true += true
        self.false += len(array) - array.null_count - true

    def merge(self, other: BooleanState) -> BooleanState:
        merged = BooleanState()
        merged.nulls, merged.true, merged.false = (
            self.nulls + other.nulls,
            self.true + other.true,
            self.false + other.false,
        )
        return merged

    @property
    def has_values(self) -> bool:
        return self.true + self.false > 0

    def result(self) -> BooleanSummary:
        return BooleanSummary(
            role=ColumnRole.BOOLEAN.value, nulls=self.nulls, true=self.true, false=self.false
        )


class _DistinctValues:
    """Exact value counts up to MAX_TRACKED_DISTINCT distinct values, then counts only
    for values already seen (the distinct figure becomes a lower bound)."""

    def __init__(self) -> None:
        self.counts: Counter = Counter()
        self.overflow = False

    def add(self, values: list, counts: list[int]) -> None:
        for value, n in zip(values, counts):
            if value in self.counts or len(self.counts) < MAX_TRACKED_DISTINCT:
                self.counts[value] += n
            else:
                self.overflow = True

    def merge(self, other: _DistinctValues) -> _DistinctValues:
        merged = _DistinctValues()
        merged.overflow = self.overflow or other.overflow
        merged.add(list(self.counts), list(self.counts.values()))
        merged.add(list(other.counts), list(other.counts.values()))
        return merged


class CategoricalState:
    def __init__(self) -> None:
        self.nulls = self.count = 0
        self.values = _DistinctValues()

    def update(self, array: pa.Array) -> None:
        if pa.types.is_dictionary(array.type):
            array = array.dictionary_decode()
        self.nulls += array.null_count
        self.count += len(array) - array.null_count
        counted = pc.value_counts(array.drop_null())
        self.values.add(counted.field("values").to_pylist(), counted.field("counts").to_pylist())

    def merge(self, other: CategoricalState) -> CategoricalState:
        merged = CategoricalState()
        merged.nulls, merged.count = self.nulls + other.nulls, self.count + other.count
        merged.values = self.values.merge(other.values)
        return merged

    @property
    def has_values(self) -> bool:
        return self.count > 0

    def result(self) -> CategoricalSummary:
        top = sorted(self.values.counts.items(), key=lambda kv: (-kv[1], str(kv[0])))[:TOP_VALUES]
        return CategoricalSummary(
            role=ColumnRole.CATEGORICAL.value,
            nulls=self.nulls,
            count=self.count,
            distinct=len(self.values.counts),
            distinct_exact=not self.values.overflow,
            top=[(str(v), n) for v, n in top],
        )


class TextState:
    documents: DocumentDuplicates | None = None  # class default: states stored before it

    def __init__(self) -> None:
        self.nulls = self.empty = 0
        self.chars = Moments()
        self.words = Moments()
        self.values = _DistinctValues()
        self.sequence = SequenceState()
        self.documents = DocumentDuplicates()

    def update(self, array: pa.Array) -> None:
        self.nulls += array.null_count
        present = array.drop_null()
        _count_units(self, text_units(present))
        chars = _as_float64(pc.utf8_length(present))
        self.empty += int((chars == 0).sum())
        self.chars.update(chars)
        words = pc.list_value_length(pc.utf8_split_whitespace(present))
        self.words.update(_as_float64(words))
        # Documents are counted by a 64-bit hash, not kept: the state stays small.
        hashes = pc.value_counts(pa.array(_hash_strings(present)))
        self.values.add(hashes.field("values").to_pylist(), hashes.field("counts").to_pylist())

    def merge(self, other: TextState) -> TextState:
        merged = TextState()
        merged.nulls, merged.empty = self.nulls + other.nulls, self.empty + other.empty
        merged.chars = self.chars.merge(other.chars)
        merged.words = self.words.merge(other.words)
        merged.values = self.values.merge(other.values)
        merged.sequence = self.sequence.merge(other.sequence)
        merged.documents = _merge_optional(self.documents, other.documents)
        return merged

    @property
    def has_values(self) -> bool:
        return self.chars.count > 0

    def result(self) -> TextSummary:
        return TextSummary(
            role=ColumnRole.TEXT.value,
            nulls=self.nulls,
            count=self.chars.count,
            empty=self.empty,
            distinct=len(self.values.counts),
            distinct_exact=not self.values.overflow,
            mean_chars=self.chars.summary()["mean"],
            max_chars=self.chars.summary()["max"],
            mean_words=self.words.summary()["mean"],
            vocabulary=asdict(self.sequence.result()),
            near_duplicate_documents=_near_duplicates(self.documents),
        )


def _count_units(state: TextState | TokenState, units) -> None:
    """One trigram hashing pass serves the repeated-trigram count and the MinHash."""
    trigrams = ngram_hashes(units, REPETITION_N)
    state.sequence.update(units, trigrams)
    state.documents.update(units, trigrams)


def _merge_optional(a, b):
    """Merge of two states a stored profile may lack (None if either does)."""
    return None if a is None or b is None else a.merge(b)


def _near_duplicates(documents: DocumentDuplicates | None) -> float | None:
    if documents is None or documents.documents == 0:
        return None
    return documents.fraction()


def _hash_strings(array: pa.Array) -> np.ndarray:
    import hashlib

    return np.array(
        [
            int.from_bytes(hashlib.blake2b(s.encode(), digest_size=8).digest(), "little")
            for s in array.to_pylist()
        ],
        dtype=np.uint64,
    )


def _is_list_like(dtype: pa.DataType) -> bool:
    return (
        pa.types.is_list(dtype)
        or pa.types.is_large_list(dtype)
        or pa.types.is_fixed_size_list(dtype)
    )


def _list_values(array: pa.Array) -> tuple[np.ndarray, pa.Array]:
    """(per-row value counts, flat values) of the non-null rows of a list-like column."""
    if isinstance(array.type, pa.BaseExtensionType):
        array = array.storage
    valid = array.drop_null()
    flat = valid
    while _is_list_like(flat.type):
        flat = flat.flatten()  # flatten() honours slicing offsets, .values does not
    if pa.types.is_fixed_size_list(valid.type):
        per_row = len(flat) // len(valid) if len(valid) else 0
        return np.full(len(valid), per_row, dtype=np.int64), flat
    return _as_float64(pc.list_value_length(valid)).astype(np.int64), flat


class TokenState:
    """``ignore``: token ids that are not content (a tokenizer's special and padding
    tokens); they count in ``lengths`` and ``ids`` (what the model sees) but are never
    units of the vocabulary and sequence statistics."""

    documents: DocumentDuplicates | None = None  # class default: states stored before it

    def __init__(self, ignore: frozenset[int] = frozenset()) -> None:
        self.nulls = 0
        self.lengths = Moments()
        self.ids = Moments()
        self.ignore = sorted(ignore)
        self.sequence = SequenceState()
        self.documents = DocumentDuplicates()

    def update(self, array: pa.Array) -> None:
        self.nulls += array.null_count
        lengths, flat = _list_values(array)
        self.lengths.update(lengths.astype(np.float64))
        self.ids.update(_as_float64(flat))
        _count_units(self, token_units(array, frozenset(self.ignore)))

    def merge(self, other: TokenState) -> TokenState:
        merged = TokenState(frozenset(self.ignore) | frozenset(other.ignore))
        merged.nulls = self.nulls + other.nulls
        merged.lengths = self.lengths.merge(other.lengths)
        merged.ids = self.ids.merge(other.ids)
        merged.sequence = self.sequence.merge(other.sequence)
        merged.documents = _merge_optional(self.documents, other.documents)
        return merged

    @property
    def has_values(self) -> bool:
        return self.lengths.count > 0

    def result(self) -> TokenSummary:
        ids = self.ids.summary()
        return TokenSummary(
            role=ColumnRole.TOKENS.value,
            nulls=self.nulls,
            sequences=self.lengths.count,
            tokens=self.ids.count,
            mean_length=self.lengths.summary()["mean"],
            max_length=self.lengths.summary()["max"],
            min_token=None if ids["min"] is None else int(ids["min"]),
            max_token=None if ids["max"] is None else int(ids["max"]),
            vocabulary=asdict(self.sequence.result()),
            near_duplicate_documents=_near_duplicates(self.documents),
        )


class VectorState:
    """``duplicates`` counts repeated vectors over the whole column (rows without a NaN),
    like the row hashes of the profile."""

    duplicates: DuplicateState | None = None  # class default: states stored before it

    def __init__(self) -> None:
        self.nulls = self.nan = 0
        self.shape: list[int] = []
        self.norms = Moments()
        self.duplicates = DuplicateState()

    def update(self, array: pa.Array) -> None:
        self.nulls += array.null_count
        shape = _row_shape(array.type)
        lengths, flat = _list_values(array)
        values = _as_float64(flat)
        nan = np.isnan(values)
        self.nan += int(nan.sum())
        row = np.repeat(np.arange(len(lengths)), lengths)
        complete = (lengths > 0) & (np.bincount(row[nan], minlength=len(lengths)) == 0)
        self.duplicates.update(_list_hashes(array.drop_null())[complete])
        if shape is None:  # variable-length lists: each row's own length
            shape = [int(lengths.max())] if len(lengths) else []
            rows = np.split(np.where(nan, 0.0, values), np.cumsum(lengths)[:-1])
            norms = np.array([np.linalg.norm(r) for r in rows], dtype=np.float64)
        else:
            width = int(np.prod(shape)) if shape else 1
            matrix = np.where(nan, 0.0, values).reshape(-1, width)
            norms = np.linalg.norm(matrix, axis=1)
        if not self.shape:
            self.shape = shape
        self.norms.update(norms[np.isfinite(norms)])

    def merge(self, other: VectorState) -> VectorState:
        merged = VectorState()
        merged.nulls, merged.nan = self.nulls + other.nulls, self.nan + other.nan
        merged.shape = self.shape or other.shape
        merged.norms = self.norms.merge(other.norms)
        merged.duplicates = _merge_optional(self.duplicates, other.duplicates)
        return merged

    @property
    def has_values(self) -> bool:
        return self.norms.count > 0

    def result(self) -> VectorSummary:
        norms = self.norms.summary()
        return VectorSummary(
            role=ColumnRole.VECTOR.value,
            nulls=self.nulls,
            count=self.norms.count,
            shape=self.shape,
            nan=self.nan,
            mean_norm=norms["mean"],
            std_norm=norms["std"],
        )


def _row_shape(dtype: pa.DataType) -> list[int] | None:
    if isinstance(dtype, pa.FixedShapeTensorType):
        return list(dtype.shape)
    shape = []
    while pa.types.is_fixed_size_list(dtype):
        shape.append(dtype.list_size)
        dtype = dtype.value_type
    return (
        shape if shape and not (pa.types.is_list(dtype) or pa.types.is_large_list(dtype)) else None
    )


STATE_FOR_ROLE = {
    ColumnRole.NUMERIC: NumericState,
    ColumnRole.BOOLEAN: BooleanState,
    ColumnRole.CATEGORICAL: CategoricalState,
    ColumnRole.TEXT: TextState,
    ColumnRole.TOKENS: TokenState,
    ColumnRole.VECTOR: VectorState,
}
