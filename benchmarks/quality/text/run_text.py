"""Run the text cases through every selected detector and print the comparison tables.

From the repository root::

    .venv/bin/python -m benchmarks.quality.text.run_text --quick
    .venv/bin/python -m benchmarks.quality.text.run_text --out text-results.json
    .venv/bin/python -m benchmarks.quality.text.run_text --from-json text-results.json

``--quick``: 4 splits per size, generations 1-3, one chain, the LSTM at temperature 1
only (about 7 minutes on 2 shared cores); the default is the full plan (about 40
minutes).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

if __package__ in (None, ""):
    # Run as a file: import the package from the repository root (see run_quality.py).
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() not in (here, here.parent)]
    sys.path.insert(0, str(here.parents[2]))
    __package__ = "benchmarks.quality.text"

from ..peer_client import DEFAULT_ENVS_DIR
from . import cases as casemod
from . import corpora
from . import detectors as detmod
from .report import all_tables


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small plan, minutes")
    parser.add_argument(
        "--detectors",
        default=",".join(detmod.DEFAULT),
        help=f"comma-separated, or 'all' (default and known: {','.join(detmod.DEFAULT)})",
    )
    parser.add_argument("--corpora", default=",".join(corpora.CORPORA))
    parser.add_argument("--kinds", default="real,generation", help="mixtures come with generation")
    parser.add_argument("--chains", type=int, help="chains per corpus and model (plan's default)")
    parser.add_argument("--alpha", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0, help="base seed of every case")
    parser.add_argument("--out", type=Path, help="write the result records as JSON")
    parser.add_argument("--from-json", type=Path, help="print the tables of a saved run")
    parser.add_argument("--envs", type=Path, default=DEFAULT_ENVS_DIR, help="peer venvs folder")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="BLAS/OpenMP/torch threads for everything, peers included (default 1; 0 = the "
        "libraries' own choice)",
    )
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> tuple[list[dict], list[str], dict]:
    if not args.threads:
        return _run(args)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(args.threads)
    with threadpool_limits(limits=args.threads):
        return _run(args)


def _run(args: argparse.Namespace) -> tuple[list[dict], list[str], dict]:
    plan = casemod.QUICK if args.quick else casemod.FULL
    if args.chains:
        plan = dataclasses.replace(plan, chains=args.chains)
    names = [d.strip() for d in args.detectors.split(",") if d.strip()]
    log_dir = Path(tempfile.mkdtemp(prefix="quality-text-logs-"))
    try:
        detectors = detmod.build(names, args.envs, log_dir)
    except ValueError as exc:
        raise SystemExit(f"run_text: {exc}") from None
    for det in detectors:
        if det.skipped:
            print(f"skipped {det.name}: {det.skipped}", file=sys.stderr)
    active = [d for d in detectors if d.run is not None]
    if not active:
        raise SystemExit("no detector can run; see the skipped lines above")
    kinds = set(args.kinds.split(","))
    chosen = args.corpora.split(",")
    unknown = [
        *(c for c in chosen if c not in corpora.CORPORA),
        *(kinds - {"real", "generation"}),
    ]
    if unknown:
        raise SystemExit(
            f"run_text: unknown {', '.join(unknown)}; corpora: {', '.join(corpora.CORPORA)};"
            " kinds: real, generation"
        )
    log = casemod.GenerationLog()
    records: list[dict] = []
    start = time.perf_counter()
    try:
        for name in chosen:
            try:
                docs = corpora.load(name)
            except corpora.CorpusMissing as exc:
                raise SystemExit(f"run_text: corpus {name}: {exc}") from None
            makers = []
            if "real" in kinds:
                makers.append(casemod.real_cases(name, docs, plan, args.seed))
            if "generation" in kinds:
                makers.append(casemod.generation_cases(name, docs, plan, args.seed, log))
            for maker in makers:
                for case in maker:
                    records.append(_run_case(case, active, args.alpha))
                print(
                    f"[{time.perf_counter() - start:7.1f}s] {name}: {len(records)} cases so far",
                    file=sys.stderr,
                )
    finally:
        for det in active:
            det.close()
    print(f"peer stderr logs: {log_dir}", file=sys.stderr)
    return records, [d.name for d in active], log.seconds


def _run_case(case: casemod.TextCase, detectors: list[detmod.Detector], alpha: float) -> dict:
    results = {}
    for det in detectors:
        if not det.applies(case):
            continue
        try:
            results[det.name] = det.run(case, alpha).to_dict()
        except Exception as exc:
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
        timings = saved.get("generation_seconds", {})
    else:
        records, names, timings = run(args)
        if args.out:
            payload = {
                "detectors": names,
                "quick": args.quick,
                "alpha": args.alpha,
                "seed": args.seed,
                "generation_seconds": timings,
                "records": records,
            }
            args.out.write_text(json.dumps(payload, indent=1))
    print(all_tables(records, names, timings))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
