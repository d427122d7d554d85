"""Correlation preservation on real data: known answers, real splits, determinism."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from collapse_callbacks import CollapseGate
from collapse_callbacks.dimensions import correlation
from collapse_callbacks.dimensions.base import SignalKind, Status
from collapse_callbacks.profiling import compare_sources
from helpers import fired, signal, split

ALPHA = 0.01


def evidence(reference: pd.DataFrame, candidate: pd.DataFrame, seed: int = 0):
    comparison, _ = compare_sources(reference, candidate, alpha=ALPHA, seed=seed)
    return correlation.run(comparison)


def shuffle_columns(frame: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Each column permuted on its own: every marginal kept, every dependence destroyed."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {c: frame[c].to_numpy()[rng.permutation(len(frame))] for c in frame.columns}
    )


def test_identical_data_fires_nothing(breast_cancer, penguins):
    for frame in (breast_cancer, penguins):
        result = evidence(frame, frame)
        assert result.name == correlation.NAME == "correlation_preservation"
        assert all(s.kind is SignalKind.STRUCTURE for s in result.signals)
        assert not [s for s in result.signals if s.fires(ALPHA)]
        assert [s.score() for s in result.signals] == [100.0] * len(result.signals)
        assert result.statistics["pearson_full_rms_change"] == 0.0
        assert result.statistics["pearson_full_correlation_of_correlations"] == pytest.approx(1)
    assert {s.name for s in result.signals} == {
        "pearson_rms_change",
        "spearman_rms_change",
        "cramers_v_rms_change",
    }


def test_real_splits_pass(breast_cancer, digits, penguins):
    # At the share of alpha the gate gives this dimension: a per-dimension alpha of
    # 0.01 over six splits would flag one now and then by design.
    for frame in (breast_cancer, digits, penguins):
        for seed in (0, 1):
            report = CollapseGate(reference=split(frame, seed)[0], seed=seed).check(
                split(frame, seed)[1]
            )
            dimension = report.dimensions[correlation.NAME]
            assert dimension.status is Status.PASS, dimension.sentences
            assert dimension.statistics["pearson_full_correlation_of_correlations"] > 0.9


def test_shuffled_columns_fire_every_signal(breast_cancer, penguins):
    result = evidence(breast_cancer, shuffle_columns(breast_cancer))
    for name in ("pearson_rms_change", "spearman_rms_change"):
        s = signal(result, name)
        assert s in fired(result)
        assert s.p_value < 1e-10
        assert s.effect > 0.4
    assert result.statistics["pearson_full_correlation_of_correlations"] < 0.2
    # The sentence names the pairs that changed most, with full-data correlations.
    pearson = signal(result, "pearson_rms_change").sentence
    assert "the correlation of `worst radius` and `worst perimeter` went from 0.99 to" in pearson
    assert "(full data)" in pearson

    result = evidence(penguins, shuffle_columns(penguins))
    assert {s.name for s in fired(result)} == {
        "pearson_rms_change",
        "spearman_rms_change",
        "cramers_v_rms_change",
    }
    assert (
        "the association of `species` and `island` went from 0.64"
        in signal(result, "cramers_v_rms_change").sentence
    )


def test_invented_correlation_fires(breast_cancer):
    """Structure is two-sided: a dependence that was not there is damage too."""
    candidate = breast_cancer.copy()
    # `mean fractal dimension` and `mean radius` correlate at -0.31; make them +0.9.
    candidate["mean fractal dimension"] = (
        breast_cancer["mean radius"].rank(pct=True) * 0.01 + 0.05
    ) + np.random.default_rng(0).normal(0, 0.001, len(breast_cancer))
    result = evidence(breast_cancer, candidate)
    pearson = signal(result, "pearson_rms_change")
    assert pearson.p_value < 1e-4
    assert "`mean fractal dimension`" in pearson.sentence


def test_pairwise_complete_pearson_matches_pandas(penguins):
    numeric = penguins.select_dtypes("number")
    assert numeric.isna().any().any()
    ours = correlation._pearson(numeric.to_numpy(dtype=float))
    np.testing.assert_allclose(ours, numeric.corr().to_numpy(), atol=1e-12)


def test_cramers_v_known_answer(penguins):
    species = penguins["species"].astype("category").cat.codes.to_numpy()
    island = penguins["island"].astype("category").cat.codes.to_numpy()
    v = correlation._cramers_v(species, island, 3, 3)
    # Bergsma's bias-corrected V of the 3x3 table; scipy's plain V is 0.6598.
    table = pd.crosstab(species, island).to_numpy()
    n = table.sum()
    chi2 = (
        (table - np.outer(table.sum(1), table.sum(0)) / n) ** 2
        / (np.outer(table.sum(1), table.sum(0)) / n)
    ).sum()
    phi2 = max(0, chi2 / n - 4 / (n - 1))
    k = 3 - 4 / (n - 1)
    assert v == pytest.approx(np.sqrt(phi2 / (k - 1)))
    assert v == pytest.approx(0.6573, abs=1e-4)
    same = correlation._cramers_v(species, species, 3, 3)
    assert same == pytest.approx(1.0)


def test_not_run_reasons(penguins):
    one_each = penguins[["species", "body_mass_g"]]
    result = evidence(one_each, one_each)
    assert result.signals == ()
    assert result.not_run == (
        "needs two varying numeric or two varying categorical columns; found 1 numeric "
        "and 1 categorical"
    )
    small = evidence(penguins, penguins.iloc[:15])
    assert "15 matched rows" in small.not_run


def test_same_seed_same_evidence(breast_cancer):
    reference, candidate = split(breast_cancer, 5)
    assert repr(evidence(reference, candidate, seed=3)) == repr(
        evidence(reference, candidate, seed=3)
    )
    assert repr(evidence(reference, candidate, seed=4)) != repr(
        evidence(reference, candidate, seed=3)
    )
