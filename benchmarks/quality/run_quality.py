"""Run every case through every selected detector and print the comparison tables.

From the repository root::

    .venv/bin/python -m benchmarks.quality.run_quality --quick
    .venv/bin/python -m benchmarks.quality.run_quality --detectors all --out results.json
    .venv/bin/python -m benchmarks.quality.run_quality --from-json results.json

``--quick`` uses few repeats, small sizes and generations 1, 3, 5 (a few minutes on
2 cores with the baselines); the default plan is the full one (hours with the peers).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

if __package__ in (None, ""):
    # Run as a file: this folder would be sys.path[0], where our datasets.py shadows
    # Hugging Face's `datasets`. Import the package from the repository root instead.
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    sys.path.insert(0, str(here.parents[1]))
    __package__ = "benchmarks.quality"

from . import cases as casemod
from . import datasets as datamod
from . import detectors as detmod
from .peer_client import DEFAULT_ENVS_DIR
from .report import all_tables


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small plan, minutes not hours")
    parser.add_argument(
        "--detectors",
        default=",".join(detmod.DEFAULT),
        help=f"comma-separated, or 'all' (default: {','.join(detmod.DEFAULT)}; "
        f"peers: {','.join(detmod.PEERS)})",
    )
    parser.add_argument(
        "--datasets", default=",".join(datamod.DATASETS), help="comma-separated dataset names"
    )
    parser.add_argument(
        "--kinds",
        default="real,generation,shift",
        help="case kinds (mixtures come with generation)",
    )
    parser.add_argument("--alpha", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0, help="base seed of every case")
    parser.add_argument("--out", type=Path, help="write the result records as JSON")
    parser.add_argument("--from-json", type=Path, help="print the tables of a saved run")
    parser.add_argument("--envs", type=Path, default=DEFAULT_ENVS_DIR, help="peer venvs folder")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="BLAS/OpenMP threads for every detector, harness and peers alike (default 1; "
        "0 = the libraries' own choice). One thread keeps timings comparable and avoids "
        "OpenMP spin-waiting on busy cores, which made the quick run 15x slower on a "
        "shared 2-core machine",
    )
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> tuple[list[dict], list[str]]:
    from threadpoolctl import threadpool_limits

    if not args.threads:
        return _run(args)
    # Read at start by the peer processes and by torch when it is first imported; the
    # pools already loaded here are capped by threadpoolctl.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    with threadpool_limits(limits=args.threads):
        return _run(args)


def _run(args: argparse.Namespace) -> tuple[list[dict], list[str]]:
    plan = casemod.QUICK if args.quick else casemod.FULL
    names = [d.strip() for d in args.detectors.split(",") if d.strip()]
    wants_peers = names == ["all"] or any(n in detmod.PEERS for n in names)
    log_dir = Path(tempfile.mkdtemp(prefix="quality-logs-")) if wants_peers else None
    try:
        detectors = detmod.build(names, args.envs, log_dir)
    except ValueError as exc:
        raise SystemExit(f"run_quality: {exc}") from None
    for det in detectors:
        if det.skipped:
            print(f"skipped {det.name}: {det.skipped}", file=sys.stderr)
    active = [d for d in detectors if d.run is not None]
    if not active:
        raise SystemExit("no detector can run; see the skipped lines above")
    kinds = set(args.kinds.split(","))
    generators = {
        "real": casemod.real_cases,
        "generation": casemod.generation_cases,
        "shift": casemod.shift_cases,
    }
    datasets = args.datasets.split(",")
    unknown = [*(d for d in datasets if d not in datamod.DATASETS), *(kinds - set(generators))]
    if unknown:
        raise SystemExit(
            f"run_quality: unknown {', '.join(unknown)}; datasets: {', '.join(datamod.DATASETS)};"
            f" kinds: {', '.join(generators)}"
        )
    records: list[dict] = []
    start = time.perf_counter()
    try:
        for dataset in datasets:
            df = datamod.load(dataset)
            for kind, make in generators.items():
                if kind not in kinds:
                    continue
                for case in make(dataset, df, plan, args.seed):
                    records.append(_run_case(case, active, args.alpha))
            print(
                f"[{time.perf_counter() - start:7.1f}s] {dataset}: {len(records)} cases so far",
                file=sys.stderr,
            )
    finally:
        for det in active:
            det.close()
    if any(d.name in detmod.PEERS for d in active):
        print(f"peer stderr logs: {log_dir}", file=sys.stderr)
    return records, [d.name for d in active]


def _run_case(case: casemod.Case, detectors: list[detmod.Detector], alpha: float) -> dict:
    results = {}
    for det in detectors:
        try:
            results[det.name] = det.run(case.reference, case.candidate, alpha, case.seed).to_dict()
        except Exception as exc:
            # One failing case must not sink a run of hours; the error table shows it.
            last = traceback.extract_tb(exc.__traceback__)[-1]
            results[det.name] = {
                "error": f"{type(exc).__name__}: {exc} ({Path(last.filename).name}:{last.lineno})"
            }
    return {"case": case.labels(), "results": results}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.from_json:
        saved = json.loads(args.from_json.read_text())
        records, names = saved["records"], saved["detectors"]
    else:
        records, names = run(args)
        if args.out:
            payload = {
                "detectors": names,
                "quick": args.quick,
                "alpha": args.alpha,
                "seed": args.seed,
                "records": records,
            }
            args.out.write_text(json.dumps(payload, indent=1))
    print(all_tables(records, names))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
