"""Text and token-sequence columns: known answers on real text.

The text is the Python documentation's topic pages that the standard library ships
(``pydoc_data.topics``): real English prose with code, about 1,250 distinct paragraphs.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter

import numpy as np
import pyarrow as pa
import pytest

from collapse_callbacks import CollapseGate
from collapse_callbacks.data.roles import ColumnRole
from collapse_callbacks.dimensions import sequences
from collapse_callbacks.gate import run_dimensions
from collapse_callbacks.profile.sequences import (
    Units,
    repeated_ngrams,
    text_units,
    token_units,
)
from collapse_callbacks.profile.table import Profile

ALPHA = 0.01


@pytest.fixture(scope="module")
def paragraphs() -> list[str]:
    from pydoc_data.topics import topics

    # Deduplicated: the pages repeat some boilerplate paragraphs ("Changed in version").
    found = list(
        dict.fromkeys(
            " ".join(p.split())
            for text in topics.values()
            for p in re.split(r"\n\s*\n", text)
            if len(p.split()) >= 12
        )
    )
    order = np.random.default_rng(0).permutation(len(found))
    return [found[i] for i in order]


def _table(docs: list[str]) -> pa.Table:
    return pa.table({"text": pa.array(docs, pa.string())})


def _evidence(reference: list[str], candidate: list[str]) -> dict:
    gate = CollapseGate(reference=_table(reference))
    comparison, _ = gate.compare(_table(candidate))
    return sequences.evidence_by_dimension(comparison)


def _signal(evidence: dict, name: str):
    for signals, _ in evidence.values():
        for s in signals:
            if s.name == name:
                return s
    raise AssertionError(f"no signal {name}")


def _firing(evidence: dict) -> set[str]:
    # Bonferroni over all sequence signals: stricter than the verdict's Holm shares.
    signals = [s for group, _ in evidence.values() for s in group]
    return {s.name for s in signals if s.fires(ALPHA / len(signals))}


def test_units_split_words_and_skip_nulls_and_empty():
    units = text_units(pa.array(["Hello, World! it's", None, "", "naïve café"]))
    assert units.lengths.tolist() == [3, 0, 2]  # null skipped, empty string has no words
    again = text_units(pa.array(["hello world IT'S"]))
    assert units.document(0).tolist() == again.document(0).tolist()  # case-insensitive


def test_repeated_ngrams_counts_within_documents_only():
    units = Units(np.array([0, 6, 9]), np.array([1, 2, 3, 1, 2, 3, 1, 2, 3]))
    # Document 0: trigrams 123 231 312 123 -> one repeat; document 1: 123 once.
    assert repeated_ngrams(units) == (1, 5)


def test_padding_and_special_tokens_never_count():
    ids = pa.array([[5, 6, 7, 0, 0], [8, 1, 9]], pa.large_list(pa.int64()))
    units = token_units(ids, ignore=frozenset({0, 1}))
    assert units.lengths.tolist() == [3, 2]
    assert units.ids.tolist() == [5, 6, 7, 8, 9]


def test_real_split_fires_no_sequence_signal(paragraphs):
    half = len(paragraphs) // 2
    evidence = _evidence(paragraphs[:half], paragraphs[half:])
    assert not _firing(evidence)
    report = CollapseGate(reference=_table(paragraphs[:half])).check(_table(paragraphs[half:]))
    assert not report.collapsed, report.reasons


def test_repeated_documents_raise_near_duplicates(paragraphs):
    half = len(paragraphs) // 2
    rng = np.random.default_rng(1)
    base = paragraphs[half : half + 200]
    # Each kept document four times, each copy missing one word: near, not exact, copies.
    candidate = []
    for doc in base:
        words = doc.split()
        for _ in range(4):
            drop = rng.integers(len(words))
            candidate.append(" ".join(words[:drop] + words[drop + 1 :]))
    evidence = _evidence(paragraphs[:half], candidate)
    near = _signal(evidence, "near_duplicate_documents")
    assert near.value > near.reference_value + 0.3
    assert "near_duplicate_documents" in _firing(evidence)


def test_near_copies_spread_beyond_the_row_sample_are_counted_over_the_whole_data(paragraphs):
    # 600 real documents plus a near copy (one word dropped) of 300 of them, against 600
    # other real documents, with a row sample far smaller than the data: a sample keeps
    # a pair whole only with the square of its rate, the streaming pass sees them all.
    rng = np.random.default_rng(2)
    reference, real = paragraphs[:600], paragraphs[600:1200]
    copies = []
    for doc in real[:300]:
        words = doc.split()
        drop = rng.integers(len(words))
        copies.append(" ".join(words[:drop] + words[drop + 1 :]))
    candidate = [(real + copies)[i] for i in rng.permutation(900)]
    gate = CollapseGate(reference=_table(reference), sample_rows=200)
    comparison, _ = gate.compare(_table(candidate))
    assert comparison.matched_rows == 100
    near = _signal(sequences.evidence_by_dimension(comparison), "near_duplicate_documents")
    # Compared at the reference's 600 documents: about (2/3)^2 of the pairs kept whole.
    assert near.value > near.reference_value + 0.08
    assert near.p_value < 1e-6
    assert "both at 600" in near.sentence
    report = gate.check(_table(candidate))
    assert report.collapsed
    assert "near_duplicate_documents" in [s.name for s in report.diversity.firing]


def test_truncated_vocabulary_loses_rare_vocabulary(paragraphs):
    half = len(paragraphs) // 2
    reference = paragraphs[:half]
    counts = Counter(w.lower() for doc in reference for w in doc.split())
    common = {w for w, _ in counts.most_common(300)}
    candidate = [
        " ".join(w for w in doc.split() if w.lower() in common) or "the"
        for doc in paragraphs[half:]
    ]
    evidence = _evidence(reference, candidate)
    rare = _signal(evidence, "rare_vocabulary")
    assert rare.value / rare.reference_value < 0.3
    assert {"rare_vocabulary", "type_token_ratio"} <= _firing(evidence)
    assert "rare vocabulary" in rare.sentence and "never used:" in rare.sentence


def test_low_temperature_text_is_more_predictable(paragraphs):
    """Greedy bigram text (each word followed by its most frequent successor) is what a
    language model sampled cold writes: the bigram log-likelihood rises."""
    half = len(paragraphs) // 2
    reference = paragraphs[:half]
    successors: dict[str, Counter] = {}
    for doc in reference:
        words = doc.lower().split()
        for a, b in itertools.pairwise(words):
            successors.setdefault(a, Counter())[b] += 1
    rng = np.random.default_rng(2)
    starts = [doc.lower().split()[0] for doc in paragraphs[half:]]
    candidate = []
    for start in starts:
        words = [start]
        for _ in range(int(rng.integers(15, 60))):
            options = successors.get(words[-1])
            if not options:
                break
            top = options.most_common(3)
            words.append(top[int(rng.integers(len(top)))][0])
        candidate.append(" ".join(words))
    evidence = _evidence(reference, candidate)
    likelihood = _signal(evidence, "ngram_log_likelihood")
    assert likelihood.value > likelihood.reference_value + 0.5
    assert {"ngram_log_likelihood", "distinct_3", "repeated_ngrams"} <= _firing(evidence)


def test_documents_from_a_bigram_model_in_the_mix_fail_the_kernel_test(paragraphs):
    """30% of the candidate's documents written by a bigram model of the candidate's
    own real text (one generation of the recursive setup): the kernel two-sample test,
    which uses every document, finds them; a real split of the same size does not."""
    reference, real = paragraphs[:500], paragraphs[500:1000]
    successors: dict[str, list[str]] = {}
    for doc in real:
        for a, b in itertools.pairwise(doc.split()):
            successors.setdefault(a, []).append(b)
    rng = np.random.default_rng(4)
    generated = []
    for doc in real[:150]:
        words = [doc.split()[0]]
        while len(words) < len(doc.split()) and successors.get(words[-1]):
            options = successors[words[-1]]
            words.append(options[int(rng.integers(len(options)))])
        generated.append(" ".join(words))
    mixed = _signal(_evidence(reference, generated + real[150:]), "text_mmd")
    assert mixed.p_value <= 0.001 and mixed.effect > mixed.tolerance
    clean = _signal(_evidence(reference, real), "text_mmd")
    assert clean.p_value > 0.01


def test_signals_join_their_dimensions_and_the_classifier_sees_text(paragraphs):
    half = len(paragraphs) // 2
    gate = CollapseGate(reference=_table(paragraphs[:half]))
    comparison, _ = gate.compare(_table(paragraphs[half:]))
    evidence, diversity = run_dimensions(comparison)
    by_name = {e.name: e for e in evidence}
    assert {s.name for s in by_name["entropy_stability"].signals} >= {"unigram_entropy"}
    assert {s.name for s in diversity.signals} >= {"repeated_ngrams", "compression_ratio"}
    assert by_name["generalization_gap"].not_run is None
    assert comparison.encoder.width == sequences.FEATURE_BUCKETS + 1


def test_same_seed_same_report(paragraphs):
    reference, candidate = _table(paragraphs[:400]), _table(paragraphs[400:800])
    first = CollapseGate(reference=reference, seed=3).check(candidate).to_dict()
    second = CollapseGate(reference=reference, seed=3).check(candidate).to_dict()
    for report in (first, second):
        report.pop("seconds")
    assert first == second


@pytest.mark.parametrize("parts", [2, 3])
def test_sequence_state_merge_equals_whole(paragraphs, parts):
    table = _table(paragraphs[:600])
    roles = {"text": ColumnRole.TEXT}
    whole = Profile(roles)
    whole.update(table.to_batches()[0])
    pieces = []
    for chunk in np.array_split(np.arange(600), parts):
        piece = Profile(roles)
        piece.update(table.take(pa.array(chunk)).combine_chunks().to_batches()[0])
        pieces.append(piece)
    merged = pieces[0]
    for piece in pieces[1:]:
        merged = merged.merge(piece)
    a, b = whole.states["text"].sequence, merged.states["text"].sequence
    assert a.vocabulary.ids.tolist() == b.vocabulary.ids.tolist()
    assert a.vocabulary.counts.tolist() == b.vocabulary.counts.tolist()
    assert (a.repeated, a.ngrams) == (b.repeated, b.ngrams)
    assert a.result() == pytest.approx(b.result()) or a.result() == b.result()
    restored = Profile.from_bytes(merged.to_bytes())
    assert restored.result() == merged.result()


def test_vocabulary_capacity_keeps_the_frequent_and_says_so():
    from collapse_callbacks.profile.sequences import VocabularyCounts

    counts = VocabularyCounts(capacity=3)
    counts.update(np.array([1, 1, 1, 2, 2, 3, 4, 5]))
    assert counts.ids.tolist()[:2] == [1, 2] and len(counts.ids) == 3
    assert not counts.exact and counts.total == 8


def test_token_columns_from_a_dataloader_ignore_padding(paragraphs):
    torch = pytest.importorskip("torch")
    vocabulary: dict[str, int] = {"<pad>": 0}
    encoded = []
    for doc in paragraphs[:300]:
        encoded.append([vocabulary.setdefault(w.lower(), len(vocabulary)) for w in doc.split()])

    def loader(pad_to: int):
        rows = []
        for ids in encoded:
            ids = ids[:pad_to]
            rows.append(
                {
                    "input_ids": torch.tensor(ids + [0] * (pad_to - len(ids))),
                    "attention_mask": torch.tensor([1] * len(ids) + [0] * (pad_to - len(ids))),
                }
            )
        return torch.utils.data.DataLoader(rows, batch_size=32)

    narrow = Profile({"input_ids": ColumnRole.TOKENS})
    wide = Profile({"input_ids": ColumnRole.TOKENS})
    from collapse_callbacks.data.source import open_source

    for profile, pad_to in ((narrow, 400), (wide, 600)):
        for batch in open_source(loader(pad_to)):
            profile.update(batch)
    a, b = narrow.states["input_ids"].sequence, wide.states["input_ids"].sequence
    assert a.vocabulary.counts.tolist() == b.vocabulary.counts.tolist()
    assert 0 not in a.vocabulary.ids.tolist()


def test_without_a_reference_looping_text_fails_and_real_text_passes(paragraphs):
    real = CollapseGate(None).check(_table(paragraphs[:500]))
    assert not real.collapsed
    looping = [" ".join([" ".join(doc.split()[:6])] * 5) for doc in paragraphs[:500]]
    report = CollapseGate(None).check(_table(looping))
    assert report.collapsed and report.reference_free
    assert any("trigrams repeat" in r for r in report.reasons)


def test_documents_repeating_their_lines_fail_repeated_lines(paragraphs):
    half = len(paragraphs) // 2
    as_lines = ["\n".join(re.split(r"(?<=[.:]) ", doc)) for doc in paragraphs]
    looping = ["\n".join([doc.splitlines()[0]] * 3 + [doc]) for doc in as_lines[half:]]
    evidence = _evidence(as_lines[:half], looping)
    lines = _signal(evidence, "repeated_lines")
    assert lines.value > 0.3 and lines.reference_value < 0.05
    assert "repeated_lines" in _firing(evidence)


def test_bad_sequence_inputs_get_clear_errors_or_documented_handling(paragraphs):
    from collapse_callbacks.data.tensors import arrays_to_batch
    from collapse_callbacks.errors import DataError, UnsupportedBatchError

    # Ragged token lists without padding and a mask: refused, saying what to do.
    with pytest.raises(UnsupportedBatchError, match="pad token sequences"):
        arrays_to_batch({"input_ids": [[5, 6, 7], [8, 9]]})
    # A string that is not valid Unicode (a lone surrogate from a bad decode).
    with pytest.raises(DataError, match="not valid Unicode"):
        arrays_to_batch({"text": ["fine", "broken \udcff"]})
    # Empty strings are documents without words: a candidate of them repeats itself.
    report = CollapseGate(reference=_table(paragraphs[:400])).check(_table([""] * 200))
    assert report.collapsed
    assert any("repeat an earlier row" in r for r in report.reasons)


def test_invalid_utf8_in_a_file_is_a_data_error(paragraphs, tmp_path):
    from collapse_callbacks.errors import DataError

    bad = tmp_path / "bad.csv"
    bad.write_bytes(
        b"text\n"
        + "\n".join(paragraphs[:50]).encode().replace(b",", b" ")
        + b"\nbroken \xff\xfe bytes\n"
    )
    with pytest.raises(DataError, match="not valid UTF-8"):
        CollapseGate(reference=_table(paragraphs[:400])).check(str(bad))
