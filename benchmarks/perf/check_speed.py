"""Time and peak memory of ``collapse-gate check`` against a plain read of the same file.

What it shows: the cost of the whole gate (reading, profiling, every dimension, the
verdict) on a multi-million-row, 30-column Parquet candidate, next to the cheapest
useful thing one can do with that file: ``pyarrow.parquet.read_table`` plus a numpy
mean and std of every numeric column. Target (issue 3): the check costs at most 4x the
plain read at 5M rows, and its peak RSS does not grow with rows.

Files: a 200,000-row reference and candidates of each size in ``--rows``, written from a
seeded generator a row group at a time into ``benchmarks/perf/_data/`` (gitignored),
reused when present. 24 float columns (correlated through 4 latent factors, two with
missing values), 3 integer columns and 3 categorical columns.

Each measurement runs in its own fresh process (so each peak RSS is its own) and the
two are run back to back on the same machine: compare the ratio, not the seconds.

Run: ``.venv/bin/python benchmarks/perf/check_speed.py [--rows 1000000 5000000]``
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

DATA = Path(__file__).resolve().parent / "_data"
REFERENCE_ROWS = 200_000
ROW_GROUP = 250_000


def write_table(path: Path, rows: int, seed: int) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    loadings = np.random.default_rng(0).normal(size=(4, 24))
    writer = None
    for start in range(0, rows, ROW_GROUP):
        n = min(ROW_GROUP, rows - start)
        factors = rng.normal(size=(n, 4))
        floats = factors @ loadings + rng.normal(size=(n, 24))
        floats[rng.random(n) < 0.02, 3] = np.nan
        columns = {f"f{i}": floats[:, i] for i in range(24)}
        columns["f5"] = pa.array(floats[:, 5], mask=rng.random(n) < 0.01)
        for i in range(3):
            columns[f"i{i}"] = rng.poisson(3 + 2 * i, size=n)
        for i, levels in enumerate((4, 12, 40)):
            weights = 1 / np.arange(1, levels + 1)
            columns[f"c{i}"] = pa.array(
                [f"level_{k}" for k in rng.choice(levels, n, p=weights / weights.sum())]
            )
        table = pa.table(columns)
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    writer.close()


def child(mode: str, reference: str, candidate: str) -> None:
    started = time.perf_counter()
    if mode == "check":
        from collapse_callbacks.cli import main

        code = main(["check", reference, candidate, "--quiet", "--json", "/dev/null"])
        extra = {"exit": code}
    else:
        import numpy as np
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pq.read_table(candidate)
        for name in table.column_names:
            if pa.types.is_floating(table.schema.field(name).type) or pa.types.is_integer(
                table.schema.field(name).type
            ):
                values = table.column(name).to_numpy()
                np.nanmean(values), np.nanstd(values)
        extra = {"rows": table.num_rows}
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_mib": peak, **extra}))


def measure(mode: str, reference: Path, candidate: Path) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(reference), str(candidate)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return 0
    DATA.mkdir(exist_ok=True)
    reference = DATA / f"check_reference_{REFERENCE_ROWS}.parquet"
    if not reference.exists():
        write_table(reference, REFERENCE_ROWS, seed=1)
    lines = [
        f"{'candidate rows':>14}  {'file MiB':>8}  {'read+mean/std s':>15}  {'peak MiB':>8}  "
        f"{'check s':>8}  {'peak MiB':>8}  {'ratio':>5}  exit"
    ]
    for rows in args.rows:
        candidate = DATA / f"check_candidate_{rows}.parquet"
        if not candidate.exists():
            write_table(candidate, rows, seed=2)
        plain = measure("plain", reference, candidate)
        check = measure("check", reference, candidate)
        lines.append(
            f"{rows:>14,}  {candidate.stat().st_size / 2**20:>8.0f}  {plain['seconds']:>15.1f}  "
            f"{plain['peak_mib']:>8.0f}  {check['seconds']:>8.1f}  {check['peak_mib']:>8.0f}  "
            f"{check['seconds'] / plain['seconds']:>5.1f}  {check['exit']}"
        )
    print(
        f"reference: {REFERENCE_ROWS:,} rows, 30 columns; candidate: same generator, another seed"
    )
    print("\n".join(lines))
    print(
        "ratio = check seconds / (read + mean/std) seconds; the check also profiles the reference"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
