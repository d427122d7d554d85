"""A tokenizer makes the gate token-aware: special tokens never count, tokens are named
as text, ids beyond the vocabulary are refused. The tokenizer is built in code (a
word-level vocabulary of real text); nothing is downloaded."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

pytest.importorskip("transformers")

from collapse_callbacks import CollapseGate, DataError


@pytest.fixture(scope="module")
def documents() -> list[list[str]]:
    from pydoc_data.topics import topics

    docs = [
        re.findall(r"[a-z]+", p.lower())
        for text in topics.values()
        for p in re.split(r"\n\s*\n", text)
        if len(p.split()) >= 12
    ]
    order = np.random.default_rng(0).permutation(len(docs))
    return [docs[i] for i in order]


@pytest.fixture(scope="module")
def tokenizer(documents, tmp_path_factory):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    counts = Counter(w for doc in documents for w in doc)
    vocabulary = {"[PAD]": 0, "[UNK]": 1, "[BOS]": 2, "[EOS]": 3}
    for word, _ in counts.most_common(3000):
        vocabulary[word] = len(vocabulary)
    model = Tokenizer(models.WordLevel(vocabulary, unk_token="[UNK]"))
    model.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=model,
        pad_token="[PAD]",
        unk_token="[UNK]",
        bos_token="[BOS]",
        eos_token="[EOS]",
    )
    folder = tmp_path_factory.mktemp("tokenizer")
    tok.save_pretrained(folder)
    tok.saved_to = folder
    return tok


def _tokens(tokenizer, docs: list[list[str]]) -> pa.Table:
    # Every sequence framed by BOS/EOS, as a causal-LM collator would.
    ids = [
        [tokenizer.bos_token_id, *tokenizer.convert_tokens_to_ids(doc), tokenizer.eos_token_id]
        for doc in docs
    ]
    return pa.table({"input_ids": pa.array(ids, pa.large_list(pa.int64()))})


def test_special_tokens_never_count_and_tokens_are_named(documents, tokenizer):
    half = len(documents) // 2
    reference = _tokens(tokenizer, documents[:half])
    common = set(tokenizer.convert_ids_to_tokens(list(range(4, 304))))
    narrowed = [[w for w in doc if w in common] or ["the"] for doc in documents[half:]]
    gate = CollapseGate(reference=reference, tokenizer=tokenizer)
    report = gate.check(_tokens(tokenizer, narrowed))
    assert report.collapsed
    profile = gate._reference_profile[1]
    units = profile.states["input_ids"].sequence.vocabulary.ids
    assert not set(units.tolist()) & {0, 1, 2, 3}  # BOS/EOS/PAD/UNK are not content
    rare = [s for d in report.dimensions.values() for s in d.signals if s.name == "rare_vocabulary"]
    assert rare and "never used: '" in rare[0].sentence
    assert "#" not in rare[0].sentence.split("never used:")[1]  # words, not ids


def test_an_id_beyond_the_vocabulary_is_a_data_error(documents, tokenizer):
    reference = _tokens(tokenizer, documents[:300])
    bad = pa.table(
        {"input_ids": pa.array([[5, 6, len(tokenizer) + 7]] * 50, pa.large_list(pa.int64()))}
    )
    with pytest.raises(DataError, match="beyond the tokenizer's vocabulary"):
        CollapseGate(reference=reference, tokenizer=tokenizer).check(bad)


def test_cli_tokenizer_option(documents, tokenizer, tmp_path):
    reference, candidate = tmp_path / "ref.parquet", tmp_path / "cand.parquet"
    pq.write_table(_tokens(tokenizer, documents[:600]), reference)
    pq.write_table(_tokens(tokenizer, documents[600:1200]), candidate)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "collapse_callbacks",
            "check",
            str(reference),
            str(candidate),
            "--tokenizer",
            str(tokenizer.saved_to),
            "--json",
            "-",
            "--quiet",
        ],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["collapsed"] is False
    missing = subprocess.run(
        [
            sys.executable,
            "-m",
            "collapse_callbacks",
            "check",
            str(reference),
            str(candidate),
            "--tokenizer",
            str(tmp_path / "nowhere"),
            "--quiet",
        ],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2
    assert "cannot load a tokenizer" in missing.stderr and "Traceback" not in missing.stderr
