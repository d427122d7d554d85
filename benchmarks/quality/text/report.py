"""Tables of the text harness, one column per detector, in the tabular report's style.

Records are ``{"case": TextCase.labels(), "results": {detector: Verdict dict or
{"error": ...}}}``; ``gate-tokens`` answers only the cases marked ``loader`` and shows
``-`` elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import stats

from ..report import (
    _grouped,
    _ok,
    _rate,
    error_table,
    false_alarm_table,
    format_table,
    seconds_table,
)

Record = dict
GATES = ("collapse-gate", "gate-tokens", "gate-tokens-refvocab")


def generation_table(records: list[Record], detectors: list[str]) -> str | None:
    gens = [r for r in records if r["case"]["kind"] == "generation"]
    if not gens:
        return None
    rows = []
    groups = _grouped(gens, lambda c: (c["dataset"], c["family"], c["generation"]))
    for (corpus, family, generation), group in groups.items():
        rows.append([corpus, family, generation, len(group), *(_rate(group, d) for d in detectors)])
    by_gen = _grouped(gens, lambda c: (c["generation"],), ordered=True)
    for (generation,), group in by_gen.items():
        rows.append(["all", "", generation, len(group), *(_rate(group, d) for d in detectors)])
    return format_table(
        "Detection by corpus, generator and generation (gen 0 = the real candidate: a false alarm)",
        ["corpus", "family", "gen", "cases", *detectors],
        rows,
    )


def earliest_table(records: list[Record], detectors: list[str]) -> str | None:
    gens = [r for r in records if r["case"]["kind"] == "generation" and r["case"]["generation"]]
    if not gens:
        return None
    rows = []
    for (corpus, family), group in _grouped(gens, lambda c: (c["dataset"], c["family"])).items():
        row = [corpus, family]
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
        ["corpus", "family", *detectors],
        rows,
    )


def spearman_table(records: list[Record], detectors: list[str]) -> str | None:
    gens = [r for r in records if r["case"]["kind"] == "generation"]
    if not gens:
        return None
    rows = []
    for (corpus, family), group in _grouped(gens, lambda c: (c["dataset"], c["family"])).items():
        row = [corpus, family]
        for d in detectors:
            rhos, has_score, enough = [], False, False
            for chain in _grouped(group, lambda c: (c["chain"],)).values():
                points = [
                    (r["case"]["generation"], ok["score"])
                    for r in chain
                    if (ok := _ok(r, d)) is not None and ok["score"] is not None
                ]
                has_score = has_score or bool(points)
                enough = enough or len(points) >= 3
                if len(points) >= 3 and len({s for _, s in points}) > 1:
                    rho = stats.spearmanr(*zip(*points, strict=True)).statistic
                    if np.isfinite(rho):
                        rhos.append(rho)
            if not has_score:
                row.append("n/a")
            elif rhos:
                row.append(f"{np.mean(rhos):+.2f} ({len(rhos)})")
            else:
                row.append("const" if enough else "-")
        rows.append(row)
    return format_table(
        "Spearman rho of score vs generation 0..G, mean over chains (chains); negative = "
        "score falls; const = the score never moved; - = under 3 generations answered",
        ["corpus", "family", *detectors],
        rows,
    )


def mixture_table(records: list[Record], detectors: list[str]) -> str | None:
    mixes = [r for r in records if r["case"]["kind"] == "mixture"]
    if not mixes:
        return None
    rows = []
    groups = _grouped(mixes, lambda c: (c["fraction"], c["generation"], c["family"]), ordered=True)
    for (fraction, generation, family), group in groups.items():
        rows.append(
            [
                f"{fraction:.0%}",
                generation,
                family,
                len(group),
                *(_rate(group, d) for d in detectors),
            ]
        )
    for (fraction,), group in _grouped(mixes, lambda c: (c["fraction"],), ordered=True).items():
        rows.append(
            [f"{fraction:.0%}", "all", "all", len(group), *(_rate(group, d) for d in detectors)]
        )
    return format_table(
        "Detection of real candidates with a fraction of documents replaced by generation-g "
        "output (both corpora pooled)",
        ["replaced", "gen", "family", "cases", *detectors],
        rows,
    )


def _signal_columns(records: list[Record]) -> list[tuple[str, Callable[[dict], bool]]]:
    columns: list[tuple[str, Callable[[dict], bool]]] = [
        (
            "real",
            lambda c: c["kind"] == "real" or (c["kind"] == "generation" and not c["generation"]),
        )
    ]
    gens = sorted(
        {r["case"]["generation"] for r in records if r["case"]["kind"] == "generation"} - {0}
    )
    for g in gens:
        columns.append(
            (f"gen{g}", lambda c, g=g: c["kind"] == "generation" and c["generation"] == g)
        )
    fractions = sorted({r["case"]["fraction"] for r in records if r["case"]["kind"] == "mixture"})
    for f in fractions:
        columns.append(
            (f"mix{f:.0%}", lambda c, f=f: c["kind"] == "mixture" and c["fraction"] == f)
        )
    return columns


def signal_table(records: list[Record], detector: str) -> str | None:
    """Share of cases in which each dimension failed / each signal fired.

    ``real`` pools the real-vs-real splits and the generation-0 candidates (false
    alarms); the other columns are detections. Rows: dimensions (``[dim]``) first, then
    the signals that fired at least once; the count of signals that ran but never fired
    is in the title.
    """
    answered = [(r["case"], ok) for r in records if (ok := _ok(r, detector)) is not None]
    if not answered:
        return None
    columns = _signal_columns(records)
    names: dict[str, None] = {}
    for _, ok in answered:
        names.update(dict.fromkeys(ok.get("signals") or {}))
    dims = [n for n in names if "." not in n]
    sigs = [n for n in names if "." in n]
    fired_once = [n for n in sigs if any((ok.get("signals") or {}).get(n) for _, ok in answered)]
    rows = []
    for name in [*dims, *fired_once]:
        row = [f"[dim] {name}" if name in dims else name]
        for _, belongs in columns:
            values = [
                bool(ok["signals"][name])
                for case, ok in answered
                if belongs(case) and name in (ok.get("signals") or {})
            ]
            row.append(f"{np.mean(values):.2f}" if values else "-")
        rows.append(row)
    header = ["dimension / signal", *(label for label, _ in columns)]
    cases = ["cases", *(str(sum(belongs(c) for c, _ in answered)) for _, belongs in columns)]
    silent = len(sigs) - len(fired_once)
    title = (
        f"{detector}: share of cases where each dimension failed / each signal fired "
        f"({len(fired_once)} signals fired at least once; {silent} more ran and never fired)"
    )
    if not rows:
        return f"{title}\n(no dimension ran)"
    return format_table(title, header, [cases, *rows])


def loader_table(records: list[Record], detectors: list[str]) -> str | None:
    subset = [r for r in records if r["case"].get("loader")]
    if not subset:
        return None

    def key(c: dict) -> tuple:
        if c["kind"] == "real":
            return ("real", "", "")
        if c["kind"] == "generation":
            return ("generation", c["family"], c["generation"])
        return ("mixture", f"{c['family']} {c['fraction']:.0%}", c["generation"])

    rows = []
    for (kind, what, g), group in _grouped(subset, key).items():
        rows.append([kind, what, g, len(group), *(_rate(group, d) for d in detectors)])
    return format_table(
        "Loader subset: the same cases as strings (collapse-gate) and as DataLoaders of "
        "input_ids (gate-tokens)",
        ["kind", "family", "gen", "cases", *detectors],
        rows,
    )


def generation_seconds_table(timings: dict[str, list[float]]) -> str | None:
    if not timings:
        return None
    rows = [
        [key, len(values), f"{np.mean(values):.1f}", f"{np.sum(values):.1f}"]
        for key, values in timings.items()
    ]
    return format_table(
        "Generating the chains (fit + sample, every generation and temperature of one chain)",
        ["corpus/model", "chains", "s per chain", "s total"],
        rows,
    )


def all_tables(
    records: list[Record], detectors: list[str], timings: dict[str, list[float]] | None = None
) -> str:
    tables = [
        false_alarm_table(records, detectors),
        generation_table(records, detectors),
        earliest_table(records, detectors),
        spearman_table(records, detectors),
        mixture_table(records, detectors),
        *(signal_table(records, d) for d in detectors if d in GATES),
        loader_table(records, detectors),
        seconds_table(records, detectors),
        generation_seconds_table(timings or {}),
        error_table(records, detectors),
    ]
    return "\n\n".join(t for t in tables if t)
