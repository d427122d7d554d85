"""Entropy stability on real data: known answers, calibration on real splits, determinism."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from collapse_callbacks.dimensions import entropy
from collapse_callbacks.dimensions.base import SignalKind
from collapse_callbacks.profiling import compare_sources
from helpers import fired, signal, split

ALPHA = 0.01


def evidence(reference: pd.DataFrame, candidate: pd.DataFrame, seed: int = 0):
    comparison, _ = compare_sources(reference, candidate, alpha=ALPHA, seed=seed)
    return entropy.run(comparison)


def shannon(values) -> float:
    p = pd.Series(values).value_counts(normalize=True).to_numpy()
    return float(-(p * np.log(p)).sum())


@pytest.mark.parametrize("dataset", ["penguins", "breast_cancer"])
def test_a_disjoint_real_split_passes(dataset, request):
    frame = request.getfixturevalue(dataset)
    result = evidence(*split(frame))
    assert result.not_run is None
    names = {s.name for s in result.signals}
    assert names >= {"binned_entropy", "mutual_information", "spectral_entropy", "knn_entropy"}
    assert fired(result) == []
    assert min(s.score() for s in result.signals) >= 60
    assert np.median([s.score() for s in result.signals]) == 100.0


def test_penguin_entropies_are_those_of_the_matched_parts(penguins):
    comparison, _ = compare_sources(*split(penguins), alpha=ALPHA, seed=0)
    result = entropy.run(comparison)
    reference_part, candidate_part = comparison.observed_parts
    assert len(candidate_part) == len(reference_part) == 86
    species = signal(result, "categorical_entropy", "species")
    # value: the candidate part's plug-in entropy; reference: the reference part's, moved
    # by the (small) mean difference between the null splits.
    assert species.value == pytest.approx(
        entropy.categorical_entropy(candidate_part.codes("species")), abs=1e-12
    )
    assert species.reference_value == pytest.approx(
        entropy.categorical_entropy(reference_part.codes("species")), abs=0.02
    )
    # 152 Adelie, 124 Gentoo, 68 Chinstrap: 1.05 nats over the whole table.
    assert species.value == pytest.approx(1.05, abs=0.1)
    binned = signal(result, "binned_entropy", "body_mass_g")
    assert binned.reference_value == pytest.approx(np.log(10), abs=0.12)  # its own deciles
    knn = signal(result, "knn_entropy")
    assert (
        result.statistics["knn_entropy_dimensions"] == 17
    )  # 5 numeric + 1 missing flag + 11 one-hot
    assert "17 encoded dimensions" in knn.sentence


def test_collapsing_rare_categories_into_the_mode_lowers_their_entropy(penguins):
    candidate = penguins.sample(frac=0.5, random_state=0).copy()
    candidate["island"] = candidate["island"].replace({"Torgersen": "Biscoe"})
    candidate["species"] = candidate["species"].replace({"Chinstrap": "Adelie"})
    result = evidence(penguins, candidate)
    # The matched size is all 172 candidate rows: the figure is the candidate's own entropy.
    for column in ("island", "species"):
        found = signal(result, "categorical_entropy", column)
        assert found.kind is SignalKind.NARROWING
        assert found.value == pytest.approx(shannon(candidate[column]), abs=1e-9)
        assert found.reference_value == pytest.approx(shannon(penguins[column]), abs=0.06)
        assert found.effect > 0.3
        assert found in fired(result)
        assert f"entropy of `{column}` fell from" in found.sentence
    assert signal(result, "categorical_entropy", "sex") not in fired(result)


def test_shrinking_numbers_towards_the_median_lowers_knn_and_decile_entropy(breast_cancer):
    reference, candidate = split(breast_cancer)
    candidate = candidate.copy()
    numbers = candidate.columns[:-1]
    median = candidate[numbers].median()
    candidate[numbers] = median + 0.5 * (candidate[numbers] - median)
    result = evidence(reference, candidate)
    knn = signal(result, "knn_entropy")
    # Halving 30 of 32 encoded dimensions: log(2) * 30 / 32 = 0.65 nats per dimension.
    assert knn.effect == pytest.approx(0.65, abs=0.1)
    assert knn in fired(result)
    assert "closer to their 5th-nearest neighbours" in knn.sentence
    binned = [s for s in result.signals if s.name == "binned_entropy"]
    assert len(binned) == 30
    assert all(s.value < s.reference_value and s.effect > s.tolerance for s in binned)
    assert sum(s.p_value < 0.01 for s in binned) >= 27
    assert np.median([s.score() for s in binned]) < 15
    assert sum(s in fired(result) for s in binned) >= 12  # at 0.01 / 34 signals
    assert signal(result, "categorical_entropy", "target") not in fired(result)


def test_shuffling_columns_independently_changes_mutual_information(penguins):
    reference, candidate = split(penguins)
    rng = np.random.default_rng(1)
    candidate = candidate.apply(lambda column: rng.permutation(column.to_numpy()))
    result = evidence(reference, candidate)
    mi = signal(result, "mutual_information")
    assert mi.kind is SignalKind.STRUCTURE
    assert mi.value > 2 * mi.reference_value
    assert mi in fired(result)
    assert result.statistics["mutual_information_pairs"] == 28  # 8 columns


def test_knn_entropy_estimates_a_gaussian_and_scales_exactly():
    x = np.random.default_rng(0).normal(size=(2000, 3))
    exact = 1.5 * np.log(2 * np.pi * np.e)  # 4.257 nats
    assert entropy.knn_entropy(x) == pytest.approx(exact, abs=0.1)
    # Scaling every coordinate by 1/2 lowers differential entropy by 3 log 2, exactly.
    assert entropy.knn_entropy(0.5 * x) == pytest.approx(
        entropy.knn_entropy(x) - 3 * np.log(2), abs=1e-4
    )


def test_knn_entropy_of_repeated_points_is_floored_at_the_resolution():
    from scipy.special import digamma

    rng = np.random.default_rng(1)
    distinct = rng.normal(size=(300, 4))
    repeated = np.repeat(distinct[:30], 10, axis=0)  # 30 points, each 10 times
    floor = 0.01 * np.median(entropy.kth_neighbour_distance(distinct, entropy.KNN_K))
    estimate = entropy.knn_entropy(repeated, entropy.KNN_K, floor)
    # Every row's 5th neighbour is one of its copies: all distances sit on the floor.
    exact = (
        digamma(300) - digamma(entropy.KNN_K) + entropy.log_unit_ball_volume(4) + 4 * np.log(floor)
    )
    assert estimate == pytest.approx(exact, abs=1e-5)
    assert estimate < entropy.knn_entropy(distinct, entropy.KNN_K, floor) - 10


def test_decile_entropy_ignores_location_and_sees_spread():
    reference = np.arange(100.0)
    assert entropy.binned_entropy(reference, reference) == pytest.approx(np.log(10))
    assert entropy.binned_entropy(reference, reference + 1000.0) == pytest.approx(np.log(10))
    assert entropy.binned_entropy(reference, 50 + 0.5 * (reference - 50)) < 1.8
    assert entropy.binned_entropy(reference, 50 + 2.0 * (reference - 50)) > np.log(10) + 0.5


def test_same_seed_gives_identical_evidence_and_another_seed_does_not(penguins):
    reference, candidate = split(penguins)
    first, again = evidence(reference, candidate, 3), evidence(reference, candidate, 3)
    assert first == again
    other = evidence(reference, candidate, 4)
    assert [s.p_value for s in other.signals] != [s.p_value for s in first.signals]


def test_nothing_to_measure_is_not_run(penguins):
    text = pd.DataFrame(
        {
            "note": [
                f"a {s} penguin seen on {i} in {y} number {n}"
                for n, (s, i, y) in enumerate(zip(penguins.species, penguins.island, penguins.year))
            ]
        }
    )
    assert "no numeric or categorical columns" in evidence(text.iloc[:170], text.iloc[170:]).not_run
    tiny = evidence(penguins, penguins.iloc[:12])
    assert tiny.signals == () and "at least 20" in tiny.not_run
