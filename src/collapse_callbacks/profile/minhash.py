"""MinHash of documents, and the band keys that make near duplicates countable in a stream.

A document's shingles are its word (or token) trigrams, its units when it is shorter.
For a random hash function the smallest shingle hash of two documents is equal with
probability their Jaccard similarity J, so a *band* of ``BAND_WIDTH`` such minima is
equal with probability about J^BAND_WIDTH. Two documents sharing a band key are near
duplicates in that band; counting repeated band keys is counting repeated rows, which
:class:`~collapse_callbacks.profile.rows.DuplicateState` does over a whole dataset in
bounded memory. With ``BAND_WIDTH`` 3 a pair shares a given band with probability 1.0
(identical), 0.73 (J = 0.9), 0.51 (0.8), 0.13 (0.5), 0.03 (0.3): the share of
documents repeating an earlier one's key, averaged over ``BANDS`` bands, is a
near-duplicate rate weighted by similarity.
"""

from __future__ import annotations

import numpy as np

from collapse_callbacks.profile.rows import DuplicateState, _mix
from collapse_callbacks.profile.sequences import REPETITION_N, Units, ngram_hashes

# The trigrams the sequence state counts repeats of: one hashing pass serves both.
SHINGLE_N = REPETITION_N
BANDS = 4
BAND_WIDTH = 3
_PERMUTATION_SEED = np.uint64(0x632BE59BD9B4E019)
_BAND_BASE = np.uint64(0x100000001B3)


def minhash_signatures(
    units: Units, permutations: int, trigrams: tuple[np.ndarray, np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``[documents, permutations]`` MinHash of each document's shingles, and which
    documents have any shingle (an empty document has none). ``trigrams``:
    ``ngram_hashes(units, SHINGLE_N)`` when the caller has them already."""
    n = units.documents
    signatures = np.full((n, permutations), np.iinfo(np.uint64).max, dtype=np.uint64)
    shingles, document = ngram_hashes(units, SHINGLE_N) if trigrams is None else trigrams
    lengths = units.lengths
    short = np.flatnonzero((lengths > 0) & (lengths < SHINGLE_N))
    if len(short):
        words, which = ngram_hashes(units.take(short), 1)
        shingles = np.concatenate([shingles, words])
        document = np.concatenate([document, short[which]])
        order = np.argsort(document, kind="stable")
        shingles, document = shingles[order], document[order]
    signed = np.zeros(n, dtype=bool)
    if len(shingles) == 0:
        return signatures, signed
    starts = np.flatnonzero(np.r_[True, document[1:] != document[:-1]])
    owners = document[starts]
    # The shingle hashes are already mixed, so a multiply-add with an odd multiplier (a
    # bijection of 64-bit words) is permutation enough, at a fifth of a full mix.
    keys = _mix(np.arange(1, 2 * permutations + 1, dtype=np.uint64) * _PERMUTATION_SEED)
    with np.errstate(over="ignore"):
        for k in range(permutations):
            permuted = shingles * (keys[2 * k] | np.uint64(1)) + keys[2 * k + 1]
            signatures[owners, k] = np.minimum.reduceat(permuted, starts)
    signed[owners] = True
    return signatures, signed


def band_keys(
    units: Units, trigrams: tuple[np.ndarray, np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``[documents, BANDS]`` band keys, and which documents have any shingle."""
    signatures, signed = minhash_signatures(units, BANDS * BAND_WIDTH, trigrams)
    keys = np.empty((units.documents, BANDS), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for band in range(BANDS):
            key = np.full(units.documents, np.uint64(band + 1))
            for j in range(band * BAND_WIDTH, (band + 1) * BAND_WIDTH):
                key = _mix(key * _BAND_BASE + signatures[:, j])
            keys[:, band] = key
    return keys, signed


class DocumentDuplicates:
    """Near-duplicate documents of a whole text or token column, in bounded memory: the
    band keys of every document, one :class:`DuplicateState` per band."""

    def __init__(self, capacity: int = 1 << 16) -> None:
        self.bands = [DuplicateState(capacity) for _ in range(BANDS)]

    def update(self, units: Units, trigrams: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        keys, signed = band_keys(units, trigrams)
        for band, state in enumerate(self.bands):
            state.update(keys[signed, band])

    def merge(self, other: DocumentDuplicates) -> DocumentDuplicates:
        merged = DocumentDuplicates.__new__(DocumentDuplicates)
        merged.bands = [a.merge(b) for a, b in zip(self.bands, other.bands)]
        return merged

    @property
    def documents(self) -> int:
        """Documents with any shingle."""
        return self.bands[0].rows

    def fraction(self) -> float:
        """Share of the documents repeating an earlier one's band key, mean over bands."""
        return float(np.mean([state.duplicate_fraction() for state in self.bands]))
