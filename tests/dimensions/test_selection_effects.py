"""A selection of real rows on one column can thin both tails of another column and raise
the duplicate rate; re-tested on the rows matched on that column, these read as
consequences of the selection, while the same damage made independently still fails."""

from __future__ import annotations

import numpy as np
import pandas as pd

from collapse_callbacks import CollapseGate, GateReport
from collapse_callbacks.dimensions import generalization
from collapse_callbacks.profiling import compare_sources


def selection_signal(reference, candidate):
    comparison, _ = compare_sources(reference, candidate, alpha=0.01, seed=0)
    found = [s for s in generalization.run(comparison).signals if s.name == "one_column_selection"]
    assert found and found[0].p_value < 0.01, "the candidate should read as a selection"
    return found[0]


def flights(n: int, seed: int) -> pd.DataFrame:
    """Departure and arrival hours that wrap at midnight, as flights' HHMM times do."""
    rng = np.random.default_rng(seed)
    departure = rng.uniform(0.0, 24.0, n)
    duration = rng.uniform(1.0, 5.0, n)
    return pd.DataFrame(
        {
            "departure": departure.round(2),
            "arrival": ((departure + duration) % 24.0).round(2),
            "distance": (duration * 450 + rng.normal(0, 40, n)).round(0),
            "fare": rng.normal(200.0, 50.0, n).round(2),
        }
    )


def late_arrivals(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["arrival"] > frame["arrival"].quantile(0.3)]


def test_a_filter_that_thins_both_tails_of_another_column_is_shift():
    # The earliest departures arrive early and the latest arrive after midnight: keeping
    # late arrivals loses both tails of `departure`, which no generator had to do.
    reference, candidate = flights(4_000, 0), late_arrivals(flights(4_000, 1))
    assert "tail_coverage_1%:departure" in selection_signal(reference, candidate).explains
    report = CollapseGate(reference).check(candidate)
    tails = report.dimensions["distribution_fidelity"].signals
    assert any(s.name == "tail_coverage_1%" and s.column == "departure" for s in tails)
    assert report.shift and not report.collapsed
    assert "matched on `arrival` show tail coverage 1% in `departure`" in report.reasons[-1]
    back = GateReport.from_json(report.to_json())
    signals = report.dimensions["generalization_gap"].signals
    assert back.dimensions["generalization_gap"].signals == signals


def test_tails_lost_apart_from_the_selection_still_fail():
    # The same filter, and then both tails of `fare` cut off: the reference matched on
    # `arrival` keeps them.
    reference, candidate = flights(4_000, 0), late_arrivals(flights(4_000, 1))
    low, high = candidate["fare"].quantile([0.03, 0.97])
    trimmed = candidate[candidate["fare"].between(low, high)]
    assert "tail_coverage_1%:fare" not in selection_signal(reference, trimmed).explains
    report = CollapseGate(reference).check(trimmed)
    assert report.collapsed
    assert "in `fare`; both tails are thinner" in report.reasons[0]


def households(seed: int) -> pd.DataFrame:
    """Rows of the higher `income` half appear twice (a household surveyed in two
    years), so a subpopulation selected on income repeats more rows."""
    rng = np.random.default_rng(seed)
    n = 3_000
    base = pd.DataFrame(
        {
            "income": rng.lognormal(10, 0.6, n).round(-2),
            "age": rng.integers(20, 80, n),
            "visits": rng.poisson(3, n),
        }
    )
    repeated = base[base["income"] > base["income"].median()]
    return pd.concat([base, repeated]).sample(frac=1.0, random_state=seed)


def test_a_selected_subpopulation_that_repeats_more_is_shift():
    whole = households(0)
    reference, rest = whole.iloc[:2_500], whole.iloc[2_500:]
    candidate = rest[rest["income"] > rest["income"].quantile(0.3)]
    explains = selection_signal(reference, candidate).explains
    assert {"duplicate_rate", "near_duplicate_rate"} <= set(explains)
    report = CollapseGate(reference).check(candidate)
    duplicates = [s for s in report.diversity.signals if s.name == "duplicate_rate"]
    assert duplicates[0].value > duplicates[0].reference_value
    assert report.shift and not report.collapsed


def test_copies_a_selection_does_not_make_still_fail():
    whole = households(0)
    reference, rest = whole.iloc[:2_500], whole.iloc[2_500:]
    candidate = rest[rest["income"] > rest["income"].quantile(0.3)]
    copied = pd.concat([candidate, candidate.iloc[: len(candidate) // 4]])
    assert "duplicate_rate" not in selection_signal(reference, copied).explains
    assert CollapseGate(reference).check(copied).collapsed
