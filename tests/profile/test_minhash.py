"""MinHash band keys and the whole-column near-duplicate state, on real text (the
Python documentation's topic pages that the standard library ships)."""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pytest

from collapse_callbacks.profile.columns import TextState, TokenState
from collapse_callbacks.profile.minhash import BAND_WIDTH, BANDS, DocumentDuplicates, band_keys
from collapse_callbacks.profile.sequences import text_units, token_units


@pytest.fixture(scope="module")
def paragraphs() -> list[str]:
    from pydoc_data.topics import topics

    found = dict.fromkeys(
        " ".join(p.split())
        for text in topics.values()
        for p in re.split(r"\n\s*\n", text)
        if len(p.split()) >= 20
    )
    return list(found)


def _drop_one_word(doc: str, rng) -> str:
    words = doc.split()
    drop = int(rng.integers(len(words)))
    return " ".join(words[:drop] + words[drop + 1 :])


def test_band_keys_match_for_copies_and_mostly_for_near_copies(paragraphs):
    rng = np.random.default_rng(0)
    docs = paragraphs[:300]
    near = [_drop_one_word(d, rng) for d in docs]
    keys, signed = band_keys(text_units(pa.array(docs + docs + near + ["", "one"])))
    assert signed.tolist() == [True] * 900 + [False, True]  # the empty one has no shingle
    original, copy, edited = keys[:300], keys[300:600], keys[600:900]
    np.testing.assert_array_equal(original, copy)
    # One word of 20+ dropped leaves Jaccard ~0.85-0.95 between the trigram sets: a band
    # of three minima is shared about J^3 of the time, so most bands, rarely all.
    shared = (original == edited).mean()
    assert 0.45 < shared < 0.95
    # Different paragraphs share a band only by chance.
    assert (original[:-1] == original[1:]).mean() < 0.01


def test_near_duplicate_share_counts_pairs_spread_over_the_whole_column(paragraphs):
    rng = np.random.default_rng(1)
    docs = paragraphs[:600]
    column = docs + [_drop_one_word(d, rng) for d in docs[:300]]
    order = rng.permutation(len(column))
    state = DocumentDuplicates()
    for chunk in np.array_split(order, 9):  # batches in stream order
        state.update(text_units(pa.array([column[i] for i in chunk])))
    assert state.documents == 900
    # 300 of 900 documents near-copy an earlier one; a band catches a pair ~J^3 of the time.
    assert 0.15 < state.fraction() < 1 / 3
    clean = DocumentDuplicates()
    clean.update(text_units(pa.array(docs)))
    assert clean.fraction() < 0.01


def test_state_halves_merge_to_the_whole(paragraphs):
    array = pa.array(paragraphs[:400] + paragraphs[:100])
    whole, first, second = TextState(), TextState(), TextState()
    whole.update(array)
    first.update(array.slice(0, 250))
    second.update(array.slice(250))
    merged = first.merge(second)
    assert merged.documents.documents == whole.documents.documents == 500
    # 100 exact repeats of 500, and a few near-repeats among the topic pages themselves.
    assert merged.documents.fraction() == whole.documents.fraction() == pytest.approx(0.2, abs=0.02)
    for a, b in zip(merged.documents.bands, whole.documents.bands):
        np.testing.assert_array_equal(a.hashes, b.hashes)
        np.testing.assert_array_equal(a.counts, b.counts)
    assert whole.result().near_duplicate_documents == whole.documents.fraction()
    assert f"near-duplicate documents {whole.documents.fraction():.1%}" in whole.result().describe()


def test_token_columns_count_near_duplicates_without_ignored_tokens():
    pad = 0
    rows = [[5, 6, 7, 8, 9, pad, pad], [5, 6, 7, 8, 9, pad, pad], [9, 8, 7, 6, 5, 4, pad]]
    padded = TokenState(frozenset({pad}))
    padded.update(pa.array(rows, pa.list_(pa.int64())))
    # The two first rows are the same content: one repeat of three documents.
    assert padded.documents.fraction() == pytest.approx(1 / 3)
    keys, _ = band_keys(token_units(pa.array(rows[:1]), frozenset({pad})))
    alone, _ = band_keys(token_units(pa.array([[5, 6, 7, 8, 9]])))
    np.testing.assert_array_equal(keys, alone)  # padding is no content
    assert keys.shape == (1, BANDS) and BAND_WIDTH == 3
