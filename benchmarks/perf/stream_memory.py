"""Peak memory of profiling a Parquet file by streaming it, against reading it whole.

What it shows: the data layer (``open_source`` -> ``DataStream``) hands the profiler
bounded Arrow batches, so profiling a file of 4 million rows takes no more memory than
profiling one of 1 million. Reading the whole file with ``pyarrow.parquet.read_table``
and taking numpy means/stds, the obvious alternative, needs memory in proportion to rows.

How it works: Parquet files of each size in ``--rows`` (default 1,000,000 and 4,000,000)
are written to ``benchmarks/perf/_data/`` from a seeded numpy Generator, one row group
of ``--row-group`` rows at a time, so writing never holds a whole file either. The files
have 12 columns: 7 float (one with NaN, one with nulls, one float32), an int, a bool and
3 low-cardinality string categoricals (one with nulls). A file already there with the
same rows, seed and row group size is reused unless ``--regenerate``; without ``--keep``
the files this run wrote are deleted at the end.

Each measurement runs in a fresh Python process of its own, so each peak is measured
alone: one profiles the file with ``build_profile(stream, stream.roles).result()``, another
does the naive read. The parent imports only the standard library and writes the files
from a child too: on Linux a child's ``ru_maxrss`` starts at its parent's peak RSS
(``execve`` carries the high-water mark over), so a large parent would hide the children's
real peaks.

How to read the table:

* ``rows``, ``file MiB``: the file's size; ``read`` is the rows each way read back.
* ``base``: the child's RSS right after its imports (Python + pyarrow + numpy), in MiB.
* ``stream peak`` / ``naive peak``: the child's peak RSS (``ru_maxrss``), in MiB, imports
  included; ``s``: seconds from opening the file to the finished summary.
* The last line divides the peak at the largest size by the peak at the smallest: about
  1.0 for streaming (flat), growing with rows for the naive read. The line above it checks
  that both ways got the same mean and std for every numeric column.

Run: ``.venv/bin/python benchmarks/perf/stream_memory.py [--rows 1000000 4000000] [--keep]``
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "_data"
DEFAULT_ROWS = (1_000_000, 4_000_000)
ROW_GROUP_ROWS = 100_000
SEED = 20_240_601
FORMAT_VERSION = 1  # bump when the generated columns change, so old files are rewritten
METADATA_KEY = b"stream_memory"
MEAN_TOLERANCE = 1e-9


# -- children: each runs in a fresh interpreter and prints one JSON line ------------------


def _mib(n_bytes: float) -> float:
    return n_bytes / 2**20


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _rss_mib() -> float:
    import psutil

    return _mib(psutil.Process().memory_info().rss)


def _columns(rng, n: int) -> dict:
    """One row group's worth of the 12 benchmark columns."""
    import numpy as np
    import pyarrow as pa

    def labels(values: list[str], weights=None, null_share: float = 0.0) -> pa.Array:
        index = rng.choice(len(values), size=n, p=weights)
        mask = rng.random(n) < null_share if null_share else None
        return pa.array(values).take(pa.array(index.astype(np.int32), mask=mask))

    with_nan = rng.normal(5.0, 2.0, n)
    with_nan[rng.random(n) < 0.01] = np.nan
    regions = [f"region_{i:02d}" for i in range(24)]
    region_weights = 1.0 / np.arange(1, len(regions) + 1)
    return {
        "x_normal": rng.normal(0.0, 1.0, n),
        "x_uniform": rng.uniform(-1.0, 1.0, n),
        "x_lognormal": rng.lognormal(0.0, 1.0, n),
        "x_exponential": rng.exponential(2.0, n),
        "x_with_nan": with_nan,
        "x_nullable": pa.array(rng.normal(-3.0, 0.5, n), mask=rng.random(n) < 0.02),
        "x_float32": rng.normal(10.0, 3.0, n).astype(np.float32),
        "n_count": rng.poisson(4.0, n).astype(np.int64),
        "is_flag": rng.random(n) < 0.3,
        "c_color": labels(["red", "green", "blue", "cyan", "magenta", "yellow", "black", "white"]),
        "c_region": labels(regions, weights=region_weights / region_weights.sum()),
        "c_tier": labels(["bronze", "silver", "gold"], weights=[0.6, 0.3, 0.1], null_share=0.01),
    }


