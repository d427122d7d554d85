"""Tokens per second of the gate's profile pass on token ids and on raw text, next to
the plainest useful pass over the same data.

What it shows: what profiling a token stream or a text column costs compared with
counting it. Data: the King James Bible (Debian ``bible-kjv`` + ``bible-kjv-text``,
the documents of ``benchmarks/quality/text/corpora.py``: three verses of one chapter),
whitespace words mapped to ids by a frequency-ordered vocabulary (0 and 1 reserved, as
for padding and unknown), the corpus repeated until it holds ``--tokens`` tokens
(default 10M; the Bible is ~0.8M words). Written once to ``benchmarks/perf/_data/``
(gitignored) as Parquet, reused when present:

- ``text_tokens_<N>.parquet``: a ``list<int64>`` column ``input_ids``, one document a row;
- ``text_docs_<N>.parquet``: a string column ``text``, the same documents.

Both passes of a pair run on the same in-memory RecordBatches (``--batch-rows`` rows
each), read from the file once before timing, so the numbers are compute only:

- tokens: ``Profile({"input_ids": TOKENS}, sample_rows=20000).update(batch)`` over every
  batch, then ``.result()`` -- vs -- ``numpy.bincount`` of the flat ids (Arrow buffer,
  no copy), accumulated over the batches;
- text: ``Profile({"text": TEXT}, sample_rows=20000)`` the same way -- vs -- ``str.split()``
  of every document into one ``collections.Counter``.

Tokens per second counts whitespace words in both cases (ids for the token stream).
The ratio is profile time / plain time. Note: the repeated corpus is every document
``--tokens / 0.8M`` times over, which the duplicate statistics see as duplicates.

Run: ``.venv/bin/python benchmarks/perf/text_throughput.py [--tokens 10000000]``
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "_data"
SAMPLE_ROWS = 20_000
ROW_GROUP = 50_000


def _documents() -> list[str]:
    sys.path.insert(0, str(ROOT))
    from benchmarks.quality.text.corpora import load_bible

    return load_bible()


def write_files(tokens: int) -> tuple[Path, Path]:
    DATA.mkdir(parents=True, exist_ok=True)
    token_path = DATA / f"text_tokens_{tokens}.parquet"
    text_path = DATA / f"text_docs_{tokens}.parquet"
    if token_path.exists() and text_path.exists():
        return token_path, text_path
    docs = _documents()
    counts = Counter(t for d in docs for t in d.split())
    vocab = {w: i + 2 for i, (w, _) in enumerate(sorted(counts.items(), key=lambda x: -x[1]))}
    ids = [np.array([vocab[t] for t in d.split()], dtype=np.int64) for d in docs]
    per_pass = sum(len(x) for x in ids)
    repeats = max(1, -(-tokens // per_pass))
    token_schema = pa.schema([("input_ids", pa.list_(pa.int64()))])
    text_schema = pa.schema([("text", pa.string())])
    lengths = np.array([len(x) for x in ids])
    offsets = np.r_[0, np.cumsum(lengths)].astype(np.int32)
    flat = pa.array(np.concatenate(ids))
    token_block = pa.ListArray.from_arrays(pa.array(offsets), flat)
    text_block = pa.array(docs, pa.string())
    with (
        pq.ParquetWriter(token_path, token_schema) as tw,
        pq.ParquetWriter(text_path, text_schema) as xw,
    ):
        for _ in range(repeats):
            tw.write_table(pa.table({"input_ids": token_block}), row_group_size=ROW_GROUP)
            xw.write_table(pa.table({"text": text_block}), row_group_size=ROW_GROUP)
    return token_path, text_path


def batches(path: Path, batch_rows: int) -> list[pa.RecordBatch]:
    return list(pq.ParquetFile(path).iter_batches(batch_size=batch_rows))


def time_profile(batches_: list[pa.RecordBatch], column: str, role) -> float:
    from collapse_callbacks.profile.table import Profile

    start = time.perf_counter()
    profile = Profile({column: role}, sample_rows=SAMPLE_ROWS)
    for batch in batches_:
        profile.update(batch)
    profile.result()
    return time.perf_counter() - start


def time_bincount(batches_: list[pa.RecordBatch]) -> tuple[float, int]:
    start = time.perf_counter()
    total = np.zeros(0, dtype=np.int64)
    for batch in batches_:
        flat = batch.column("input_ids").flatten().to_numpy(zero_copy_only=True)
        counts = np.bincount(flat)
        if len(counts) > len(total):
            counts[: len(total)] += total
            total = counts
        else:
            total[: len(counts)] += counts
    return time.perf_counter() - start, int(total.sum())


def time_split_counter(batches_: list[pa.RecordBatch]) -> tuple[float, int]:
    start = time.perf_counter()
    counter: Counter = Counter()
    for batch in batches_:
        for document in batch.column("text").to_pylist():
            counter.update(document.split())
    return time.perf_counter() - start, sum(counter.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=10_000_000)
    parser.add_argument("--batch-rows", type=int, default=8192)
    args = parser.parse_args(argv)

    from collapse_callbacks.data.roles import ColumnRole

    token_path, text_path = write_files(args.tokens)
    rows = []
    token_batches = batches(token_path, args.batch_rows)
    plain_s, n_tokens = time_bincount(token_batches)
    profile_s = time_profile(token_batches, "input_ids", ColumnRole.TOKENS)
    rows.append(("input_ids (list<int64>)", "np.bincount", n_tokens, profile_s, plain_s))
    del token_batches
    text_batches = batches(text_path, args.batch_rows)
    plain_s, n_words = time_split_counter(text_batches)
    profile_s = time_profile(text_batches, "text", ColumnRole.TEXT)
    rows.append(("text (string)", "split + Counter", n_words, profile_s, plain_s))

    docs = pq.ParquetFile(token_path).metadata.num_rows
    print(f"{docs:,} documents, batches of {args.batch_rows:,} rows, sample_rows={SAMPLE_ROWS}")
    header = ("column", "plain pass", "tokens", "profile tok/s", "plain tok/s", "ratio")
    table = [header]
    for column, plain, n, profile_s, plain_s in rows:
        table.append(
            (
                column,
                plain,
                f"{n:,}",
                f"{n / profile_s:,.0f}",
                f"{n / plain_s:,.0f}",
                f"{profile_s / plain_s:.1f}x",
            )
        )
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for i, row in enumerate(table):
        print(
            "  ".join(
                c.ljust(w) if j < 2 else c.rjust(w)
                for j, (c, w) in enumerate(zip(row, widths, strict=True))
            ).rstrip()
        )
        if i == 0:
            print("  ".join("-" * w for w in widths))
    print("ratio = profile seconds / plain seconds (same batches, in memory, one thread)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
