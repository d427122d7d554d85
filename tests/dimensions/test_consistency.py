"""Statistical consistency on real data: known answers, real splits, determinism."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from collapse_callbacks.dimensions import consistency
from collapse_callbacks.dimensions.base import SignalKind
from collapse_callbacks.profiling import compare_sources
from helpers import fired, signal, split

ALPHA = 0.01


def evidence(reference: pd.DataFrame, candidate: pd.DataFrame, seed: int = 0):
    comparison, _ = compare_sources(reference, candidate, alpha=ALPHA, seed=seed)
    return consistency.run(comparison)


def test_identical_data_fires_nothing(breast_cancer):
    result = evidence(breast_cancer, breast_cancer)
    assert result.name == consistency.NAME == "statistical_consistency"
    assert {s.name for s in result.signals} == {"chi_square", "anderson_darling", "mann_whitney"}
    assert all(s.kind is SignalKind.SHIFT for s in result.signals)
    assert not [s for s in result.signals if s.fires(ALPHA)]
    scores = [s.score() for s in result.signals]
    assert np.median(scores) == 100.0 and min(scores) > 95
    chi = signal(result, "chi_square", "target")
    assert chi.value == 0.0 and chi.p_value == 1.0


def test_real_splits_pass(breast_cancer, digits, penguins):
    for frame in (breast_cancer, digits, penguins):
        for seed in (0, 1):
            result = evidence(*split(frame, seed), seed=seed)
            assert fired(result) == [], [s.sentence for s in fired(result)]
            assert np.median([s.score() for s in result.signals]) == 100.0


def test_halved_spread_fires_anderson_darling_not_mann_whitney(breast_cancer):
    """A spread halved around the median keeps every value on its side of the median:
    Mann-Whitney (a location test) sees nothing, Anderson-Darling sees the shape."""
    candidate = breast_cancer.copy()
    for column in breast_cancer.columns[:-1]:
        median = breast_cancer[column].median()
        candidate[column] = median + 0.5 * (breast_cancer[column] - median)
    result = evidence(breast_cancer, candidate)
    firing = fired(result)
    for column in breast_cancer.columns[:-1]:
        ad = signal(result, "anderson_darling", column)
        assert ad in firing
        assert ad.effect > 0.2
        mw = signal(result, "mann_whitney", column)
        assert mw not in firing
        assert abs(mw.value - 0.5) < 0.1
    assert (
        "`mean radius` is distributed differently"
        in signal(result, "anderson_darling", "mean radius").sentence
    )


def test_location_shift_fires_mann_whitney(breast_cancer):
    candidate = breast_cancer.copy()
    candidate["mean radius"] += breast_cancer["mean radius"].std() * 0.75
    result = evidence(breast_cancer, candidate)
    mw = signal(result, "mann_whitney", "mean radius")
    assert mw in fired(result)
    assert mw.value > 0.65
    assert "tends to be larger" in mw.sentence
    ad = signal(result, "anderson_darling", "mean radius")
    assert ad in fired(result)
    # Below scipy's table (p floored at 0.001) the asymptotic tail takes over.
    assert ad.p_value < 1e-8
    assert result.statistics["mean radius.anderson_darling_p_beyond_table"] == 1.0
    # Nothing else moved.
    assert {s.column for s in fired(result)} == {"mean radius"}


def test_chi_square_known_answer(penguins):
    gentoo = penguins[penguins["species"] == "Gentoo"]
    candidate = pd.concat([penguins[penguins["species"] != "Gentoo"], gentoo.iloc[:20]])
    result = evidence(penguins, candidate)
    chi = signal(result, "chi_square", "species")
    table = np.array([[152, 124, 68], [152, 20, 68]])
    expected = stats.chi2_contingency(table, correction=False)
    assert result.statistics["species.chi_square"] == pytest.approx(expected.statistic)
    assert chi.p_value == pytest.approx(expected.pvalue)
    n = table.sum()
    assert chi.value == pytest.approx(np.sqrt(expected.statistic / n - 2 / (n - 1)))
    assert chi in fired(result)
    assert "`Gentoo` is 36% of the reference and 8.3% of the candidate" in chi.sentence


def test_merged_table_pools_categories_expected_under_five():
    reference = Counter({"a": 500, "b": 300, "c": 4, "d": 3, "e": 1})
    candidate = Counter({"a": 480, "b": 310, "c": 2, "f": 1})
    table, labels = consistency.merged_table(reference, candidate)
    # c, d, e, f (11 rows: expected under 5 in the smaller side) pool into one bucket.
    assert labels == ["b", "a", None]
    assert table.tolist() == [[300, 500, 8], [310, 480, 3]]
    # A bucket still too small is folded into the smallest kept category.
    table, labels = consistency.merged_table(Counter({"a": 100, "b": 6}), Counter({"a": 100}))
    assert labels == [None]
    assert table.tolist() == [[106], [100]]


def test_discrete_numeric_columns_use_chi_square(digits):
    result = evidence(*split(digits))
    pixel = signal(result, "chi_square", "pixel_3_3")
    assert pixel.kind is SignalKind.SHIFT
    assert not [s for s in result.signals if s.name == "anderson_darling"]
    assert signal(result, "mann_whitney", "pixel_3_3").p_value > 0.001


def test_asymptotic_anderson_darling_tail():
    # Known points of the limiting A2 distribution (Anderson & Darling 1954).
    assert consistency._ad_asymptotic_sf(2.492) == pytest.approx(0.05, abs=2e-4)
    assert consistency._ad_asymptotic_sf(3.857) == pytest.approx(0.01, abs=5e-4)
    assert consistency._ad_asymptotic_sf(20.0) < consistency._ad_asymptotic_sf(10.0) < 1e-4


def test_small_candidate_runs_only_the_count_tests(penguins):
    result = evidence(penguins, penguins.iloc[:15])
    assert result.statistics["sample_tests_skipped_matched_rows"] == 15
    assert {s.name for s in result.signals} == {"chi_square"}


def test_not_run_without_columns_to_test():
    text = pd.DataFrame({"note": [f"specimen number {i} was measured twice" for i in range(50)]})
    result = evidence(text, text)
    assert result.signals == ()
    assert "no numeric or categorical column" in result.not_run


def test_same_seed_same_evidence(breast_cancer):
    reference, candidate = split(breast_cancer, 5)
    assert repr(evidence(reference, candidate, seed=3)) == repr(
        evidence(reference, candidate, seed=3)
    )
    assert repr(evidence(reference, candidate, seed=4)) != repr(
        evidence(reference, candidate, seed=3)
    )
