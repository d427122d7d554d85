"""Calibration and power of the proxy model's two dimensions (gradient_health,
loss_landscape) as ``collapse-gate check --proxy-model`` / ``--target`` runs them.

False alarms: disjoint random halves of a real table (capped at ``--rows`` a side) are
reference and candidate; a split is a false alarm when either model dimension fails at
the share of alpha it gets in a full report (alpha split over the 8 dimensions and
diversity, generalization_gap weighted 3: ``alpha / 11`` each). The table also gives,
per signal, how often its raw p-value is below 0.05, which a calibrated test keeps near
5% and which shows miscalibration long before the tiny alpha share does, and how many
p-values (all signals together) fell below 0.001, a look at the tail the alpha share
lives in.

Detection: collapsed candidates the model dimensions should fail: the demo's recursive
penguin generations, a generator family's generation 5 on other tables, every numeric
column shrunk halfway to its median, and (with a target) the target's labels shuffled.

From the repository root::

    .venv/bin/python -m benchmarks.quality.proxy_calibration            # ~25 min, 2 CPUs
    .venv/bin/python -m benchmarks.quality.proxy_calibration --quick    # ~3 min

A run with a target costs more than one without: utility refits 2 x 8 models to
measure training noise (see ``collapse_callbacks.proxy._utility_signal``).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):
    # Run as a file: this folder's datasets.py would shadow Hugging Face's `datasets`.
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    sys.path.insert(0, str(here.parents[1]))
    __package__ = "benchmarks.quality"

import numpy as np
import pandas as pd
from scipy import stats

from . import datasets as datamod
from . import generators as genmod

ALPHA = 0.01
MODEL_DIMENSIONS = ("gradient_health", "loss_landscape")
# (dataset, real splits, rows per side at most, target)
NULL_PLAN = (
    ("penguins", 80, None, "species"),
    ("breast_cancer", 60, None, "target"),
    ("digits", 40, None, "target"),
    ("fair", 40, 2_000, "occupation"),
    ("randhie", 40, 3_000, "lpi"),
    ("diamonds", 40, 3_000, "cut"),
)
# (dataset, generator family, rows per side at most, target)
CHAIN_PLAN = (
    ("breast_cancer", "gmm-lowtemp", None, "target"),
    ("breast_cancer", "kde", None, "target"),
    ("fair", "gmm-lowtemp", 2_000, "occupation"),
    ("diamonds", "copula", 3_000, "cut"),
)


@dataclass
class Tally:
    """Counts for one row of a table."""

    runs: int = 0
    fails: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    either: int = 0
    below_05: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    below_001: int = 0  # signals with p < 0.001, all kinds together
    seen: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    values: dict[str, list] = field(default_factory=lambda: defaultdict(list))
    seconds: float = 0.0

    def add(self, results: dict, seconds: float) -> None:
        from collapse_callbacks.dimensions.base import Status

        self.runs += 1
        self.seconds += seconds
        failed = False
        for name in MODEL_DIMENSIONS:
            result = results[name]
            if result.status is Status.NOT_RUN:
                raise RuntimeError(f"{name} did not run: {result.reason}")
            if result.status is Status.FAIL:
                self.fails[name] += 1
                failed = True
            for signal in result.signals:
                self.seen[signal.name] += 1
                self.below_05[signal.name] += signal.p_value < 0.05
                self.below_001 += signal.p_value < 0.001
                self.values[signal.name].append(signal.value)
        self.either += failed


def shares() -> dict[str, float]:
    from collapse_callbacks.detector import DIMENSIONS, alpha_shares
    from collapse_callbacks.diversity import NAME as DIVERSITY

    return alpha_shares([*DIMENSIONS, DIVERSITY], ALPHA)


def judge_model_dimensions(reference: pd.DataFrame, candidate, target: str | None, seed: int):
    """The two model dimensions' results as a full report would score them."""
    from collapse_callbacks.detector import score_dimension
    from collapse_callbacks.gate import CollapseGate
    from collapse_callbacks.proxy import proxy_evidence

    comparison, _ = CollapseGate(reference, seed=seed, alpha=ALPHA).compare(candidate)
    share = shares()
    evidence = proxy_evidence(comparison, target=target, seed=seed)
    return {e.name: score_dimension(e, share[e.name]) for e in evidence}


