"""Spectral coherence on real data: known answers, calibration on real splits, determinism."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from collapse_callbacks.dimensions import spectral
from collapse_callbacks.dimensions.base import SignalKind
from collapse_callbacks.profiling import compare_sources
from helpers import fired, signal, split

ALPHA = 0.01


def evidence(reference: pd.DataFrame, candidate: pd.DataFrame, seed: int = 0):
    comparison, _ = compare_sources(reference, candidate, alpha=ALPHA, seed=seed)
    return spectral.run(comparison)


def shrunk(frame: pd.DataFrame, factor: float) -> pd.DataFrame:
    frame = frame.copy()
    numbers = frame.select_dtypes("number").columns
    median = frame[numbers].median()
    frame[numbers] = median + factor * (frame[numbers] - median)
    return frame


@pytest.mark.parametrize("dataset", ["penguins", "breast_cancer", "digits"])
def test_a_disjoint_real_split_passes(dataset, request):
    result = evidence(*split(request.getfixturevalue(dataset)))
    assert [s.name for s in result.signals] == [
        "variance_retained",
        "trailing_variance_retained",
        "effective_rank_ratio",
    ]
    assert fired(result) == []
    assert min(s.score() for s in result.signals) >= 90
    retained = signal(result, "variance_retained")
    assert retained.reference_value == pytest.approx(1.0, abs=0.1)
    assert retained.value == pytest.approx(1.0, abs=0.35)


def test_shrinking_numbers_towards_the_median_loses_variance_along_every_axis(breast_cancer):
    reference, candidate = split(breast_cancer)
    result = evidence(reference, shrunk(candidate, 0.5))
    retained = signal(result, "variance_retained")
    # The 30 numeric dimensions dominate and keep a quarter of their variance (a little
    # more: the reference's are winsorized at its 1% and 99% quantiles).
    assert 0.28 < retained.value < 0.45
    assert retained.kind is SignalKind.NARROWING
    assert retained.effect > 0.5
    trailing = signal(result, "trailing_variance_retained")
    assert trailing.value < 0.5 * trailing.reference_value
    assert {retained, trailing} <= set(fired(result))
    assert "principal axis" in retained.sentence and "`" in retained.sentence
    # The shape of the spectrum barely moves: that is no structural change.
    assert signal(result, "effective_rank_ratio") not in fired(result)


def test_a_mild_shrink_is_within_tolerance_and_a_wider_candidate_is_not_narrowing(penguins):
    reference, candidate = split(penguins)
    wider = evidence(reference, shrunk(candidate, 1.5))
    # Numbers widen 1.5x, but are winsorized at the reference's 1% and 99% quantiles.
    assert signal(wider, "variance_retained").value > 1.15
    assert signal(wider, "variance_retained").p_value > 0.9  # one-sided: richer is fine
    mild = signal(evidence(reference, shrunk(candidate, 0.98)), "variance_retained")
    assert not mild.fires(ALPHA)


def test_shuffling_columns_independently_raises_the_effective_rank(breast_cancer):
    reference, candidate = split(breast_cancer)
    rng = np.random.default_rng(1)
    candidate = candidate.apply(lambda column: rng.permutation(column.to_numpy()))
    result = evidence(reference, candidate)
    ratio = signal(result, "effective_rank_ratio")
    assert ratio.kind is SignalKind.STRUCTURE
    assert ratio.value > 3.0  # 30 correlated measurements become independent
    assert ratio.reference_value == pytest.approx(1.0, abs=0.1)
    assert ratio in fired(result)
    assert "rose" in ratio.sentence
    # Shuffling keeps each column's variance: nothing narrowed.
    assert signal(result, "variance_retained") not in fired(result)


def test_spectrum_helpers_on_known_matrices():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5000, 4)) * np.array([4.0, 2.0, 1.0, 0.5])
    values, vectors = spectral.covariance_spectrum(x)
    np.testing.assert_allclose(values, [16.0, 4.0, 1.0, 0.25], rtol=0.06)
    np.testing.assert_allclose(np.abs(vectors), np.eye(4), atol=0.05)
    assert spectral.spectrum_entropy(np.ones(7)) == pytest.approx(np.log(7))
    assert spectral.spectrum_entropy(np.array([3.0, 0.0, 0.0])) == 0.0


def test_same_seed_gives_identical_evidence(penguins):
    reference, candidate = split(penguins)
    assert evidence(reference, candidate, 5) == evidence(reference, candidate, 5)
    assert evidence(reference, candidate, 5) != evidence(reference, candidate, 6)


def test_a_text_column_is_encoded_by_its_hashed_ngrams(penguins):
    text = pd.DataFrame(
        {"note": [f"penguin number {n} of the {s} kind" for n, s in enumerate(penguins.species)]}
    )
    order = np.random.default_rng(0).permutation(len(text))
    result = evidence(text.iloc[order[:170]], text.iloc[order[170:]])
    assert result.not_run is None
    assert result.statistics["spectral_dimensions"] <= 65
    assert {s.name for s in result.signals} >= {"variance_retained", "effective_rank_ratio"}
