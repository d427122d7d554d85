"""Tables from result records, one column per detector.

A record is ``{"case": Case.labels(), "results": {detector: Verdict.to_dict() or
{"error": "..."}}}``; the same records are what ``--out`` writes, so tables can be
printed again from a saved file (``run_quality.py --from-json results.json``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable

import numpy as np
from scipy import stats

Record = dict


def format_table(title: str, header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows, strict=True)]
    line = "  ".join("-" * w for w in widths)

    def fmt(row: Iterable) -> str:
        cells = [
            str(x).rjust(w) if i else str(x).ljust(w)
            for i, (x, w) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    return "\n".join([title, fmt(header), line, *(fmt(r) for r in rows)])


def _ok(record: Record, detector: str) -> dict | None:
    result = record["results"].get(detector)
    return None if result is None or "error" in result else result


def _rate(records: list[Record], detector: str, key: str = "collapsed") -> str:
    """'k/n rate' over the records where the detector answered."""
    values = [r[key] for r in (_ok(x, detector) for x in records) if r is not None]
    if not values:
        return "-"
    if any(v is None for v in values):
        return "n/a"
    k = sum(bool(v) for v in values)
    return f"{k}/{len(values)} {k / len(values):.2f}"


def _grouped(
    records: list[Record], key: Callable[[dict], tuple], ordered: bool = False
) -> dict[tuple, list[Record]]:
    """Records by key, in first-seen order (the run's order: datasets as given, sizes
    and generations ascending), or sorted when ``ordered``."""
    groups: dict[tuple, list[Record]] = defaultdict(list)
    for record in records:
        groups[key(record["case"])].append(record)
    if ordered:
        return dict(sorted(groups.items()))
    return dict(groups)


def false_alarm_table(records: list[Record], detectors: list[str]) -> str | None:
    real = [r for r in records if r["case"]["kind"] == "real"]
    if not real:
        return None
    rows = []
    groups = _grouped(real, lambda c: (c["dataset"], c["n_ref"], c["n_cand"]))
    for (dataset, n_ref, n_cand), group in groups.items():
        rows.append([dataset, n_ref, n_cand, len(group), *(_rate(group, d) for d in detectors)])
    rows.append(["all", "", "", len(real), *(_rate(real, d) for d in detectors)])
    return format_table(
        "False alarms on real-vs-real splits (flagged/answered, rate; lower is better)",
        ["dataset", "n_ref", "n_cand", "cases", *detectors],
        rows,
    )


def generation_table(records: list[Record], detectors: list[str]) -> str | None:
    gens = [r for r in records if r["case"]["kind"] == "generation"]
    if not gens:
        return None
    rows = []
    groups = _grouped(gens, lambda c: (c["family"], c["generation"]))
    for (family, generation), group in groups.items():
        rows.append([family, generation, len(group), *(_rate(group, d) for d in detectors)])
    return format_table(
        "Detection by generator family and generation (generation 0 = the real candidate: a false alarm)",
        ["family", "gen", "cases", *detectors],
        rows,
    )


def earliest_table(records: list[Record], detectors: list[str]) -> str | None:
    """Per family, the first generation >= 1 at which at least half the chains are flagged."""
    gens = [r for r in records if r["case"]["kind"] == "generation" and r["case"]["generation"]]
    if not gens:
        return None
    rows = []
    for (family,), group in _grouped(gens, lambda c: (c["family"],)).items():
        row = [family]
        for d in detectors:
            earliest = "never"
            by_gen = _grouped(group, lambda c: (c["generation"],), ordered=True)
            for (g,), at_g in by_gen.items():
                answered = [x for x in (_ok(r, d) for r in at_g) if x is not None]
                if answered and np.mean([x["collapsed"] for x in answered]) >= 0.5:
                    earliest = str(g)
                    break
            row.append(earliest if any(_ok(r, d) for r in group) else "-")
        rows.append(row)
    return format_table(
        "Earliest generation detected (first generation where >= half the chains are flagged)",
        ["family", *detectors],
        rows,
    )


def spearman_table(records: list[Record], detectors: list[str]) -> str | None:
    """Spearman rho of score vs generation, within each chain, averaged over chains.

    Within a chain, because score scales differ across datasets. Negative is right:
    the score (100 = indistinguishable) should fall as generations pass.
    """
    gens = [r for r in records if r["case"]["kind"] == "generation"]
    if not gens:
        return None
    rows = []
    for (family,), group in _grouped(gens, lambda c: (c["family"],)).items():
        row = [family]
        chains = _grouped(group, lambda c: (c["dataset"], c["chain"]))
        for d in detectors:
            rhos = []
            has_score = False
            for chain in chains.values():
                points = [
                    (r["case"]["generation"], ok["score"])
                    for r in chain
                    if (ok := _ok(r, d)) is not None and ok["score"] is not None
                ]
                has_score = has_score or bool(points)
                if len(points) >= 3 and len({s for _, s in points}) > 1:
                    rho = stats.spearmanr(*zip(*points, strict=True)).statistic
                    if np.isfinite(rho):
                        rhos.append(rho)
            if not has_score:
                row.append("n/a")
            elif not rhos:
                row.append("-")
            else:
                row.append(f"{np.mean(rhos):+.2f} ({len(rhos)})")
        rows.append(row)
    return format_table(
        "Spearman rho of score vs generation, mean over chains (chains); negative = score falls",
        ["family", *detectors],
        rows,
    )


def mixture_table(records: list[Record], detectors: list[str]) -> str | None:
    mixes = [r for r in records if r["case"]["kind"] == "mixture"]
    if not mixes:
        return None
    rows = []
    groups = _grouped(mixes, lambda c: (c["fraction"], c["generation"]), ordered=True)
    for (fraction, generation), group in groups.items():
        rows.append(
            [f"{fraction:.0%}", generation, len(group), *(_rate(group, d) for d in detectors)]
        )
    return format_table(
        "Detection of real candidates with a fraction of rows replaced by generation-g output",
        ["replaced", "gen", "cases", *detectors],
        rows,
    )


def shift_table(records: list[Record], detectors: list[str]) -> str | None:
    shifts = [r for r in records if r["case"]["kind"] == "shift"]
    if not shifts:
        return None
    rows = []
    for (kind,), group in _grouped(shifts, lambda c: (c["shift"].split(":")[0],)).items():
        rows.append([kind, "collapsed", len(group), *(_rate(group, d) for d in detectors)])
        rows.append([kind, "shift", len(group), *(_rate(group, d, "shift") for d in detectors)])
    return format_table(
        "Ordinary shift (not collapse): 'collapsed' should be low, 'shift' high (n/a: no shift notion)",
        ["shift", "verdict", "cases", *detectors],
        rows,
    )


def seconds_table(records: list[Record], detectors: list[str]) -> str | None:
    if not records:
        return None
    rows = []
    by_kind = _grouped(records, lambda c: (c["kind"],))
    for label, group in [*((k, g) for (k,), g in by_kind.items()), ("all", records)]:
        row = [label, len(group)]
        for d in detectors:
            secs = [x["seconds"] for x in (_ok(r, d) for r in group) if x is not None]
            row.append(f"{np.mean(secs):.3f}" if secs else "-")
        rows.append(row)
    return format_table(
        "Mean seconds per case (detector's own compute time)",
        ["kind", "cases", *detectors],
        rows,
    )


def error_table(records: list[Record], detectors: list[str]) -> str | None:
    counts = {d: sum(1 for r in records if "error" in r["results"].get(d, {})) for d in detectors}
    if not any(counts.values()):
        return None
    firsts = {}
    for d in detectors:
        for r in records:
            if "error" in r["results"].get(d, {}):
                firsts[d] = f"{r['case']['id']}: {r['results'][d]['error']}"[:160]
                break
    rows = [[d, counts[d], firsts.get(d, "")] for d in detectors]
    return format_table(
        "Errors (cases where a detector raised)", ["detector", "errors", "first"], rows
    )


def all_tables(records: list[Record], detectors: list[str]) -> str:
    builders = (
        false_alarm_table,
        generation_table,
        earliest_table,
        spearman_table,
        mixture_table,
        shift_table,
        seconds_table,
        error_table,
    )
    tables = [t for t in (b(records, detectors) for b in builders) if t]
    return "\n\n".join(tables)