def halves(df: pd.DataFrame, cap: int | None, rng: np.random.Generator):
    order = rng.permutation(len(df))
    side = len(df) // 2 if cap is None else min(len(df) // 2, cap)
    return df.iloc[order[:side]], df.iloc[order[side : 2 * side]]


def run_null(plan, tallies: dict, scale: float) -> None:
    for index, (name, splits, cap, target) in enumerate(plan):
        df = datamod.load(name)
        for split in range(max(2, int(splits * scale))):
            rng = np.random.default_rng([index, split])
            reference, candidate = halves(df, cap, rng)
            for mode in (None, target):
                started = time.perf_counter()
                results = judge_model_dimensions(reference, candidate, mode, seed=split)
                key = ("real", name, "autoencoder" if mode is None else f"target {mode}")
                tallies[key].add(results, time.perf_counter() - started)


def shrunk(df: pd.DataFrame) -> pd.DataFrame:
    """Every numeric column pulled halfway to its median (variance / 4)."""
    out = df.copy()
    numeric = datamod.numeric_columns(df)
    out[numeric] = df[numeric].median() + 0.5 * (df[numeric] - df[numeric].median())
    return out


def shuffled(df: pd.DataFrame, column: str, rng: np.random.Generator) -> pd.DataFrame:
    out = df.copy()
    out[column] = df[column].to_numpy()[rng.permutation(len(df))]
    return out


def run_detection(tallies: dict, repeats: int) -> None:
    from collapse_callbacks.demo import generations, real_penguins

    table = real_penguins()
    for seed in range(repeats):
        rng = np.random.default_rng(seed)
        order = rng.permutation(table.num_rows)
        half = table.num_rows // 2
        reference, held_out = table.take(order[:half]), table.take(order[half:])
        chain = generations(held_out, 5, held_out.num_rows, rng, 0.9)
        for g in (1, 3, 5):
            for mode in (None, "species"):
                _detect(
                    tallies,
                    ("demo", "penguins", f"generation {g}", mode),
                    reference,
                    chain[g - 1],
                    mode,
                    seed,
                )
    for index, (name, family, cap, target) in enumerate(CHAIN_PLAN):
        df = datamod.load(name)
        for seed in range(repeats):
            rng = np.random.default_rng([100 + index, seed])
            reference, train = halves(df, cap, rng)
            fifth = genmod.run_chain(train, genmod.FAMILIES[family], 5, rng)[-1]
            for mode in (None, target):
                _detect(tallies, (family, name, "generation 5", mode), reference, fifth, mode, seed)
    for index, (name, _, cap, target) in enumerate(NULL_PLAN):
        df = datamod.load(name)
        for seed in range(repeats):
            rng = np.random.default_rng([200 + index, seed])
            reference, candidate = halves(df, cap, rng)
            for mode in (None, target):
                _detect(
                    tallies,
                    ("shrunk", name, "numeric x0.5", mode),
                    reference,
                    shrunk(candidate),
                    mode,
                    seed,
                )
            bad = shuffled(candidate, target, rng)
            _detect(
                tallies,
                ("shuffled", name, f"`{target}` labels", target),
                reference,
                bad,
                target,
                seed,
            )


def _detect(tallies, key, reference, candidate, mode, seed) -> None:
    started = time.perf_counter()
    results = judge_model_dimensions(reference, candidate, mode, seed=seed)
    kind, name, what, _ = key
    label = "autoencoder" if mode is None else f"target {mode}"
    tallies[(f"{kind}: {what}", name, label)].add(results, time.perf_counter() - started)


