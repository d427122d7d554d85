"""Whole-data duplicate tests: calibrated on real splits, and what they see that a sample misses.

Part 1, calibration: disjoint random splits of real tables that hold repeated rows
(fair, randhie, diamonds), candidate and reference of several sizes and size ratios;
the share of splits whose ``duplicate_rate`` / ``near_duplicate_rate`` test reads
p < 0.01 and p < 0.05 (1% and 5% when calibrated). The states are the streaming
pass's (``DuplicateState``) with a small capacity, so the larger sides are
hash-sampled as they are on big data.

Part 2 and 3, detection: flights candidates in which a share of the rows are replaced by
copies of other candidate rows (a pipeline that repeats data), against a real
reference of the same size. The whole-data test is printed next to the same test on a
10,000-row uniform sample of each side (the most rows the gate's sample-based
statistics compare), which keeps a repeated pair whole only with the square of its
sampling rate. Part 3 does the same with near copies of documents (one word dropped)
in the KJV, against the matched-part sample the text statistics compare.

    .venv/bin/python -m benchmarks.quality.duplicate_calibration
"""

from __future__ import annotations

import argparse

import numpy as np
import pyarrow as pa

from collapse_callbacks.data.roles import ColumnRole
from collapse_callbacks.dimensions.duplicates import compare_duplicates
from collapse_callbacks.profile.minhash import DocumentDuplicates
from collapse_callbacks.profile.rows import DuplicateState, row_hashes
from collapse_callbacks.profile.sequences import text_units
from collapse_callbacks.profile.table import NEAR_DUPLICATE_DIGITS

from . import datasets

SIZES = [(250, 1.0), (1000, 1.0), (1000, 4.0), (4000, 0.25), (2500, 1.0)]
SAMPLE_ROWS = 10_000
# The documents a side the sample-based text statistics compare: the matched parts,
# at most half the reference and ``SEQUENCE_ROWS``.
TEXT_SAMPLE = 2_000


def _hashes(name: str) -> dict[str, np.ndarray]:
    frame = datasets.load(name)
    table = pa.Table.from_pandas(frame, preserve_index=False).combine_chunks()
    roles = {
        column: ColumnRole.CATEGORICAL
        if str(frame[column].dtype) == "category"
        else ColumnRole.NUMERIC
        for column in frame.columns
    }
    batch = table.to_batches()[0]
    return {
        "exact": row_hashes(batch, roles, None),
        "near": row_hashes(batch, roles, NEAR_DUPLICATE_DIGITS),
    }