def child_generate(path: str, rows: int, seed: int, row_group: int, regenerate: bool) -> dict:
    """Write ``path`` unless a file with the same rows, seed and row groups is there."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    wanted = {"version": FORMAT_VERSION, "rows": rows, "seed": seed, "row_group": row_group}
    target = Path(path)
    if target.exists() and not regenerate:
        try:
            found = pq.ParquetFile(target).schema_arrow.metadata or {}
            if json.loads(found.get(METADATA_KEY, b"{}")) == wanted:
                return {"reused": True, "bytes": target.stat().st_size}
        except (pa.ArrowException, OSError, ValueError):
            pass  # unreadable or foreign: write it again
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    schema = None
    partial = target.with_name(target.name + ".partial")
    writer = None
    try:
        for start in range(0, rows, row_group):
            table = pa.table(_columns(rng, min(row_group, rows - start)))
            if writer is None:
                schema = table.schema.with_metadata({METADATA_KEY: json.dumps(wanted)})
                writer = pq.ParquetWriter(partial, schema, compression="snappy")
            writer.write_table(table.cast(schema), row_group_size=row_group)
    finally:
        if writer is not None:
            writer.close()
    os.replace(partial, target)
    return {
        "reused": False,
        "bytes": target.stat().st_size,
        "seconds": time.perf_counter() - started,
        "peak_mib": _peak_rss_mib(),
    }


def child_stream(path: str) -> dict:
    """Profile the file through the data layer, batch by batch."""
    from collapse_callbacks.data.roles import ColumnRole
    from collapse_callbacks.data.source import open_source
    from collapse_callbacks.profile.table import build_profile

    baseline = _rss_mib()
    started = time.perf_counter()
    stream = open_source(path)
    summary = build_profile(stream, stream.roles, source=path).result()
    seconds = time.perf_counter() - started
    moments = {
        name: [column.mean, column.std]
        for name, column in summary.columns.items()
        if column.role == ColumnRole.NUMERIC.value
    }
    return {
        "rows": summary.rows,
        "seconds": seconds,
        "baseline_mib": baseline,
        "peak_mib": _peak_rss_mib(),
        "moments": moments,
    }


def child_naive(path: str) -> dict:
    """Read the whole file into one Table, then numpy mean/std per numeric column."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    baseline = _rss_mib()
    started = time.perf_counter()
    table = pq.read_table(path)
    moments = {}
    for field in table.schema:
        if pa.types.is_floating(field.type) or pa.types.is_integer(field.type):
            values = np.asarray(table.column(field.name).to_numpy(), dtype=np.float64)
            moments[field.name] = [float(np.nanmean(values)), float(np.nanstd(values, ddof=1))]
    seconds = time.perf_counter() - started
    return {
        "rows": table.num_rows,
        "seconds": seconds,
        "baseline_mib": baseline,
        "peak_mib": _peak_rss_mib(),
        "moments": moments,
        "pyarrow": pa.__version__,
        "numpy": np.__version__,
    }


