"""Does the score keep falling generation after generation? Two ways to summarize the
same reports, side by side.

Runs recursive-generation chains (``cases.generation_cases``, generations 0-10), keeps
each report's dimension scores, and prints per generator family the Spearman rho of
score vs generation (averaged over chains, and the worst chain) for the score the gate
reports (the geometric mean of the dimension scores, ``detector.overall_score``) and for
the arithmetic mean of the same dimension scores. Both come from the same reports, so
the comparison is exact; only the aggregation differs.

    python -m benchmarks.quality.score_trend --datasets penguins,diabetes --rows 2000
    python -m benchmarks.quality.score_trend --from-jsonl chains.jsonl
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections import defaultdict

import numpy as np
from scipy import stats

from . import cases, datasets
from .records import Records, add_arguments, saved_or_new

GENERATIONS = tuple(range(1, 11))


def run_chains(names: list[str], rows: int, chains: int, seed: int, records: Records) -> None:
    from threadpoolctl import threadpool_limits

    from collapse_callbacks import CollapseGate

    plan = dataclasses.replace(
        cases.FULL,
        generations=GENERATIONS,
        chains=chains,
        mixture_fractions=(),
        mixture_chains=0,
        generation_rows=rows,
    )
    with threadpool_limits(1):
        for name in names:
            frame = datasets.load(name)
            for case in cases.generation_cases(name, frame, plan, seed):
                if case.kind != "generation":
                    continue
                report = CollapseGate(reference=case.reference, seed=case.seed).check(
                    case.candidate
                )
                record = {
                    "id": case.id,
                    "family": case.family,
                    "chain": f"{name}/{case.chain}",
                    "generation": case.generation,
                    "dimension_scores": _dimension_scores(report),
                }
                records.add(record)
                print(f"{case.id}: {report.score:.1f}", file=sys.stderr, flush=True)


def _dimension_scores(report) -> list[float]:
    results = [*report.dimensions.values(), report.diversity]
    return [r.score for r in results if r.score is not None]


def geometric(scores: list[float]) -> float:
    from collapse_callbacks.detector import overall_score

    return overall_score(scores)


def arithmetic(scores: list[float]) -> float:
    return float(np.mean(scores)) if scores else 100.0


def table(records: list[dict]) -> str:
    chains: dict[tuple[str, str], dict[int, list[float]]] = defaultdict(dict)
    for r in records:
        chains[(r["family"], r["chain"])][r["generation"]] = r["dimension_scores"]
    rhos: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for (family, _), by_generation in chains.items():
        if len(by_generation) < 3:
            continue
        gens = sorted(by_generation)
        for name, aggregate in (("geometric", geometric), ("arithmetic", arithmetic)):
            scores = [aggregate(by_generation[g]) for g in gens]
            rhos[family][name].append(float(stats.spearmanr(gens, scores)[0]))
    lines = [
        "Spearman rho of score vs generation (mean over chains; worst chain)",
        f"{'family':<14} {'chains':>6}  {'geometric (reported)':>22}  {'arithmetic mean':>18}",
    ]
    for family in sorted(rhos):
        cells = []
        for name in ("geometric", "arithmetic"):
            values = rhos[family][name]
            cells.append(f"{np.mean(values):+.2f} ({max(values):+.2f})")
        n = len(rhos[family]["geometric"])
        lines.append(f"{family:<14} {n:>6}  {cells[0]:>22}  {cells[1]:>18}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="penguins,diabetes,breast_cancer,digits")
    parser.add_argument("--rows", type=int, default=2000, help="candidate rows per chain")
    parser.add_argument("--chains", type=int, default=1, help="chains per dataset and family")
    parser.add_argument("--seed", type=int, default=0)
    add_arguments(parser, "report")
    args = parser.parse_args(argv)
    records = saved_or_new(
        args,
        lambda records: run_chains(
            args.datasets.split(","), args.rows, args.chains, args.seed, records
        ),
    )
    print(table(records))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
