"""What every peer runner shares: read a case folder, answer one JSON line per case.

Runs inside the peer's own venv, so it imports only what every peer venv has (pandas,
pyarrow, numpy) and nothing from the harness.

A case folder holds ``reference.parquet``, ``candidate.parquet`` and ``case.json``
(``alpha``, ``seed``, ``numeric`` and ``categorical`` column lists). The answer is a
verdict: ``{"collapsed", "shift", "score", "seconds", "signals", "extras"}``, or
``{"error": "..."}``.

Usage: ``run_<peer>.py CASE_DIR [CASE_DIR ...]`` prints one line per folder;
``run_<peer>.py --stdin`` reads folder paths from stdin until it closes (the harness
keeps one such process per peer, so the peer's imports are paid once).
"""

from __future__ import annotations

import json
import math
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd


@dataclass(frozen=True)
class PeerCase:
    reference: pd.DataFrame
    candidate: pd.DataFrame
    alpha: float
    seed: int
    numeric: list[str]
    categorical: list[str]


def read_case(folder: Path) -> PeerCase:
    spec = json.loads((folder / "case.json").read_text())
    return PeerCase(
        reference=pd.read_parquet(folder / "reference.parquet"),
        candidate=pd.read_parquet(folder / "candidate.parquet"),
        alpha=float(spec["alpha"]),
        seed=int(spec["seed"]),
        numeric=list(spec["numeric"]),
        categorical=list(spec["categorical"]),
    )


def _clean(value):
    """JSON has no NaN: a non-finite number becomes null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    return value


def answer(check: Callable[[PeerCase], dict], folder: Path) -> dict:
    try:
        case = read_case(folder)
        start = time.perf_counter()
        verdict = check(case)
        # The peer's own compute time: not the interpreter start, imports or file reads.
        verdict.setdefault("seconds", time.perf_counter() - start)
        return _clean(verdict)
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        return {"error": f"{type(exc).__name__}: {exc}"}


def main(check: Callable[[PeerCase], dict]) -> int:
    # Libraries print progress and warnings; only verdict lines may reach stdout.
    out = sys.stdout
    sys.stdout = sys.stderr
    args = sys.argv[1:]
    folders = (line.strip() for line in sys.stdin) if args == ["--stdin"] else iter(args)
    for folder in folders:
        if folder:
            print(json.dumps(answer(check, Path(folder))), file=out, flush=True)
    return 0
