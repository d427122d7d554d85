"""Generalization gap (classifier two-sample test) on real data: a filtered real
selection is told apart by one column and reads as shift; collapse is joint."""

from __future__ import annotations

import numpy as np

from collapse_callbacks import CollapseGate
from collapse_callbacks.dimensions import generalization
from collapse_callbacks.profiling import compare_sources
from helpers import split


def evidence(reference, candidate, seed=0):
    comparison, _ = compare_sources(reference, candidate, alpha=0.01, seed=seed)
    return generalization.run(comparison)


def test_a_real_filter_on_one_column_is_told_apart_by_that_column(breast_cancer):
    reference, rest = split(breast_cancer)
    kept = rest[rest["worst texture"] > np.percentile(rest["worst texture"], 30)]
    signal = evidence(reference, kept).signals[0]
    assert signal.name == "classifier_auc_one_column"
    assert signal.value > 0.5
    # `worst texture` or its close twin `mean texture` (correlation 0.91)
    assert "texture` alone does nearly as well" in signal.sentence
    report = CollapseGate(reference).check(kept)
    assert report.shift and not report.collapsed


def test_a_jointly_narrowed_candidate_is_not_confined(breast_cancer):
    reference, candidate = split(breast_cancer)
    numeric = candidate.select_dtypes("number").columns
    shrunk = candidate.copy()
    # Every column pulled a third of the way to its median: no single column's ranking
    # tells the sets apart, the joint spread does.
    shrunk[numeric] = candidate[numeric].median() + 0.67 * (
        candidate[numeric] - candidate[numeric].median()
    )
    result = evidence(reference, shrunk)
    signal = result.signals[0]
    assert signal.name == "classifier_auc"
    assert signal.fires(0.01)
    # No one column carries half the classifier's edge, so the selection test's four
    # fits are not run: a selection on one column would show in that column's ranking.
    statistics = result.statistics
    column_edge = abs(statistics["best_single_column_auc"] - 0.5)
    assert column_edge < generalization.SELECTION_COLUMN_SHARE * (statistics["auc"] - 0.5)
    assert "selection_explains" not in statistics
    assert [s.name for s in result.signals] == ["classifier_auc"]


def test_a_real_split_is_not_told_apart(breast_cancer):
    reference, candidate = split(breast_cancer, seed=2)
    assert not [s for s in evidence(reference, candidate).signals if s.fires(0.01)]


def test_a_real_filter_is_explained_as_a_selection_on_its_column(digits):
    reference, rest = split(digits)
    kept = rest[rest["pixel_5_2"] > np.percentile(rest["pixel_5_2"], 30)]
    result = evidence(reference, kept)
    (selection,) = [s for s in result.signals if s.name == "one_column_selection"]
    assert selection.column == "pixel_5_2"
    assert result.statistics["selection_explains"] == 1.0
    assert result.statistics["selection_weighted_auc"] < 0.55 < result.statistics["auc"]
    report = CollapseGate(reference).check(kept)
    assert report.shift and not report.collapsed
    assert "follow from the selection on `pixel_5_2`" in report.reasons[-1]


def test_matching_keeps_enough_rows_to_explain_a_filter_on_a_small_dataset(breast_cancer):
    # 284 reference rows; the candidate keeps the rows above the 30th percentile of
    # `mean radius`. Both sides matched on its deciles keep the overlap, about 70% of
    # the reference: rejection sampling of the reference alone kept too few to learn.
    reference, rest = split(breast_cancer)
    kept = rest[rest["mean radius"] > np.percentile(rest["mean radius"], 30)]
    result = evidence(reference, kept)
    assert result.statistics["selection_rows"] > 0.5 * len(kept)
    assert result.statistics["selection_explains"] == 1.0
    (selection,) = [s for s in result.signals if s.name == "one_column_selection"]
    assert selection.column in {"mean radius", "mean perimeter", "mean area"}  # collinear
    assert "matching the two sides' rows on that column's deciles" in selection.sentence


def test_a_narrowed_candidate_is_not_explained_as_a_selection(digits):
    reference, candidate = split(digits)
    pixels = [c for c in digits.columns if c.startswith("pixel")]
    narrowed = candidate.copy()
    narrowed[pixels] = candidate[pixels].mean() + 0.6 * (
        candidate[pixels] - candidate[pixels].mean()
    )
    result = evidence(reference, narrowed)
    assert result.statistics["auc"] > 0.8
    assert result.statistics.get("selection_explains", 0.0) == 0.0
    assert CollapseGate(reference).check(narrowed).collapsed


def test_matching_bins_give_a_heavy_value_its_own_bin():
    # A zero-inflated count: two thirds zeros in the reference, none in the candidate
    # (real rows filtered on > 0). In a decile with its neighbours the zeros would be
    # matched to small positive values.
    rng = np.random.default_rng(0)
    positive = rng.exponential(2.0, size=2_000) + 0.01
    reference = np.concatenate([np.zeros(1_400), positive[:700]])
    candidate = positive[700:1_700]
    bins_r, bins_c, k = generalization._matching_bins(reference, candidate)
    zero_bins = set(bins_r[reference == 0])
    assert len(zero_bins) == 1
    assert not zero_bins & set(bins_c)
    assert not zero_bins & set(bins_r[reference > 0])
    assert k <= 1 + generalization.SELECTION_BINS + 1
    # A column of few values is matched value by value.
    bins_r, bins_c, k = generalization._matching_bins(np.array([1.0, 2, 2, 5]), np.array([5.0, 1]))
    assert k == 3 and list(bins_r) == [0, 1, 1, 2] and list(bins_c) == [2, 0]


def test_the_classifier_uses_up_to_four_reference_rows_per_candidate_row(breast_cancer):
    candidate, reference = breast_cancer.iloc[:100], breast_cancer.iloc[100:]
    statistics = evidence(reference, candidate).statistics
    assert statistics["train_rows"] + statistics["test_rows"] == 100 + 400
    # A reference smaller than four candidates is used whole.
    statistics = evidence(reference.iloc[:250], candidate).statistics
    assert statistics["train_rows"] + statistics["test_rows"] == 100 + 250