def run_child(*args: str, timeout: float | None) -> dict:
    """This script in a fresh interpreter, ``--child args...``; its JSON answer."""
    command = [sys.executable, os.path.abspath(__file__), "--child", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise SystemExit(
            f"child {' '.join(args)} failed with exit code {done.returncode}:\n{done.stderr}"
        )
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- parent: standard library only --------------------------------------------------------


def _moments_disagree(stream: dict, naive: dict) -> list[str]:
    problems = []
    for name in sorted(set(stream) | set(naive)):
        if name not in stream or name not in naive:
            problems.append(f"{name}: only in {'streaming' if name in stream else 'naive'}")
            continue
        (mean_a, std_a), (mean_b, std_b) = stream[name], naive[name]
        scale = max(1.0, abs(mean_b), std_b)
        if not (
            math.isclose(mean_a, mean_b, rel_tol=0, abs_tol=MEAN_TOLERANCE * scale)
            and math.isclose(std_a, std_b, rel_tol=MEAN_TOLERANCE)
        ):
            problems.append(f"{name}: mean/std {mean_a}/{std_a} vs {mean_b}/{std_b}")
    return problems


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(line[i]) for line in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.rjust(width) for cell, width in zip(line, widths)) for line in rows]
    top = "  ".join(cell.rjust(width) for cell, width in zip(header, widths))
    return "\n".join([top, "-" * len(top), *lines])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument(
        "--rows",
        type=int,
        nargs="+",
        default=list(DEFAULT_ROWS),
        metavar="N",
        help="file sizes in rows (default: %(default)s)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the files in _data/ for the next run"
    )
    parser.add_argument(
        "--regenerate", action="store_true", help="rewrite the files even if they exist"
    )
    parser.add_argument(
        "--row-group", type=int, default=ROW_GROUP_ROWS, help="rows per Parquet row group"
    )
    parser.add_argument("--seed", type=int, default=SEED, help="seed of the numpy Generator")
    parser.add_argument(
        "--timeout", type=float, default=3600.0, help="seconds allowed to each child process"
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is None and (min(args.rows) < 1 or args.row_group < 1):
        parser.error("--rows and --row-group must be positive")
    return args


def run_child_mode(args: list[str]) -> None:
    mode, path, *rest = args
    if mode == "generate":
        rows, seed, row_group, regenerate = rest
        answer = child_generate(path, int(rows), int(seed), int(row_group), regenerate == "1")
    elif mode == "stream":
        answer = child_stream(path)
    elif mode == "naive":
        answer = child_naive(path)
    else:
        raise SystemExit(f"unknown child mode {mode!r}")
    print(json.dumps(answer))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child is not None:
        run_child_mode(args.child)
        return 0

    sizes = sorted(set(args.rows))
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    results = []
    try:
        for rows in sizes:
            path = DATA_DIR / f"stream_{rows}.parquet"
            made = run_child(
                "generate",
                str(path),
                str(rows),
                str(args.seed),
                str(args.row_group),
                "1" if args.regenerate else "0",
                timeout=args.timeout,
            )
            how = "reused" if made["reused"] else f"written in {made['seconds']:.1f} s"
            if not made["reused"]:
                written.append(path)
            print(f"{path.name}: {rows:,} rows, {_mib(made['bytes']):.1f} MiB, {how}", flush=True)
            stream = run_child("stream", str(path), timeout=args.timeout)
            print(f"  streaming: {stream['seconds']:.1f} s", flush=True)
            naive = run_child("naive", str(path), timeout=args.timeout)
            print(f"  naive read_table: {naive['seconds']:.1f} s", flush=True)
            results.append((rows, made["bytes"], stream, naive))
    finally:
        if not args.keep:
            for path in written:
                path.unlink(missing_ok=True)

    naive0 = results[0][3]
    print()
    print(
        f"Python {sys.version.split()[0]}, pyarrow {naive0['pyarrow']}, numpy {naive0['numpy']}, "
        f"{os.cpu_count()} CPUs; parent peak RSS {_peak_rss_mib():.0f} MiB "
        "(a child's peak cannot read lower)"
    )
    header = ["rows", "file MiB", "read", "base", "stream peak", "s", "base", "naive peak", "s"]
    lines = []
    problems = []
    for rows, size, stream, naive in results:
        lines.append(
            [
                f"{rows:,}",
                f"{_mib(size):.1f}",
                f"{stream['rows']:,}" if stream["rows"] == naive["rows"] else "MISMATCH",
                f"{stream['baseline_mib']:.0f}",
                f"{stream['peak_mib']:.0f}",
                f"{stream['seconds']:.1f}",
                f"{naive['baseline_mib']:.0f}",
                f"{naive['peak_mib']:.0f}",
                f"{naive['seconds']:.1f}",
            ]
        )
        if stream["rows"] != rows or naive["rows"] != rows:
            problems.append(
                f"{rows:,} rows: streaming read {stream['rows']}, naive {naive['rows']}"
            )
        problems += [
            f"{rows:,} rows: {p}" for p in _moments_disagree(stream["moments"], naive["moments"])
        ]
    print(_table(lines, header))
    print()
    if problems:
        print("streaming and naive DISAGREE:\n  " + "\n  ".join(problems))
    else:
        numeric = len(results[0][2]["moments"])
        print(f"rows read, and mean/std of {numeric} numeric columns, agree between both ways")
    if len(results) > 1:
        (small, _, stream_s, naive_s), (large, _, stream_l, naive_l) = results[0], results[-1]
        print(
            f"peak RSS ratio {large:,} / {small:,} rows: "
            f"streaming {stream_l['peak_mib'] / stream_s['peak_mib']:.2f}x (target ~1.0, flat); "
            f"naive read_table {naive_l['peak_mib'] / naive_s['peak_mib']:.2f}x (grows with rows)"
        )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
