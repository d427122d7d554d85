"""How many rows does the gate need to see a mixture? Detection by candidate size.

The 30%-of-generation-3 mixtures are missed on the smallest datasets (166-284 rows) and
caught on the larger ones. This separates size from dataset: the same larger datasets,
cut to candidates (and references) of several sizes, the same four generator families
and chains (``cases.generation_cases`` with ``generation_rows`` = the size), and the
share of mixtures the gate calls collapsed at each size, next to the real candidates of
the same chains (generation 0: false alarms).

    python -m benchmarks.quality.mixture_size --datasets diamonds,flights --sizes 166,500,2000

``--reference-ratio 4`` gives every chain a reference four times the candidate's size.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections import defaultdict

from . import cases, datasets
from .generators import FAMILIES
from .records import Records, add_arguments, saved_or_new


def run(names, sizes, chains, fraction, generation, ratio, seed, records: Records) -> None:
    from threadpoolctl import threadpool_limits

    from collapse_callbacks import CollapseGate

    with threadpool_limits(1):
        for name in names:
            frame = datasets.load(name)
            for size in sizes:
                plan = dataclasses.replace(
                    cases.FULL,
                    generation_rows=size,
                    generations=(),
                    chains=chains,
                    families=tuple(FAMILIES),
                    mixture_fractions=(fraction,),
                    mixture_generations=(generation,),
                    mixture_families=tuple(FAMILIES),
                    mixture_chains=chains,
                    reference_ratio=ratio,
                )
                for case in cases.generation_cases(name, frame, plan, seed):
                    report = CollapseGate(reference=case.reference, seed=case.seed).check(
                        case.candidate
                    )
                    record = {
                        "id": case.id,
                        "kind": case.kind,
                        "size": len(case.candidate),
                        "reference_rows": len(case.reference),
                        "family": case.family,
                        "collapsed": report.collapsed,
                    }
                    records.add(record)
                    print(f"{case.id} ({record['size']}): {report.collapsed}", file=sys.stderr)


def table(records: list[dict]) -> str:
    cells: dict[tuple[int, str], list[bool]] = defaultdict(list)
    for r in records:
        cells[(r["size"], r["kind"])].append(r["collapsed"])
    lines = [
        f"{'candidate rows':>14}  {'mixtures called collapsed':>26}  {'real (gen 0) called collapsed':>30}"
    ]
    for size in sorted({s for s, _ in cells}):
        mixed, real = cells.get((size, "mixture"), []), cells.get((size, "generation"), [])
        lines.append(
            f"{size:>14}  {sum(mixed):>12}/{len(mixed):<3} {sum(mixed) / max(len(mixed), 1):>9.2f}"
            f"  {sum(real):>16}/{len(real):<3} {sum(real) / max(len(real), 1):>9.2f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="diamonds,flights")
    parser.add_argument("--sizes", default="166,284,500,1000,2000")
    parser.add_argument("--chains", type=int, default=3)
    parser.add_argument("--fraction", type=float, default=0.3)
    parser.add_argument("--generation", type=int, default=3)
    parser.add_argument(
        "--reference-ratio", type=int, default=1, help="reference rows per candidate row"
    )
    parser.add_argument("--seed", type=int, default=0)
    add_arguments(parser, "case")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    records = saved_or_new(
        args,
        lambda records: run(
            args.datasets.split(","),
            sizes,
            args.chains,
            args.fraction,
            args.generation,
            args.reference_ratio,
            args.seed,
            records,
        ),
    )
    print(table(records))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
