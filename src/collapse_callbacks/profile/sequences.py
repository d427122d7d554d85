"""Documents as sequences of units, and the streaming state of a sequence column.

A *unit* is what the sequence statistics count: a word of a text column (lower-cased,
split on anything that is not a letter, digit, mark, underscore or apostrophe) or a
token id of a token column. Words become stable 64-bit ids (a hash of their UTF-8
bytes, the same on every machine and rank), so text and tokens share one numeric
representation: ``Units(offsets, ids)``, document ``i`` being ``ids[offsets[i]:
offsets[i + 1]]``. Token ids listed in ``ignore`` (a tokenizer's special and padding
tokens) are never units.

:class:`SequenceState` is the mergeable part of a text or token column's profile: unit
frequencies (the vocabulary), document lengths in units, and repeated n-grams within
documents. Near-duplicate documents are counted over the whole column too, by MinHash
band keys (:mod:`~collapse_callbacks.profile.minhash`, held by the column states). The
sample-based statistics (distinct n-grams, rare-vocabulary coverage, compression, an
n-gram language model) live in ``dimensions/sequences.py``: they are compared at
matched amounts of text, which these whole-data figures are not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from collapse_callbacks.profile.counting import distinct_count, unique_counts, unique_sums
from collapse_callbacks.profile.moments import Moments
from collapse_callbacks.profile.rows import _mix, _string_hashes
from collapse_callbacks.profile.sketch import QuantileSketch

WORD_SEPARATORS = r"[^\pL\pN\pM_']+"

# Distinct units kept with exact counts; past it the rarest are dropped and the
# vocabulary figures become lower bounds (``VocabularyCounts.exact`` says which).
MAX_VOCABULARY = 250_000

# Within-document repetition is counted on n-grams of this length: a repeated trigram
# is a phrase said again, where a repeated word is often just grammar.
REPETITION_N = 3

_NGRAM_BASE = np.uint64(0x9E3779B97F4A7C15)


@dataclass(frozen=True)
class Units:
    """Documents as unit ids: document ``i`` is ``ids[offsets[i]:offsets[i + 1]]``."""

    offsets: np.ndarray  # int64 [documents + 1]
    ids: np.ndarray  # int64 [units]

    @property
    def documents(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def document(self, i: int) -> np.ndarray:
        return self.ids[self.offsets[i] : self.offsets[i + 1]]

    def take(self, rows: np.ndarray) -> Units:
        """The documents at ``rows``, in that order."""
        lengths = self.lengths[rows]
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        if offsets[-1] == 0:
            return Units(offsets, np.empty(0, dtype=np.int64))
        starts = self.offsets[:-1][rows]
        index = np.repeat(starts - offsets[:-1], lengths) + np.arange(offsets[-1])
        return Units(offsets, self.ids[index])

    def first_units(self, total: int) -> Units:
        """The leading documents holding ``total`` units (the last one cut short)."""
        end = int(np.searchsorted(self.offsets, total, side="left"))
        end = min(end, self.documents)
        offsets = np.minimum(self.offsets[: end + 1], total)
        return Units(offsets, self.ids[: offsets[-1]])

    def document_ids(self) -> np.ndarray:
        """For every unit, the index of its document."""
        return np.repeat(np.arange(self.documents, dtype=np.int64), self.lengths)


def text_units(array: pa.Array) -> Units:
    """Word ids of each present document of a string array (nulls are skipped)."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    present = array.drop_null()
    words = pc.split_pattern_regex(pc.utf8_lower(present), WORD_SEPARATORS)
    flat = pc.list_flatten(words)
    per_document = np.asarray(pc.list_value_length(words).to_numpy(zero_copy_only=False))
    keep = np.asarray(pc.utf8_length(flat).to_numpy(zero_copy_only=False)) > 0
    ids = _string_hashes(flat).view(np.int64)[keep] if len(flat) else np.empty(0, np.int64)
    document = np.repeat(np.arange(len(per_document)), per_document)[keep]
    counts = np.bincount(document, minlength=len(per_document))
    offsets = np.zeros(len(per_document) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return Units(offsets, ids.astype(np.int64, copy=False))


def text_words(array: pa.Array) -> dict[int, str]:
    """The word behind each id of ``text_units(array)`` (for sentences a person reads)."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    words = pc.list_flatten(
        pc.split_pattern_regex(pc.utf8_lower(array.drop_null()), WORD_SEPARATORS)
    )
    unique = pc.unique(words)
    unique = unique.filter(pc.greater(pc.utf8_length(unique), 0))
    ids = _string_hashes(unique).view(np.int64)
    return dict(zip(ids.tolist(), unique.to_pylist()))


def token_units(array: pa.Array, ignore: frozenset[int] = frozenset()) -> Units:
    """Token ids of each present sequence of a list<int> column, minus ``ignore``."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if isinstance(array.type, pa.BaseExtensionType):
        array = array.storage
    present = array.drop_null()
    flat = pc.list_flatten(present)
    lengths = np.asarray(pc.list_value_length(present).to_numpy(zero_copy_only=False))
    ids = np.asarray(flat.cast(pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)
    # A null inside a sequence is no token (the cast above made it 0).
    keep = ~np.asarray(flat.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    if ignore:
        keep &= ~np.isin(ids, np.fromiter(ignore, dtype=np.int64))
    document = np.repeat(np.arange(len(lengths)), lengths)[keep]
    counts = np.bincount(document, minlength=len(lengths))
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return Units(offsets, ids[keep])


def ngram_hashes(units: Units, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(hash, document index) of every n-gram inside one document."""
    if n == 1:
        return units.ids.view(np.uint64), units.document_ids()
    total = len(units.ids)
    if total < n:
        return np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.int64)
    starts = np.arange(total - n + 1)
    document = units.document_ids()
    inside = document[starts] == document[starts + n - 1]
    starts = starts[inside]
    hashes = np.zeros(len(starts), dtype=np.uint64)
    values = units.ids.view(np.uint64)
    with np.errstate(over="ignore"):
        for k in range(n):
            hashes = _mix(hashes * _NGRAM_BASE + values[starts + k])
    return hashes, document[starts]


def repeated_ngrams(
    units: Units, n: int = REPETITION_N, ngrams: tuple[np.ndarray, np.ndarray] | None = None
) -> tuple[int, int]:
    """(n-grams that repeat an earlier n-gram of their own document, all n-grams);
    ``ngrams``: ``ngram_hashes(units, n)`` when the caller has them already."""
    hashes, document = ngram_hashes(units, n) if ngrams is None else ngrams
    if len(hashes) == 0:
        return 0, 0
    with np.errstate(over="ignore"):
        keyed = _mix(hashes ^ _mix(document.astype(np.uint64) + np.uint64(1)))
    return int(len(keyed) - distinct_count(keyed)), len(keyed)


class VocabularyCounts:
    """Unit id -> count, merged exactly while at most ``capacity`` ids are distinct;
    beyond that the rarest ids are dropped (``exact`` becomes False)."""

    def __init__(self, capacity: int = MAX_VOCABULARY) -> None:
        self.capacity = capacity
        self.ids = np.empty(0, dtype=np.int64)
        self.counts = np.empty(0, dtype=np.int64)
        self.dropped = 0  # units whose ids were dropped

    def update(self, ids: np.ndarray) -> None:
        unique, counts = unique_counts(ids)
        self._absorb(unique, counts)

    def _absorb(self, ids: np.ndarray, counts: np.ndarray) -> None:
        keys = np.concatenate([self.ids, ids])
        weights = np.concatenate([self.counts, counts])
        unique, totals = unique_sums(keys, weights)
        if len(unique) > self.capacity:
            # Keep the most frequent; ties broken by id so the result is deterministic.
            order = np.lexsort((unique, -totals))[: self.capacity]
            order.sort()
            self.dropped += int(totals.sum() - totals[order].sum())
            unique, totals = unique[order], totals[order]
        self.ids, self.counts = unique, totals

    def merge(self, other: VocabularyCounts) -> VocabularyCounts:
        merged = VocabularyCounts(self.capacity)
        merged.dropped = self.dropped + other.dropped
        merged._absorb(self.ids, self.counts)
        merged._absorb(other.ids, other.counts)
        return merged

    @property
    def exact(self) -> bool:
        return self.dropped == 0

    @property
    def total(self) -> int:
        return int(self.counts.sum()) + self.dropped


@dataclass(frozen=True)
class VocabularySummary:
    units: int
    types: int
    types_exact: bool
    entropy: float | None  # nats, of the unit frequencies
    zipf_slope: float | None  # of log frequency on log rank over the top ranks
    repeated_ngram_share: float | None
    mean_length: float | None
    median_length: float | None


ZIPF_RANKS = 1000


def entropy_of_counts(counts: np.ndarray) -> float:
    counts = counts[counts > 0].astype(np.float64)
    if len(counts) == 0:
        return float("nan")
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum())


def zipf_slope(counts: np.ndarray, ranks: int = ZIPF_RANKS) -> float:
    """Least-squares slope of log frequency on log rank over the top ``ranks`` types
    (about -1 for natural language; steeper when mass piles onto the head)."""
    counts = np.sort(counts[counts > 0])[::-1][:ranks].astype(np.float64)
    if len(counts) < 3:
        return float("nan")
    x = np.log(np.arange(1, len(counts) + 1))
    y = np.log(counts)
    return float(np.polyfit(x, y, 1)[0])


class SequenceState:
    """Streaming, mergeable statistics of a sequence column's units."""

    def __init__(self) -> None:
        self.vocabulary = VocabularyCounts()
        self.lengths = Moments()
        self.length_sketch = QuantileSketch()
        self.repeated = 0
        self.ngrams = 0

    def update(self, units: Units, trigrams: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        """``trigrams``: ``ngram_hashes(units, REPETITION_N)``, when already computed."""
        self.vocabulary.update(units.ids)
        lengths = units.lengths.astype(np.float64)
        self.lengths.update(lengths)
        self.length_sketch.update(lengths)
        repeated, total = repeated_ngrams(units, REPETITION_N, trigrams)
        self.repeated += repeated
        self.ngrams += total

    def merge(self, other: SequenceState) -> SequenceState:
        merged = SequenceState()
        merged.vocabulary = self.vocabulary.merge(other.vocabulary)
        merged.lengths = self.lengths.merge(other.lengths)
        merged.length_sketch = self.length_sketch.merge(other.length_sketch)
        merged.repeated = self.repeated + other.repeated
        merged.ngrams = self.ngrams + other.ngrams
        return merged

    def result(self) -> VocabularySummary:
        counts = self.vocabulary.counts
        lengths = self.lengths.summary()
        median = self.length_sketch.quantile(0.5) if self.lengths.count else None
        return VocabularySummary(
            units=self.vocabulary.total,
            types=len(counts),
            types_exact=self.vocabulary.exact,
            entropy=entropy_of_counts(counts) if len(counts) else None,
            zipf_slope=zipf_slope(counts) if len(counts) >= 3 else None,
            repeated_ngram_share=self.repeated / self.ngrams if self.ngrams else None,
            mean_length=lengths["mean"],
            median_length=None if median is None else float(median),
        )
