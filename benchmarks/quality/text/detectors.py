"""Text detectors: ``name -> callable(case, alpha) -> Verdict``.

- ``collapse-gate``: ``CollapseGate(reference=table).check(table)`` on one-column
  ``pyarrow`` tables (``text``: one document per row). ``signals`` holds, for every
  dimension that ran (and ``diversity``), ``<dimension>`` -> status is ``fail``, and for
  every signal it computed ``<dimension>.<signal name>`` -> the signal fired, so the
  per-signal table can show which signal carries a detection.
- ``gate-tokens``: the same gate through ``torch.utils.data.DataLoader``\\ s of dict
  batches ``{"input_ids", "attention_mask"}``: int64 word ids (0 = padding, 1 = out of
  vocabulary, then by frequency), each batch padded to its longest document. Only on
  cases marked ``loader``. The vocabulary is built on the whole real corpus, like a
  tokenizer trained once on real text: built on the reference split alone, every word
  of a real candidate that the reference happens not to contain becomes the one OOV id
  the reference never has, and the gate rightly sees a different token distribution
  (real-vs-real splits flagged; the opt-in ``gate-tokens-refvocab`` shows it).
- ``mmd``: kernel two-sample test on hashed word 1-2 grams, implemented here (below).
- ``evidently``: Evidently's text drift (a domain classifier on the text column) in its
  own venv, through ``peer_evidently_text.py``.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter

import numpy as np

from ..peer_client import PeerProcess, _pump, peer_python
from ..verdict import Verdict
from . import corpora
from .cases import TextCase

DetectorFn = Callable[[TextCase, float], Verdict]
TEXT_COLUMN = "text"
LOADER_BATCH = 64
PAD, OOV = 0, 1

DESCRIPTIONS = {
    "collapse-gate": "collapse_callbacks.CollapseGate on a text column (pyarrow table)",
    "gate-tokens": "CollapseGate on DataLoaders of input_ids/attention_mask (loader cases only)",
    "gate-tokens-refvocab": "gate-tokens with the vocabulary of the reference split only",
    "mmd": "MMD, RBF kernel (median heuristic) on hashed word 1-2 grams, permutation p < alpha",
    "evidently": "Evidently text drift: domain classifier on the text column (its own verdict)",
}
DEFAULT = ("collapse-gate", "gate-tokens", "mmd", "evidently")


@dataclass(frozen=True)
class Detector:
    name: str
    description: str
    run: DetectorFn | None
    skipped: str | None = None
    loader_only: bool = False

    def applies(self, case: TextCase) -> bool:
        return case.loader or not self.loader_only

    def close(self) -> None:
        closer = getattr(self.run, "close", None)
        if closer is not None:
            closer()


# --------------------------------------------------------------------------- the gate


def _gate_verdict(report, seconds: float) -> Verdict:
    signals: dict[str, bool] = {}
    extras: dict[str, float] = {"gate_seconds": float(report.seconds)}
    results = {**report.dimensions, "diversity": report.diversity}
    for name, dim in results.items():
        status = getattr(dim.status, "value", dim.status)
        if status == "not run":
            continue
        signals[str(name)] = status == "fail"
        fired = {s.name for s in dim.firing}
        for signal in dim.signals:
            key = f"{name}.{signal.name}"
            signals[key] = signals.get(key, False) or signal.name in fired
        if getattr(dim, "p_value", None) is not None:
            extras[f"p:{name}"] = float(dim.p_value)
    return Verdict(
        collapsed=bool(report.collapsed),
        shift=None if report.shift is None else bool(report.shift),
        score=float(report.score),
        seconds=seconds,
        signals=signals,
        extras=extras,
    )


def collapse_gate(case: TextCase, alpha: float) -> Verdict:
    import pyarrow as pa

    from collapse_callbacks import CollapseGate

    reference = pa.table({TEXT_COLUMN: pa.array(case.reference, pa.string())})
    candidate = pa.table({TEXT_COLUMN: pa.array(case.candidate, pa.string())})
    start = perf_counter()
    report = CollapseGate(reference=reference, alpha=alpha, seed=case.seed).check(candidate)
    return _gate_verdict(report, perf_counter() - start)


def vocabulary(documents: list[str]) -> dict[str, int]:
    """Word -> id, by frequency in ``documents`` (ties by word), after PAD and OOV."""
    counts = Counter(t for d in documents for t in d.split())
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return {word: i + 2 for i, (word, _) in enumerate(ordered)}


def token_loader(documents: list[str], vocab: dict[str, int], batch_size: int = LOADER_BATCH):
    import torch
    from torch.utils.data import DataLoader

    ids = [
        torch.tensor([vocab.get(t, OOV) for t in d.split()] or [OOV], dtype=torch.int64)
        for d in documents
    ]

    def collate(items: list) -> dict:
        longest = max(len(x) for x in items)
        input_ids = torch.full((len(items), longest), PAD, dtype=torch.int64)
        mask = torch.zeros((len(items), longest), dtype=torch.int64)
        for row, x in enumerate(items):
            input_ids[row, : len(x)] = x
            mask[row, : len(x)] = 1
        return {"input_ids": input_ids, "attention_mask": mask}

    return DataLoader(ids, batch_size=batch_size, shuffle=False, collate_fn=collate)


_CORPUS_VOCAB: dict[str, dict[str, int]] = {}


def corpus_vocabulary(corpus: str) -> dict[str, int]:
    if corpus not in _CORPUS_VOCAB:
        _CORPUS_VOCAB[corpus] = vocabulary(corpora.load(corpus))
    return _CORPUS_VOCAB[corpus]


def gate_tokens(case: TextCase, alpha: float, vocab: dict[str, int] | None = None) -> Verdict:
    from collapse_callbacks import CollapseGate

    start = perf_counter()
    if vocab is None:
        vocab = corpus_vocabulary(case.dataset)
    reference = token_loader(case.reference, vocab)
    candidate = token_loader(case.candidate, vocab)
    report = CollapseGate(reference=reference, alpha=alpha, seed=case.seed).check(candidate)
    return _gate_verdict(report, perf_counter() - start)


def gate_tokens_refvocab(case: TextCase, alpha: float) -> Verdict:
    return gate_tokens(case, alpha, vocabulary(case.reference))


def _gate_import_error() -> str | None:
    try:
        from collapse_callbacks import CollapseGate  # noqa: F401
    except Exception as exc:
        return f"cannot import collapse_callbacks.CollapseGate ({type(exc).__name__}: {exc})"
    return None


# --------------------------------------------------------------------------- MMD

MMD_MAX_DOCS = 1000  # per side, drawn at random
MMD_PERMUTATIONS = 300
MMD_FEATURES = 2**18


def hashed_features(documents: list[str]):
    """Word 1-2 gram counts hashed to ``MMD_FEATURES`` columns, then tf-idf-ish:
    ``log(1 + count)`` times the smoothed idf of the pooled documents, rows L2-normed."""
    from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer

    counts = HashingVectorizer(
        ngram_range=(1, 2), n_features=MMD_FEATURES, alternate_sign=False, norm=None
    ).transform(documents)
    return TfidfTransformer(sublinear_tf=True, smooth_idf=True, norm="l2").fit_transform(counts)


def mmd_test(case: TextCase, alpha: float) -> Verdict:
    """Biased MMD^2 with an RBF kernel ``exp(-d^2 / (2 sigma^2))``, sigma the median
    pairwise distance of the pooled sample, p-value from ``MMD_PERMUTATIONS`` label
    permutations (``(1 + #{perm >= observed}) / (1 + permutations)``)."""
    start = perf_counter()
    rng = np.random.default_rng(case.seed)

    def draw(docs: list[str]) -> list[str]:
        if len(docs) <= MMD_MAX_DOCS:
            return docs
        return [docs[i] for i in rng.choice(len(docs), MMD_MAX_DOCS, replace=False)]

    x, y = draw(case.reference), draw(case.candidate)
    features = hashed_features(x + y)
    gram = (features @ features.T).toarray()
    # Rows are unit vectors, or zero for a document without a 2-letter word.
    norms = np.diag(gram)
    sq = np.maximum(norms[:, None] + norms[None, :] - 2.0 * gram, 0.0)
    off = sq[np.triu_indices_from(sq, k=1)]
    # sigma = the median pairwise distance, so sigma^2 = the median squared distance.
    sigma2 = float(np.median(off)) if np.any(off > 0) else 1.0
    kernel = np.exp(-sq / (2.0 * sigma2))
    n, m = len(x), len(y)
    labels = np.r_[np.full(n, 1.0 / n), np.full(m, -1.0 / m)]
    perms = np.stack([rng.permutation(labels) for _ in range(MMD_PERMUTATIONS)], axis=1)
    observed = float(labels @ kernel @ labels)
    null = np.einsum("ip,ip->p", perms, kernel @ perms)
    p_value = (1.0 + float(np.sum(null >= observed))) / (1.0 + MMD_PERMUTATIONS)
    return Verdict(
        collapsed=p_value < alpha,
        shift=None,
        score=None,
        seconds=perf_counter() - start,
        extras={"mmd2": observed, "p_value": p_value, "sigma": float(np.sqrt(sigma2))},
    )


# --------------------------------------------------------------------------- Evidently

RUNNER = Path(__file__).resolve().parent / "peer_evidently_text.py"


def write_text_case(folder: Path, case: TextCase, alpha: float) -> None:
    import pandas as pd

    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({TEXT_COLUMN: case.reference}).to_parquet(folder / "reference.parquet")
    pd.DataFrame({TEXT_COLUMN: case.candidate}).to_parquet(folder / "candidate.parquet")
    spec = {
        "alpha": alpha,
        "seed": case.seed,
        "numeric": [],
        "categorical": [],
        "text": [TEXT_COLUMN],
    }
    (folder / "case.json").write_text(json.dumps(spec))


@dataclass
class TextPeerProcess(PeerProcess):
    """``PeerProcess`` (one long-lived runner in the peer's venv, case folders over
    stdin) with a runner script of this folder and the text case format."""

    script: Path = RUNNER

    def __call__(self, case: TextCase, alpha: float) -> Verdict:  # type: ignore[override]
        folder = Path(tempfile.mkdtemp(prefix=f"quality-text-{self.peer}-"))
        try:
            write_text_case(folder, case, alpha)
            answer = self._ask(str(folder))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        if "error" in answer:
            raise RuntimeError(f"{self.peer}: {answer['error']}")
        return Verdict.from_dict(answer)

    def _ensure_started(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            return
        if self.log_path is not None:
            self._log = self.log_path.open("a")
        env = {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
        self._proc = subprocess.Popen(
            [str(peer_python(self.envs_dir, self.peer)), str(self.script), "--stdin"],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log if self._log is not None else subprocess.DEVNULL,
            text=True,
            bufsize=1,
        )
        self._lines = queue.Queue()
        threading.Thread(target=_pump, args=(self._proc.stdout, self._lines), daemon=True).start()


# --------------------------------------------------------------------------- registry

GATE_FNS: dict[str, DetectorFn] = {
    "collapse-gate": collapse_gate,
    "gate-tokens": gate_tokens,
    "gate-tokens-refvocab": gate_tokens_refvocab,
}


def build(names: list[str], envs_dir: Path, log_dir: Path | None = None) -> list[Detector]:
    if names == ["all"]:
        names = list(DEFAULT)
    detectors = []
    for name in names:
        if name not in DESCRIPTIONS:
            raise ValueError(
                f"unknown detector {name!r}; known: {', '.join(DESCRIPTIONS)}, or 'all'"
            )
        description = DESCRIPTIONS[name]
        if name in GATE_FNS:
            reason = _gate_import_error()
            fn = None if reason else GATE_FNS[name]
            loader_only = name != "collapse-gate"
            detectors.append(Detector(name, description, fn, reason, loader_only))
        elif name == "mmd":
            detectors.append(Detector(name, description, mmd_test))
        elif name == "evidently":
            python = peer_python(envs_dir, "evidently")
            if not python.exists():
                detectors.append(
                    Detector(
                        name,
                        description,
                        None,
                        f"no venv at {python.parent.parent}; run "
                        "benchmarks/quality/peers/setup.sh evidently",
                    )
                )
                continue
            log = None if log_dir is None else log_dir / "peer-evidently-text.log"
            detectors.append(
                Detector(name, description, TextPeerProcess("evidently", envs_dir, log_path=log))
            )
    return detectors