def _state(hashes: np.ndarray, capacity: int) -> DuplicateState:
    state = DuplicateState(capacity)
    for chunk in np.array_split(hashes, max(1, len(hashes) // 5000)):
        state.update(chunk)
    return state


def calibration(names: list[str], repeats: int, capacity: int, rng) -> None:
    print(f"Part 1: real splits, {repeats} per row; share of p < 0.01 / p < 0.05")
    print(f"{'dataset':10s} {'repeated':>8s} {'cand':>6s} {'ref':>6s}   exact        near")
    for name in names:
        hashes = _hashes(name)
        n = len(hashes["exact"])
        whole = 1.0 - len(np.unique(hashes["exact"])) / n
        sizes = [*SIZES, (n // 5, 1.0), (n // 5, 4.0), (n // 5, 0.25)]
        for candidate_rows, ratio in sizes:
            reference_rows = int(candidate_rows * ratio)
            if candidate_rows + reference_rows > n:
                continue
            shares = []
            for kind in ("exact", "near"):
                p = []
                for _ in range(repeats):
                    order = rng.permutation(n)
                    h = hashes[kind][order]
                    reference = _state(h[:reference_rows], capacity)
                    candidate = _state(
                        h[reference_rows : reference_rows + candidate_rows], capacity
                    )
                    p.append(compare_duplicates([reference], [candidate]).p_value)
                p = np.array(p)
                shares.append(f"{np.mean(p < 0.01):.3f}/{np.mean(p < 0.05):.3f}")
            print(
                f"{name:10s} {whole:8.1%} {candidate_rows:6d} {reference_rows:6d}   "
                + "  ".join(shares)
            )


def detection(repeats: int, rng) -> None:
    print(
        f"\nPart 2: flights, a share of the candidate's rows replaced by copies of its other "
        f"rows; detected at p < 0.01 and effect > 1 point, of {repeats}"
    )
    print(f"{'rows':>8s} {'copied':>7s}   whole data   {SAMPLE_ROWS:,}-row sample")
    hashes = _hashes("flights")["exact"]
    n = len(hashes)
    for rows in (20_000, 50_000, 100_000):
        for share in (0.02, 0.05, 0.10):
            hits = np.zeros(2, dtype=int)
            for _ in range(repeats):
                order = rng.permutation(n)
                reference, candidate = hashes[order[:rows]], hashes[order[rows : 2 * rows]].copy()
                copied = int(share * rows)
                candidate[:copied] = candidate[rng.integers(copied, rows, size=copied)]
                candidate = candidate[rng.permutation(rows)]
                for j, take in enumerate((rows, min(rows, SAMPLE_ROWS))):
                    test = compare_duplicates(
                        [_state(reference[:take], 1 << 18)], [_state(candidate[:take], 1 << 18)]
                    )
                    hits[j] += test.p_value < 0.01 and test.effect > 0.01
            print(f"{rows:8d} {share:7.0%}   {hits[0] / repeats:10.2f}   {hits[1] / repeats:10.2f}")


def _document_state(docs: list[str]) -> DocumentDuplicates:
    state = DocumentDuplicates()
    for start in range(0, len(docs), 4096):
        state.update(text_units(pa.array(docs[start : start + 4096], pa.string())))
    return state


def near_copies(repeats: int, rng) -> None:
    print(
        f"\nPart 3: the KJV (3-verse documents), a share of the candidate's documents "
        f"replaced by near copies of its others (one word dropped); "
        f"near_duplicate_documents detected at p < 0.01 and effect > 2 points, of {repeats}"
    )
    print(
        f"{'documents':>9s} {'copied':>7s}   whole data   matched-part sample (half, <= {TEXT_SAMPLE:,})"
    )
    from .text import corpora

    docs = corpora.load("bible")
    n = len(docs)
    for rows in (2_000, 5_000):
        for share in (0.05, 0.10, 0.20):
            hits = np.zeros(2, dtype=int)
            for _ in range(repeats):
                order = rng.permutation(n)
                reference = [docs[i] for i in order[:rows]]
                candidate = [docs[i] for i in order[rows : 2 * rows]]
                copied = int(share * rows)
                for i in range(copied):
                    words = candidate[int(rng.integers(copied, rows))].split()
                    drop = int(rng.integers(len(words)))
                    candidate[i] = " ".join(words[:drop] + words[drop + 1 :])
                candidate = [candidate[i] for i in rng.permutation(rows)]
                for j, take in enumerate((rows, min(rows // 2, TEXT_SAMPLE))):
                    test = compare_duplicates(
                        _document_state(reference[:take]).bands,
                        _document_state(candidate[:take]).bands,
                    )
                    hits[j] += test.p_value < 0.01 and test.effect > 0.02
            print(f"{rows:9d} {share:7.0%}   {hits[0] / repeats:10.2f}   {hits[1] / repeats:10.2f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="fair,randhie,diamonds")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--detection-repeats", type=int, default=20)
    parser.add_argument("--capacity", type=int, default=4096, help="hashes kept per state")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    calibration(args.datasets.split(","), args.repeats, args.capacity, rng)
    detection(args.detection_repeats, rng)
    near_copies(args.detection_repeats, rng)


if __name__ == "__main__":
    main()
