"""Signals of text, token and tensor columns, joined to the dimension they belong to.

The tabular dimensions compute their own evidence; the sequence and vector modules
compute theirs per dimension name (``SIGNALS``). A dimension that could not run on the
tabular columns alone (a table of one text column has no numeric column to compare)
still runs on the others' signals.
"""

from __future__ import annotations

import dataclasses

from collapse_callbacks.comparison import Comparison
from collapse_callbacks.dimensions.base import DimensionEvidence


def extra_signals(name: str, comparison: Comparison):
    from collapse_callbacks.dimensions import sequences, vectors

    signals, statistics = [], {}
    for module in (sequences, vectors):
        compute = module.SIGNALS.get(name)
        if compute is None:
            continue
        more, figures = compute(comparison)
        signals.extend(more)
        statistics.update(figures)
    return signals, statistics


def with_modalities(evidence: DimensionEvidence, comparison: Comparison) -> DimensionEvidence:
    signals, statistics = extra_signals(evidence.name, comparison)
    if not signals:
        return evidence
    if evidence.not_run is not None:
        return DimensionEvidence(
            evidence.name,
            signals=tuple(signals),
            statistics={**evidence.statistics, **statistics},
        )
    return dataclasses.replace(
        evidence,
        signals=evidence.signals + tuple(signals),
        statistics={**evidence.statistics, **statistics},
    )
