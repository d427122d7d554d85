"""The diversity analyzer on real data: duplicates, distinct values, PRDC, Vendi."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from collapse_callbacks import diversity
from collapse_callbacks.dimensions.base import SignalKind
from collapse_callbacks.profiling import compare_sources
from helpers import fired, signal, split

ALPHA = 0.01


def evidence(reference: pd.DataFrame, candidate: pd.DataFrame, seed: int = 0):
    comparison, _ = compare_sources(reference, candidate, alpha=ALPHA, seed=seed)
    return diversity.run(comparison)


@pytest.mark.parametrize(
    ("dataset", "distinct_columns"),
    [("penguins", 4), ("breast_cancer", 30), ("digits", 0)],  # columns with >= 20 values
)
def test_a_disjoint_real_split_passes(dataset, distinct_columns, request):
    result = evidence(*split(request.getfixturevalue(dataset)))
    assert result.not_run is None
    names = [s.name for s in result.signals]
    assert names.count("distinct_ratio") == distinct_columns
    assert set(names) - {"distinct_ratio"} == {
        "duplicate_rate",
        "near_duplicate_rate",
        "coverage",
        "recall",
        "vendi",
    }
    assert all(s.kind is SignalKind.NARROWING for s in result.signals)
    assert fired(result) == []
    assert min(s.score() for s in result.signals) >= 75
    # The reference's own figures, for "candidate x vs reference y".
    assert result.statistics["coverage_reference"] == pytest.approx(0.97, abs=0.03)
    assert result.statistics["precision"] > 0.85
    assert result.statistics["duplicate_rate"] == 0.0


def test_rows_repeated_twice_raise_duplicates_and_lower_distinct_ratios(breast_cancer):
    reference, rest = split(breast_cancer)
    half = rest.iloc[: len(rest) // 2]
    candidate = pd.concat([half, half]).sample(frac=1.0, random_state=0)
    result = evidence(reference, candidate)
    duplicates = signal(result, "duplicate_rate")
    # Whole-data figures: every candidate row is there twice, so exactly half repeat an
    # earlier one; the reference (284 rows, the same size) repeats none.
    assert duplicates.value == 0.5
    assert duplicates.reference_value == 0.0
    assert result.statistics["duplicate_rate_rows"] == len(candidate)
    assert duplicates in fired(result)
    assert "50% of the candidate's rows repeat an earlier row exactly" in duplicates.sentence
    assert signal(result, "near_duplicate_rate") in fired(result)
    ratios = [s for s in result.signals if s.name == "distinct_ratio"]
    assert len(ratios) == 30  # the numeric columns; `target` has two values
    assert sum(s in fired(result) for s in ratios) >= 27
    assert all(s.value < s.reference_value - 0.1 for s in ratios)


def test_one_species_keeps_precision_but_loses_coverage_recall_and_vendi(penguins):
    result = evidence(penguins, penguins[penguins.species == "Gentoo"])
    coverage, recall = signal(result, "coverage"), signal(result, "recall")
    # Gentoo are 124 of 344 penguins: about a third of the reference's support.
    assert coverage.value == pytest.approx(0.36, abs=0.08)
    assert recall.value == pytest.approx(0.36, abs=0.08)
    assert coverage.reference_value > 0.9 and recall.reference_value > 0.9
    assert {coverage, recall} <= set(fired(result))
    assert result.statistics["precision"] > 0.9
    assert "misses part of it" in coverage.sentence
    vendi = signal(result, "vendi")
    assert vendi.value < 0.6 * vendi.reference_value
    assert vendi in fired(result)


def test_one_digit_recalls_a_tenth_of_the_reference(digits):
    reference, rest = split(digits)
    result = evidence(reference, rest[rest.target == "0"])
    coverage, recall = signal(result, "coverage"), signal(result, "recall")
    assert recall.value < 0.15  # one digit of ten
    assert coverage.value < 0.45  # in 74 dimensions the reference's k-NN balls are wide
    assert {coverage, recall} <= set(fired(result))
    assert result.statistics["precision"] > 0.9
    # 64 pixels + 10 one-hot digits, projected on the 64 leading principal axes.
    assert result.statistics["distance_dimensions"] == 64


def test_prdc_known_answers():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(500, 3))
    same = diversity.prdc(real, real.copy())
    np.testing.assert_allclose(same[[0, 1, 3]], 1.0)  # precision, recall, coverage
    # density: each row lies in its own ball and in those of the rows it is among the 5
    # nearest of, (5 + 1) / 5 on average.
    assert same[2] == pytest.approx(1.2)
    far = diversity.prdc(real, real + 100.0)
    np.testing.assert_array_equal(far, 0.0)
    inner = diversity.prdc(real, real[np.linalg.norm(real, axis=1) < 1.0])
    assert inner[0] == 1.0 and inner[3] < 0.5  # inside the support, covering little


def test_vendi_counts_well_separated_clusters():
    rng = np.random.default_rng(0)
    vendi = diversity.RandomFourierVendi(2, 1.0, 512, rng)
    one_point = np.zeros((200, 2))
    assert vendi(one_point) == pytest.approx(1.0, abs=1e-6)
    four = np.repeat(np.array([[0.0, 0.0], [50.0, 0.0], [0.0, 50.0], [50.0, 50.0]]), 50, axis=0)
    assert vendi(four + rng.normal(scale=0.01, size=four.shape)) == pytest.approx(4.0, abs=0.3)


def test_vendi_features_of_subsets_give_the_same_score():
    # The signal computes every row's features once and scores subsets of them.
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 4))
    vendi = diversity.RandomFourierVendi(4, 2.0, 64, rng)
    rows = rng.permutation(300)[:120]
    assert vendi.of_features(vendi.features(x)[rows]) == pytest.approx(vendi(x[rows]), rel=1e-6)


def test_stacked_rows_index_the_two_samples_as_one():
    reference, candidate = np.arange(12.0).reshape(4, 3), -np.arange(9.0).reshape(3, 3)
    rows = np.array([6, 0, 4, 3, 5])
    stacked = diversity._StackedRows([reference, candidate])
    np.testing.assert_array_equal(stacked[rows], np.vstack([reference, candidate])[rows])


def test_text_rows_are_checked_for_duplicates(penguins):
    notes = [f"penguin number {n} of the {s} kind" for n, s in enumerate(penguins.species)]
    reference = pd.DataFrame({"note": notes[:170]})
    candidate = pd.DataFrame({"note": notes[170:250] * 2})
    result = evidence(reference, candidate)
    assert signal(result, "duplicate_rate") in fired(result)
    # The text is encoded by its hashed n-grams, so the distance-based figures run too.
    assert {s.name for s in result.signals} == {
        "duplicate_rate",
        "near_duplicate_rate",
        "distinct_ratio",
        "coverage",
        "recall",
        "vendi",
    }


def test_same_seed_gives_identical_evidence(penguins):
    reference, candidate = split(penguins)
    assert evidence(reference, candidate, 7) == evidence(reference, candidate, 7)
    assert evidence(reference, candidate, 7) != evidence(reference, candidate, 8)


def test_a_tiny_candidate_is_not_run_but_keeps_the_full_data_figures(penguins):
    result = evidence(penguins, pd.concat([penguins.iloc[:6]] * 2))
    assert result.signals == ()
    assert "at least 20" in result.not_run
    assert result.statistics["duplicate_rate"] == 0.5
    assert result.statistics["duplicate_rate_reference"] == 0.0
