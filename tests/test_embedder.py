"""The embedder hook: the user's own encoder, built here in code (a bag of hashed words
through a fixed random projection and a nonlinearity), feeds the classifier test and
the distance-based statistics; nothing is downloaded."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pyarrow as pa
import pytest

from collapse_callbacks import CollapseGate, DataError
from collapse_callbacks.dimensions.features import EmbedderFeatures


@pytest.fixture(scope="module")
def paragraphs() -> list[str]:
    from pydoc_data.topics import topics

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


class BagOfWordsEncoder:
    """Counts how often the encoder is called and on how many rows."""

    def __init__(self, dimensions: int = 96, buckets: int = 2048) -> None:
        rng = np.random.default_rng(7)
        self.weights = rng.standard_normal((buckets, dimensions)) / np.sqrt(dimensions)
        self.buckets = buckets
        self.rows = 0

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.rows += len(texts)
        counts = np.zeros((len(texts), self.buckets))
        for i, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                counts[i, sum(map(ord, word)) * 31 % self.buckets] += 1
        counts /= np.maximum(counts.sum(axis=1, keepdims=True), 1)
        return np.tanh(counts @ self.weights * 4)


def _table(docs):
    return pa.table({"text": pa.array(docs, pa.string())})


def test_the_embedder_replaces_hashed_ngrams_in_the_encoding(paragraphs):
    encoder = BagOfWordsEncoder()
    half = len(paragraphs) // 2
    gate = CollapseGate(reference=_table(paragraphs[:half]), embedder=encoder)
    comparison, _ = gate.compare(_table(paragraphs[half:]))
    (block,) = comparison.encoder.blocks
    assert isinstance(block, EmbedderFeatures)
    assert block.width == 64  # 96 dimensions, projected
    assert encoder.rows == comparison.reference_view.rows + comparison.candidate_view.rows
    report = gate.judge(comparison, gate.align(gate._open(_table(paragraphs[half:]))))
    assert not report.collapsed, report.reasons


def test_the_classifier_on_embeddings_tells_narrowed_text(paragraphs):
    half = len(paragraphs) // 2
    reference = paragraphs[:half]
    common = {
        w for w, _ in Counter(w.lower() for d in reference for w in d.split()).most_common(200)
    }
    narrowed = [
        " ".join(w for w in d.split() if w.lower() in common) or "the" for d in paragraphs[half:]
    ]
    report = CollapseGate(
        reference=_table(reference), embedder={"text": BagOfWordsEncoder()}
    ).check(_table(narrowed))
    assert report.collapsed
    assert report.dimensions["generalization_gap"].status.value == "fail"


@pytest.mark.parametrize(
    ("embedder", "message"),
    [
        (lambda texts: np.zeros((len(texts) + 1, 4)), "must return \\[rows, dimensions\\]"),
        (lambda texts: np.full((len(texts), 4), np.nan), "NaN or infinite"),
        (lambda texts: 1 / 0, "the embedder failed: ZeroDivisionError"),
    ],
)
def test_a_bad_embedder_is_a_data_error(paragraphs, embedder, message):
    gate = CollapseGate(reference=_table(paragraphs[:300]), embedder=embedder)
    with pytest.raises(DataError, match=message):
        gate.check(_table(paragraphs[300:600]))