def table(tallies: dict, title: str, signals: tuple[str, ...]) -> str:
    head = f"{'candidate':<28} {'dataset':<14} {'proxy':<18} {'runs':>5} {'grad':>5} {'land':>5}"
    head += f" {'either':>7} {'rate':>6} {'95% up':>7}"
    head += "".join(f" {s[:14]:>15}" for s in signals) + f" {'p<.001':>7} {'s/run':>6}"
    lines = [title, head, "-" * len(head)]
    for (kind, name, mode), t in tallies.items():
        upper = stats.beta.ppf(0.975, t.either + 1, t.runs - t.either) if t.either < t.runs else 1.0
        row = (
            f"{kind:<28} {name:<14} {mode:<18} {t.runs:>5} {t.fails['gradient_health']:>5} "
            f"{t.fails['loss_landscape']:>5} {t.either:>7} {t.either / t.runs:>6.1%} {upper:>7.1%}"
        )
        for s in signals:
            row += f" {(t.below_05[s] / t.seen[s]) if t.seen[s] else float('nan'):>15.1%}"
        lines.append(row + f" {t.below_001:>7} {t.seconds / t.runs:>6.2f}")
    return "\n".join(lines)


def spread(tallies: dict, names: tuple[str, ...]) -> str:
    """Quantiles of the signals' values on real splits: how far real data alone moves
    them (the tolerances must sit beyond the lower tail of the narrowing ratios)."""
    head = f"{'dataset':<14} {'proxy':<18}" + "".join(
        f" {name + ' min/p5/p50':>34}" for name in names
    )
    lines = ["\nSignal values on real splits (ratios; 1 = no difference)", head, "-" * len(head)]
    for (_, name, mode), t in tallies.items():
        row = f"{name:<14} {mode:<18}"
        for signal in names:
            values = np.asarray(t.values.get(signal, []), dtype=float)
            if len(values):
                low, p5, mid = np.min(values), *np.quantile(values, [0.05, 0.5])
                row += f" {f'{low:.2f} / {p5:.2f} / {mid:.2f}':>34}"
            else:
                row += f" {'-':>34}"
        lines.append(row)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a tenth of the splits, 2 repeats of each detection case",
    )
    parser.add_argument("--no-detection", action="store_true")
    args = parser.parse_args(argv)
    from threadpoolctl import threadpool_limits

    share = shares()
    print(
        f"alpha {ALPHA}; share per model dimension "
        + ", ".join(f"{n} {share[n]:.6f}" for n in MODEL_DIMENSIONS)
    )
    signals = ("gradient_norm_ratio", "loss_ratio", "sharpness_ratio", "utility_ratio")
    with threadpool_limits(limits=1):
        null: dict = defaultdict(Tally)
        run_null(NULL_PLAN, null, 0.1 if args.quick else 1.0)
        text = table(
            null,
            "\nFalse alarms on real splits (raw p<0.05 share per signal on the right)",
            signals,
        )
        print(text)
        print(spread(null, ("loss_ratio", "gradient_norm_ratio", "utility_ratio")))
        for mode in ("autoencoder", "target"):
            runs = sum(t.runs for (k, n, m), t in null.items() if m.startswith(mode))
            fired = sum(t.either for (k, n, m), t in null.items() if m.startswith(mode))
            upper = stats.beta.ppf(0.975, fired + 1, runs - fired)
            print(
                f"all real splits, {mode}: {fired}/{runs} fire ({fired / runs:.2%}; "
                f"95% upper bound {upper:.2%}; alpha {ALPHA:.0%})"
            )
        if not args.no_detection:
            detected: dict = defaultdict(Tally)
            run_detection(detected, 2 if args.quick else 5)
            text = table(detected, "\nDetection on collapsed candidates", signals)
            print(text)


if __name__ == "__main__":
    main()
