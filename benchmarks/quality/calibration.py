"""Are the gate's p-values honest? Real-vs-real splits, every signal's p-value.

When the candidate is more real data, a calibrated p-value is uniform: ``p < 0.01`` in
1% of splits, ``p < 0.05`` in 5%. This runs disjoint random splits of real data (the
tabular datasets of ``datasets.py``; with ``--text``, Debian's KJV and fortunes as
strings and as ``input_ids`` DataLoaders) and prints, per signal and reference/candidate
size ratio, the share of splits below each level, next to the share of splits the gate
called collapsed (its family-wise false-alarm rate, which must stay at or below alpha).

    python -m benchmarks.quality.calibration --datasets diabetes,penguins --repeats 10
    python -m benchmarks.quality.calibration --text fortunes --sizes 250 --repeats 40
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import zlib
from collections import defaultdict

import numpy as np

from .records import Records, add_arguments, saved_or_new

LEVELS = (0.01, 0.05)


def _tabular_splits(names, sizes, ratios, repeats, seed):
    from . import cases, datasets

    plan = dataclasses.replace(
        cases.FULL, real_sizes=tuple(sizes), real_ratios=tuple(ratios), real_repeats=repeats
    )
    for name in names:
        for case in cases.real_cases(name, datasets.load(name), plan, seed):
            yield case.id, case.reference, case.candidate


def _text_splits(names, sizes, ratios, repeats, seed, tokens: bool):
    import pyarrow as pa

    from .text import cases, corpora
    from .text.detectors import corpus_vocabulary, token_loader

    plan = dataclasses.replace(
        cases.FULL, real_sizes=tuple(sizes), real_ratios=tuple(ratios), real_repeats=repeats
    )
    for name in names:
        docs = corpora.load(name)
        vocabulary = corpus_vocabulary(name) if tokens else None
        for case in cases.real_cases(name, docs, plan, seed):
            if tokens:
                yield (
                    case.id + "/tokens",
                    token_loader(case.reference, vocabulary),
                    token_loader(case.candidate, vocabulary),
                )
            else:
                yield (
                    case.id,
                    pa.table({"text": case.reference}),
                    pa.table({"text": case.candidate}),
                )


def run(splits, alpha: float, records: Records) -> None:
    from threadpoolctl import threadpool_limits

    from collapse_callbacks import CollapseGate

    with threadpool_limits(1):
        for case_id, reference, candidate in splits:
            seed = zlib.crc32(case_id.encode())
            report = CollapseGate(reference=reference, alpha=alpha, seed=seed).check(candidate)
            results = [*report.dimensions.values(), report.diversity]
            record = {
                "id": case_id,
                "ratio": case_id.split("/")[2].split("x")[1],
                "collapsed": report.collapsed,
                "shift": report.shift,
                "p": [[s.name, s.p_value] for r in results for s in r.signals],
            }
            records.add(record)
            print(f"{case_id}: collapsed={report.collapsed}", file=sys.stderr, flush=True)


def table(records: list[dict], top: int) -> str:
    by_signal: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in records:
        for name, p in r["p"]:
            if p is not None and np.isfinite(p):
                by_signal[(name, r["ratio"])].append(p)
    rows = []
    for (name, ratio), ps in by_signal.items():
        ps = np.asarray(ps)
        rows.append((name, ratio, len(ps), *[float(np.mean(ps < level)) for level in LEVELS]))
    rows.sort(key=lambda row: -row[3])
    collapsed = sum(r["collapsed"] for r in records)
    shift = sum(r["shift"] for r in records)
    lines = [
        f"{len(records)} real splits: called collapsed {collapsed} ({collapsed / max(len(records), 1):.1%}), "
        f"shift {shift} ({shift / max(len(records), 1):.1%})",
        f"signals by share of p < 0.01 (calibrated: 0.01 and 0.05); the {top} least honest:",
        f"{'signal':<34} {'ratio':>5} {'splits':>6} {'p<0.01':>7} {'p<0.05':>7}",
    ]
    for name, ratio, n, low, high in rows[:top]:
        lines.append(f"{name:<34} {ratio:>5} {n:>6} {low:>7.3f} {high:>7.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="diabetes,breast_cancer,penguins,fair")
    parser.add_argument("--text", help="corpora (bible, fortunes) instead of tabular datasets")
    parser.add_argument("--tokens", action="store_true", help="with --text: as input_ids")
    parser.add_argument("--sizes", default="250,1000", help="candidate rows / documents")
    parser.add_argument("--ratios", default="1,4", help="reference size over candidate size")
    parser.add_argument("--repeats", type=int, default=10, help="splits per size and ratio")
    parser.add_argument("--alpha", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--top", type=int, default=15)
    add_arguments(parser, "split")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    ratios = [int(r) for r in args.ratios.split(",")]
    if args.text:
        splits = _text_splits(
            args.text.split(","), sizes, ratios, args.repeats, args.seed, args.tokens
        )
    else:
        splits = _tabular_splits(args.datasets.split(","), sizes, ratios, args.repeats, args.seed)
    records = saved_or_new(args, lambda records: run(splits, args.alpha, records))
    print(table(records, args.top))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
