"""Real rows reweighted on a sparse column move the eigen-spectrum and rank correlations
of the whole row; measured again without that column, those joint signals vanish and the
reweighting reads as shift. Joint damage among the other columns survives the re-test."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from collapse_callbacks import CollapseGate
from collapse_callbacks.detector import decide
from collapse_callbacks.dimensions import column_effects, generalization
from collapse_callbacks.dimensions.base import SignalKind
from collapse_callbacks.gate import run_dimensions
from collapse_callbacks.profiling import compare_sources


def survey(n: int, seed: int) -> pd.DataFrame:
    """A marriage survey's shape: most respondents report no affairs, the rest a
    long-tailed count (as in statsmodels' `fair`)."""
    rng = np.random.default_rng(seed)
    age = rng.normal(35, 8, n).round(0)
    return pd.DataFrame(
        {
            "age": age,
            "years": np.clip(age - 20 + rng.normal(0, 4, n), 0, None).round(1),
            "children": rng.poisson(1.2, n).astype(float),
            "rating": rng.integers(1, 6, n).astype(float),
            "education": rng.choice([9, 12, 14, 16, 17, 20], n).astype(float),
            "affairs": np.where(rng.random(n) < 0.68, 0.0, rng.exponential(2.0, n).round(1)),
        }
    )


def tilted(frame: pd.DataFrame, column: str, n: int, seed: int) -> pd.DataFrame:
    """``n`` rows drawn with weight exp(z / 2) of the column's z-score (the benchmark's
    reweighting)."""
    rng = np.random.default_rng(seed)
    values = frame[column].to_numpy(float)
    weights = np.exp(0.5 * (values - values.mean()) / values.std())
    rows = rng.choice(len(frame), n, replace=False, p=weights / weights.sum())
    return frame.iloc[np.sort(rows)].reset_index(drop=True)


@pytest.fixture(scope="module")
def reweighted():
    return survey(3_000, 0), tilted(survey(9_000, 1), "affairs", 3_000, 0)


def test_a_reweighting_reads_as_shift_when_the_classifier_reads_no_selection(
    reweighted, monkeypatch
):
    # The classifier's selection test would explain this one; switched off, as it is
    # when a noisier column leaves the classifier near chance (fair's `affairs`).
    monkeypatch.setattr(generalization, "SELECTION_WHEN_P_BELOW", 0.0)
    reference, candidate = reweighted
    report = CollapseGate(reference).check(candidate)
    fired = {
        r.signals[i].key for r in [*report.dimensions.values(), report.diversity] for i in r.fired
    }
    assert {"spectral_entropy", "effective_rank_ratio"} <= fired
    assert "one_column_selection:affairs" not in fired
    assert report.shift and not report.collapsed
    assert "change only through `affairs`" in report.reasons[-1]


def firing(comparison):
    evidence, diversity = run_dimensions(comparison)
    verdict = decide(evidence, diversity, comparison.alpha)
    return list(verdict.decisive), list(verdict.firing)


def test_the_joint_signals_vanish_without_the_reweighted_column(reweighted, monkeypatch):
    monkeypatch.setattr(generalization, "SELECTION_WHEN_P_BELOW", 0.0)
    comparison, _ = compare_sources(*reweighted, alpha=0.01, seed=0)
    decisive, fired = firing(comparison)
    assert decisive and all(s.name in column_effects.JOINT_NAMES for s in decisive)
    effect = column_effects.retest(comparison, decisive, fired, 1.0)
    assert effect is not None and effect.columns == ("affairs",)
    assert set(effect.explains) == {s.key for s in decisive}


def test_broken_correlations_among_the_other_columns_survive_the_retest(reweighted):
    # The same reweighting, and `years` redrawn apart from `age`: its correlation with
    # age is gone whichever column is left out.
    reference, candidate = reweighted
    candidate = candidate.assign(
        years=np.random.default_rng(5).permutation(candidate["years"].to_numpy())
    )
    comparison, _ = compare_sources(reference, candidate, alpha=0.01, seed=0)
    correlation_signals = [
        s
        for s in run_dimensions(comparison)[0][1].signals
        if s.name in ("pearson_rms_change", "spearman_rms_change")
    ]
    assert all(s.p_value < 1e-6 for s in correlation_signals)
    shift = [
        s
        for s in run_dimensions(comparison)[0][-1].signals
        if s.kind is SignalKind.SHIFT and s.column == "affairs"
    ]
    assert column_effects.retest(comparison, correlation_signals, shift, 1.0) is None


def test_no_retest_when_a_signal_of_one_column_fails_the_gate(reweighted):
    comparison, _ = compare_sources(*reweighted, alpha=0.01, seed=0)
    evidence, _ = run_dimensions(comparison)
    tails = [s for e in evidence for s in e.signals if s.name.startswith("tail_coverage")]
    assert tails and column_effects.retest(comparison, tails[:1], tails, 1.0) is None


def test_leaving_a_column_out_keeps_the_samples_and_splits(reweighted):
    comparison, _ = compare_sources(*reweighted, alpha=0.01, seed=0)
    without = comparison.without("affairs")
    assert "affairs" not in without.roles and len(without.roles) == len(comparison.roles) - 1
    for (a, b), (c, d) in zip(
        [comparison.observed_parts, *comparison.null_parts],
        [without.observed_parts, *without.null_parts],
    ):
        assert np.array_equal(a.rows, c.rows) and np.array_equal(b.rows, d.rows)


def test_a_timestamp_of_the_next_half_year_is_drift_not_collapse(digits):
    # Every row of the candidate lies beyond the reference's range in one column, so
    # the k-NN coverage and recall of the rows fall; without that column they do not.
    rng = np.random.default_rng(1)
    order = np.random.default_rng(0).permutation(len(digits))
    half = len(digits) // 2

    def stamped(rows, start):
        days = pd.to_timedelta(np.sort(rng.uniform(0, 180, len(rows))), unit="D")
        return digits.iloc[rows].assign(created_at=(pd.Timestamp(start) + days).values)

    reference = stamped(order[:half], "2024-01-01")
    candidate = stamped(order[half:], "2024-07-01")
    report = CollapseGate(reference, seed=0).check(candidate)
    assert report.diversity.fired  # coverage and recall fire on the rows ...
    assert not report.collapsed and report.shift  # ... and vanish without `created_at`
    assert any("change only through `created_at`:" in reason for reason in report.reasons)

    # An export's second time column (updated within a month) moved as far: both go.
    def updated(frame):
        later = pd.to_timedelta(rng.uniform(0, 30, len(frame)), unit="D")
        return frame.assign(updated_at=frame["created_at"] + later)

    report = CollapseGate(updated(reference), seed=0).check(updated(candidate))
    assert not report.collapsed and report.shift
    assert any(
        "change only through `created_at`, `updated_at`:" in reason for reason in report.reasons
    )


def test_only_columns_that_moved_away_join_the_most_shifted_one():
    from collapse_callbacks.data.roles import ColumnRole
    from collapse_callbacks.dimensions.base import Signal

    def shift(name, column, value, p):
        return Signal(name, SignalKind.SHIFT, column, value, 0.0, value, 0.1, 0.01, p, "")

    roles = {c: ColumnRole.NUMERIC for c in "abcd"}
    firing = [
        shift("ks", "a", 0.4, 1e-30),
        shift("ks", "b", 0.95, 1e-9),
        shift("ks", "c", 0.3, 1e-5),
    ]
    assert column_effects.shifted_columns(firing, roles) == ("a", "b")
    assert column_effects.shifted_columns(firing[2:], roles) == ("c",)
    assert column_effects.shifted_columns([], roles) == ()


def test_a_new_month_partition_is_drift_not_collapse(digits):
    # The month alone separates the rows (the classifier's AUC is 1.0); without it the
    # candidate is a real split.
    rng = np.random.default_rng(3)
    order = np.random.default_rng(0).permutation(len(digits))
    half = len(digits) // 2

    def months(rows, first):
        labels = [f"2024-{m:02d}" for m in rng.integers(first, first + 6, len(rows))]
        return digits.iloc[rows].assign(month=labels)

    report = CollapseGate(months(order[:half], 1), seed=0).check(months(order[half:], 7))
    assert report.dimensions["generalization_gap"].fired
    assert not report.collapsed and report.shift
    assert any("(classifier auc) change only through `month`" in r for r in report.reasons)


def test_the_classifier_is_retested_only_without_a_column_that_moved_away():
    from types import SimpleNamespace

    from collapse_callbacks.data.roles import ColumnRole
    from collapse_callbacks.dimensions.base import Signal

    def signal(name, kind, column, value, p):
        return Signal(name, kind, column, value, 0.0, value, 0.05, 0.01, p, "")

    classifier = signal("classifier_auc", SignalKind.STRUCTURE, None, 0.7, 1e-6)
    shifted = signal("ks", SignalKind.SHIFT, "a", 0.4, 1e-9)  # a filter's or a mixture's
    comparison = SimpleNamespace(roles={c: ColumnRole.NUMERIC for c in "ab"})
    assert column_effects.retest(comparison, [classifier], [classifier, shifted], 1.0) is None
