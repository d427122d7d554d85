"""Detector registry: ``name -> callable(reference, candidate, alpha, seed) -> Verdict``.

In-process: the two baselines and our ``CollapseGate``. Out of process: the peers, each
in its own venv (see ``peers/setup.sh``). A detector that cannot run here is still listed,
with the reason, so the runner can print one clear skip line instead of failing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter

import pandas as pd

from .baselines import c2st, ks_bonferroni
from .peer_client import PeerProcess, peer_python
from .verdict import Verdict

DetectorFn = Callable[[pd.DataFrame, pd.DataFrame, float, int], Verdict]

IN_PROCESS = ("ks-bonferroni", "c2st", "collapse-gate")
PEERS = {
    "sdmetrics": "SDMetrics QualityReport (flag: overall score < 90%)",
    "evidently": "Evidently DataDriftPreset (flag: dataset drift, >= 50% columns drifted)",
    "alibi": "alibi-detect MMDDrift, pytorch backend (flag: permutation p < alpha)",
}
# What a plain run uses; peers are opt-in because they cost minutes to hours.
DEFAULT = IN_PROCESS


@dataclass(frozen=True)
class Detector:
    name: str
    description: str
    run: DetectorFn | None
    skipped: str | None = None  # why it cannot run here

    def close(self) -> None:
        closer = getattr(self.run, "close", None)
        if closer is not None:
            closer()


def collapse_gate(
    reference: pd.DataFrame, candidate: pd.DataFrame, alpha: float, seed: int
) -> Verdict:
    from collapse_callbacks import CollapseGate

    start = perf_counter()
    report = CollapseGate(reference=reference, alpha=alpha, seed=seed).check(candidate)
    seconds = perf_counter() - start
    signals = {
        str(name): dim.status == "fail"
        for name, dim in report.dimensions.items()
        if dim.status != "not run"
    }
    extras = {
        f"p:{name}": float(dim.p_value)
        for name, dim in report.dimensions.items()
        if getattr(dim, "p_value", None) is not None
    }
    extras["gate_seconds"] = float(report.seconds)
    return Verdict(
        collapsed=bool(report.collapsed),
        shift=None if report.shift is None else bool(report.shift),
        score=float(report.score),
        seconds=seconds,
        signals=signals,
        extras=extras,
    )


def _gate_import_error() -> str | None:
    try:
        from collapse_callbacks import CollapseGate  # noqa: F401
    except Exception as exc:  # any import failure means "not here yet"
        return f"cannot import collapse_callbacks.CollapseGate ({type(exc).__name__}: {exc})"
    return None


def build(names: list[str], envs_dir: Path, log_dir: Path | None = None) -> list[Detector]:
    """Detectors for ``names`` (``"all"`` expands to every known one), in that order."""
    if names == ["all"]:
        names = [*IN_PROCESS, *PEERS]
    detectors = []
    for name in names:
        if name == "ks-bonferroni":
            detectors.append(
                Detector(name, "per-column KS / chi-square, Bonferroni", ks_bonferroni)
            )
        elif name == "c2st":
            detectors.append(Detector(name, "classifier two-sample test, held-out AUC", c2st))
        elif name == "collapse-gate":
            reason = _gate_import_error()
            detectors.append(
                Detector(
                    name,
                    "collapse_callbacks.CollapseGate",
                    collapse_gate if not reason else None,
                    reason,
                )
            )
        elif name in PEERS:
            python = peer_python(envs_dir, name)
            if not python.exists():
                detectors.append(
                    Detector(
                        name,
                        PEERS[name],
                        None,
                        f"no venv at {python.parent.parent}; run benchmarks/quality/peers/setup.sh {name}",
                    )
                )
                continue
            log = None if log_dir is None else log_dir / f"peer-{name}.log"
            detectors.append(Detector(name, PEERS[name], PeerProcess(name, envs_dir, log_path=log)))
        else:
            known = ", ".join([*IN_PROCESS, *PEERS])
            raise ValueError(f"unknown detector {name!r}; known: {known}, or 'all'")
    return detectors
