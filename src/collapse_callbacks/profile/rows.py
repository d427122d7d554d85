"""Row-level streaming state: row hashes for duplicates, a uniform row sample, and the
co-moments of the numeric columns. Each has update / merge and a result.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from collapse_callbacks.data.roles import ColumnRole
from collapse_callbacks.profile.counting import unique_sums

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)
_NULL_HASH = np.uint64(0x9E3779B97F4A7C15)
_STRING_BASE = np.uint64(0x100000001B3)


def _mix(h: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer: spreads similar inputs over all 64 bits. Returns a new
    array (the first step allocates it; the rest work in place on it)."""
    with np.errstate(over="ignore"):
        h = h ^ (h >> np.uint64(30))
        np.multiply(h, np.uint64(0xBF58476D1CE4E5B9), out=h)
        np.bitwise_xor(h, h >> np.uint64(27), out=h)
        np.multiply(h, np.uint64(0x94D049BB133111EB), out=h)
        np.bitwise_xor(h, h >> np.uint64(31), out=h)
        return h


def _string_hashes(array: pa.Array) -> np.ndarray:
    """A polynomial hash of each string's UTF-8 bytes, vectorized over the buffer."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if not (pa.types.is_large_string(array.type) or pa.types.is_large_binary(array.type)):
        array = array.cast(pa.large_string())
    n = len(array)
    offsets = np.frombuffer(
        array.buffers()[1], dtype=np.int64, count=n + 1, offset=array.offset * 8
    )
    data_buffer = array.buffers()[2]
    start, stop = int(offsets[0]), int(offsets[-1])
    data = (
        np.frombuffer(data_buffer, dtype=np.uint8)[start:stop].astype(np.uint64)
        if data_buffer is not None and stop > start
        else np.empty(0, dtype=np.uint64)
    )
    lengths = np.diff(offsets)
    positions = np.arange(stop - start, dtype=np.int64) - np.repeat(offsets[:-1] - start, lengths)
    with np.errstate(over="ignore"):
        powers = np.cumprod(
            np.full(int(lengths.max()) + 1 if n else 1, _STRING_BASE, dtype=np.uint64)
        )
        contributions = (data + np.uint64(1)) * powers[positions] if len(data) else data
        hashes = np.zeros(n, dtype=np.uint64)
        nonempty = lengths > 0
        if nonempty.any():
            sums = np.add.reduceat(contributions, (offsets[:-1] - start)[nonempty])
            hashes[nonempty] = sums
        hashes = _mix(hashes + lengths.astype(np.uint64))
    if array.null_count:
        hashes[np.asarray(array.is_null().to_numpy(zero_copy_only=False))] = _NULL_HASH
    return hashes


def _numeric_hash_pair(array: pa.Array, digits: int | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Hashes of the values, and of the values rounded to ``digits`` significant
    digits (None without ``digits``)."""
    from collapse_callbacks.profile.columns import float64_with_nulls

    values, nulls = float64_with_nulls(array)
    rounded = None if digits is None else _round_significant(values, digits)
    return _bits_hash(values, nulls), None if rounded is None else _bits_hash(rounded, nulls)


def _bits_hash(values: np.ndarray, nulls: np.ndarray) -> np.ndarray:
    values = np.where(values == 0, 0.0, values)  # -0.0 and 0.0 are one value
    hashes = _mix(values.view(np.uint64))
    if nulls.any():
        hashes[nulls] = _NULL_HASH
    return hashes


# 10.0 ** k for every exponent a float64's rounding can need (k = digits - 1 - its
# decimal exponent, which lies in [-308, 323]), computed by np.power itself so the
# table holds exactly what np.power(10.0, k) returns: looking a power up is ten times
# faster than computing it, and the rounded values stay bit for bit the same.
_POWER_OFFSET = 400
with np.errstate(over="ignore"):  # 10.0 ** 309 and above are inf, as np.power gives them
    _POWERS_OF_TEN = np.power(10.0, np.arange(-_POWER_OFFSET, _POWER_OFFSET + 1, dtype=np.float64))


def _round_significant(values: np.ndarray, digits: int) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        magnitude = np.abs(values)
        np.log10(magnitude, out=magnitude)
        np.floor(magnitude, out=magnitude)
        magnitude[~np.isfinite(magnitude)] = 0.0
        exponent = (digits - 1 + _POWER_OFFSET) - magnitude.astype(np.int64)
        scale = _POWERS_OF_TEN[np.clip(exponent, 0, 2 * _POWER_OFFSET)]
        rounded = values * scale
        np.round(rounded, out=rounded)
        rounded /= scale
        return np.where(np.isfinite(values), rounded, values)


