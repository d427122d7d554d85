"""Gate reports on real data for the tracking tests (the fixtures are in conftest.py).

The collapsed candidate is an honest imitation of a model's output that lost the
tails: the other half of the penguins with every body measurement moved halfway to its
median, which halves its spread and keeps its centre.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from collapse_callbacks import CollapseGate, GateReport
from collapse_callbacks.profile.table import Profile
from collapse_callbacks.tracking.histograms import ColumnHistogram, worst_column_histograms

SHRUNK = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]


@dataclass(frozen=True)
class Checked:
    """A report with the profiles it was computed from and the histograms of them."""

    report: GateReport
    reference: Profile
    candidate: Profile
    histograms: list[ColumnHistogram]
    candidate_frame: pd.DataFrame


def check(gate: CollapseGate, candidate: pd.DataFrame) -> Checked:
    report = gate.check(candidate)
    # compare() reuses the gate's cached reference profile and profiles the candidate
    # again with the same seed: the profiles the report was computed from.
    comparison, _ = gate.compare(candidate)
    histograms = worst_column_histograms(report, comparison.reference, comparison.candidate)
    return Checked(report, comparison.reference, comparison.candidate, histograms, candidate)


def shrink_to_median(frame: pd.DataFrame, columns: list[str], factor: float) -> pd.DataFrame:
    shrunk = frame.copy()
    median = frame[columns].median()
    shrunk[columns] = median + factor * (frame[columns] - median)
    return shrunk