def _list_hashes(array: pa.Array) -> np.ndarray:
    """Hash of each list's values (tokens, vectors, tensors), taken on the values as
    int64 (integers) or float64 (anything else): equal values give equal hashes whatever
    the column's storage width."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if isinstance(array.type, pa.BaseExtensionType):
        array = array.storage
    hashes = np.full(len(array), _NULL_HASH, dtype=np.uint64)
    valid = ~np.asarray(array.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    present = array.drop_null()
    flat = present
    depth = 0
    while _is_list(flat.type):
        flat = flat.flatten()  # flatten() honours slicing offsets, .values does not
        depth += 1
    if depth > 1 and not _all_fixed(present.type):
        # Ragged nested lists: rare; their text form keeps the nesting in the hash.
        as_text = pa.array([repr(v) for v in present.to_pylist()], pa.large_string())
        hashes[valid] = _string_hashes(as_text)
        return hashes
    if pa.types.is_fixed_size_list(present.type):
        width = len(flat) // len(present) if len(present) else 0
        lengths = np.full(len(present), width, dtype=np.int64)
    else:
        lengths = np.asarray(
            pc.list_value_length(present).to_numpy(zero_copy_only=False), dtype=np.int64
        )
    integer = pa.types.is_integer(flat.type) or pa.types.is_boolean(flat.type)
    target = pa.int64() if integer else pa.float64()
    values = np.asarray(
        flat.cast(target, safe=False).fill_null(0).to_numpy(zero_copy_only=False),
        dtype=np.int64 if integer else np.float64,
    )
    if not integer:
        values = np.where(values == 0, 0.0, values)  # -0.0 and 0.0 are one value
    hashes[valid] = _word_hashes(np.ascontiguousarray(values).view(np.uint64), lengths)
    return hashes


def _word_hashes(words: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """One hash per row of 64-bit words (row i holds the next ``lengths[i]`` words): the
    sum of each word mixed with its position, mixed with the row's length."""
    starts = np.zeros(len(lengths), dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    positions = np.arange(len(words), dtype=np.int64) - np.repeat(starts, lengths)
    with np.errstate(over="ignore"):
        mixed = _mix(words ^ _mix(positions.astype(np.uint64) + _STRING_BASE))
        sums = np.zeros(len(lengths), dtype=np.uint64)
        nonempty = lengths > 0
        if nonempty.any():
            sums[nonempty] = np.add.reduceat(mixed, starts[nonempty])
        return _mix(sums + lengths.astype(np.uint64))


def _is_list(dtype: pa.DataType) -> bool:
    return (
        pa.types.is_list(dtype)
        or pa.types.is_large_list(dtype)
        or pa.types.is_fixed_size_list(dtype)
    )


def _all_fixed(dtype: pa.DataType) -> bool:
    while _is_list(dtype):
        if not pa.types.is_fixed_size_list(dtype):
            return False
        dtype = dtype.value_type
    return True


def row_hashes(
    batch: pa.RecordBatch, roles: dict[str, ColumnRole], digits: int | None = None
) -> np.ndarray:
    """One 64-bit hash per row over the given columns. ``digits`` rounds numbers to that
    many significant digits first, so rows equal up to that precision collide; it also
    compares text columns by their words only (case, punctuation and spacing ignored),
    so "Hello, world!" and "hello world" collide."""
    if digits is None:
        return row_hash_pair(batch, roles, None)[0]
    return row_hash_pair(batch, roles, digits)[1]


def row_hash_pair(
    batch: pa.RecordBatch, roles: dict[str, ColumnRole], digits: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """``row_hashes(batch, roles)`` and ``row_hashes(batch, roles, digits)`` (the exact
    hashes twice when ``digits`` is None), reading each column once: the profile pass
    needs both, and most columns hash the same either way."""
    exact = np.zeros(batch.num_rows, dtype=np.uint64)
    near = exact.copy() if digits is not None else exact
    with np.errstate(over="ignore"):
        for name, role in roles.items():
            column = batch.column(name)
            near_hashes = None
            if role in (ColumnRole.NUMERIC, ColumnRole.BOOLEAN) or (
                role is ColumnRole.CATEGORICAL and not _is_string(column.type)
            ):
                rounded = digits if role is ColumnRole.NUMERIC else None
                hashes, near_hashes = _numeric_hash_pair(column, rounded)
            elif role in (ColumnRole.CATEGORICAL, ColumnRole.TEXT):
                hashes = _string_hashes(column)
                if role is ColumnRole.TEXT and digits is not None:
                    near_hashes = _string_hashes(_words_only(column))
            else:
                hashes = _list_hashes(column)
            exact = _combine(exact, hashes)
            if digits is not None:
                near = _combine(near, hashes if near_hashes is None else near_hashes)
    return exact, near if digits is not None else exact


def _combine(combined: np.ndarray, hashes: np.ndarray) -> np.ndarray:
    """The running row hash after one more column: mix(combined * 31 + hashes)."""
    combined = combined * np.uint64(31)
    combined += hashes
    return _mix(combined)


def _words_only(column: pa.Array) -> pa.Array:
    from collapse_callbacks.profile.sequences import WORD_SEPARATORS

    spaced = pc.replace_substring_regex(pc.utf8_lower(column), WORD_SEPARATORS, " ")
    return pc.utf8_trim_whitespace(spaced)


def _is_string(dtype: pa.DataType) -> bool:
    if pa.types.is_dictionary(dtype):
        dtype = dtype.value_type
    return (
        pa.types.is_string(dtype)
        or pa.types.is_large_string(dtype)
        or pa.types.is_string_view(dtype)
    )


class DuplicateState:
    """Exact-or-sampled duplicate counting in bounded memory.

    Keeps the hashes below ``2**64 >> level`` with their counts; when more than
    ``capacity`` distinct hashes are kept, ``level`` rises and half are dropped. Equal
    rows share a hash, so a group of duplicates is kept or dropped whole and the
    duplicate fraction among kept rows estimates the whole dataset's without bias. While
    ``level`` is 0 the figures are exact.
    """

    seen = -1  # class default: states stored before the total was kept (-1 = unknown)

    def __init__(self, capacity: int = 1 << 18) -> None:
        self.capacity = capacity
        self.level = 0
        self.seen = 0  # every row offered, kept or not
        self.hashes = np.empty(0, dtype=np.uint64)
        self.counts = np.empty(0, dtype=np.int64)

    def _limit(self) -> np.uint64:
        return _MASK64 >> np.uint64(self.level)

    def update(self, hashes: np.ndarray) -> None:
        self.seen += len(hashes)
        self._absorb(hashes, np.ones(len(hashes), dtype=np.int64))

    def _absorb(self, hashes: np.ndarray, counts: np.ndarray) -> None:
        keep = hashes <= self._limit()
        keys = np.concatenate([self.hashes, hashes[keep]])
        weights = np.concatenate([self.counts, counts[keep]])
        self.hashes, self.counts = unique_sums(keys, weights)
        while len(self.hashes) > self.capacity:
            self.level += 1
            keep = self.hashes <= self._limit()
            self.hashes, self.counts = self.hashes[keep], self.counts[keep]

    def merge(self, other: DuplicateState) -> DuplicateState:
        merged = DuplicateState(self.capacity)
        merged.level = max(self.level, other.level)
        merged.seen = self.seen + other.seen if min(self.seen, other.seen) >= 0 else -1
        merged._absorb(self.hashes, self.counts)
        merged._absorb(other.hashes, other.counts)
        return merged

    @property
    def exact(self) -> bool:
        return self.level == 0

    def duplicate_fraction(self) -> float:
        """Share of rows that repeat an earlier row (0 when all rows are distinct)."""
        rows = int(self.counts.sum())
        return 1.0 - len(self.counts) / rows if rows else 0.0

    @property
    def rows(self) -> int:
        """Rows offered: exact, or estimated from the kept ones for old stored states."""
        if self.seen >= 0:
            return self.seen
        return int(self.counts.sum()) << self.level

    def coarsened(self, level: int) -> DuplicateState:
        """This state as if its hash sample were ``level``'s (the same or coarser): two
        states coarsened to one level hold the same groups of equal rows, so their
        figures are compared on one sample of the data's values, not on two."""
        if level <= self.level:
            return self
        out = DuplicateState(self.capacity)
        out.level, out.seen = level, self.seen
        keep = self.hashes <= out._limit()
        out.hashes, out.counts = self.hashes[keep], self.counts[keep]
        return out

    def at_size(self, rows: int) -> DuplicateFigure:
        """The duplicate fraction a dataset of ``rows`` rows drawn like this one would
        show, from this one's groups of equal rows, and the variance of that figure.

        Duplicates grow with size (more rows, more chances to repeat one), so datasets of
        different sizes are compared at the smaller size: each row is kept with
        probability ``p = rows / self.rows``, and a group of ``c`` equal rows contributes
        ``c p`` rows and ``1 - (1 - p)^c`` distinct values in expectation. The fraction
        is a ratio of sums over groups; its variance is the linearized (delta-method)
        one with the groups as independent units, which covers both the hash sampling
        of groups and the draw of the data (counts as independent Poisson variables)."""
        total = self.rows
        if total <= 0 or len(self.counts) == 0:
            return DuplicateFigure(0.0, 0.0, 0)
        keep = min(1.0, rows / total)
        counts = self.counts.astype(np.float64)
        present = -np.expm1(counts * np.log1p(-keep)) if keep < 1.0 else np.ones_like(counts)
        kept = counts * keep
        distinct_share = present.sum() / kept.sum()
        residual = present - distinct_share * kept
        variance = (residual**2).sum() / kept.sum() ** 2
        if keep < 1.0:
            # Plus the thinning's own randomness (which rows a dataset of ``rows`` holds),
            # so that the figure varies like one of a dataset that size: linearized over
            # groups present (q) and rows kept, with the hash sample's rate.
            q = present
            thinning = q * (1 - q) - 2 * distinct_share * kept * (1 - q)
            thinning += distinct_share**2 * kept * (1 - keep)
            variance += max(thinning.sum(), 0.0) / kept.sum() ** 2 / float(1 << self.level)
        fraction = max(0.0, float(1.0 - distinct_share))  # not a rounding error below 0
        return DuplicateFigure(fraction, float(variance), min(rows, total))


@dataclass(frozen=True)
class DuplicateFigure:
    """A duplicate fraction at a given size, with its sampling variance."""

    fraction: float
    variance: float
    rows: int


class RowSample:
    """A uniform sample of ``size`` rows without replacement (bottom-k of random keys).

    Each row gets a key from the state's seeded generator; the rows with the smallest
    keys form the sample, which is what makes two samples merge into a uniform sample of
    the union.
    """

    def __init__(self, size: int, seed: int) -> None:
        self.size = size
        self.rng = np.random.default_rng(seed)
        self.keys = np.empty(0, dtype=np.float64)
        self.table: pa.Table | None = None

    def update(self, batch: pa.RecordBatch) -> None:
        keys = self.rng.random(batch.num_rows)
        if self.table is not None and len(self.keys) >= self.size:
            threshold = self.keys[self.size - 1]
            chosen = np.flatnonzero(keys < threshold)
            if len(chosen) == 0:
                return
            batch, keys = batch.take(pa.array(chosen)), keys[chosen]
        self._add(pa.Table.from_batches([batch]), keys)

    def _add(self, table: pa.Table, keys: np.ndarray) -> None:
        if self.table is not None:
            table = pa.concat_tables([self.table, table], promote_options="permissive")
            keys = np.concatenate([self.keys, keys])
        order = np.argsort(keys, kind="stable")[: self.size]
        self.keys = keys[order]
        self.table = table.take(pa.array(order)).combine_chunks()

    def merge(self, other: RowSample) -> RowSample:
        merged = RowSample(self.size, 0)
        merged.rng = self.rng
        for part in (self, other):
            if part.table is not None:
                merged._add(part.table, part.keys)
        return merged

    def result(self) -> pa.Table | None:
        return self.table


@dataclass(frozen=True)
class Covariance:
    columns: tuple[str, ...]
    rows: int
    mean: np.ndarray
    covariance: np.ndarray

    def correlation(self) -> np.ndarray:
        std = np.sqrt(np.clip(np.diag(self.covariance), 0, None))
        with np.errstate(divide="ignore", invalid="ignore"):
            corr = self.covariance / np.outer(std, std)
        corr[~np.isfinite(corr)] = 0.0
        np.fill_diagonal(corr, 1.0)
        return corr


class CoMoments:
    """Mean vector and co-moment matrix of the numeric columns over complete rows
    (rows where every numeric column is finite), merged with Chan's update."""

    def __init__(self, columns: list[str]) -> None:
        self.columns = list(columns)
        k = len(columns)
        self.rows = 0
        self.mean = np.zeros(k)
        self.m2 = np.zeros((k, k))

    def update(self, batch: pa.RecordBatch) -> None:
        if not self.columns:
            return
        from collapse_callbacks.profile.columns import float64_with_nulls

        matrix = np.column_stack([float64_with_nulls(batch.column(c))[0] for c in self.columns])
        matrix = matrix[np.isfinite(matrix).all(axis=1)]
        if len(matrix) == 0:
            return
        other = CoMoments(self.columns)
        other.rows = len(matrix)
        other.mean = matrix.mean(axis=0)
        centered = matrix - other.mean
        other.m2 = centered.T @ centered
        self._absorb(other)

    def _absorb(self, other: CoMoments) -> None:
        if other.rows == 0:
            return
        total = self.rows + other.rows
        delta = other.mean - self.mean
        self.m2 = self.m2 + other.m2 + np.outer(delta, delta) * self.rows * other.rows / total
        self.mean = self.mean + delta * other.rows / total
        self.rows = total

    def merge(self, other: CoMoments) -> CoMoments:
        merged = CoMoments(self.columns)
        merged._absorb(self)
        merged._absorb(other)
        return merged

    def result(self) -> Covariance:
        k = len(self.columns)
        cov = self.m2 / (self.rows - 1) if self.rows > 1 else np.full((k, k), np.nan)
        return Covariance(tuple(self.columns), self.rows, self.mean.copy(), cov)
