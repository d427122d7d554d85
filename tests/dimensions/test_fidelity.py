"""Distribution fidelity on real data: known answers, real splits, determinism.

Data: scikit-learn's breast_cancer (569 rows, 30 continuous columns), the digits images
(1,797 real scans) summarized as ink per image region, and palmerpenguins. The bundled
datasets are small: a 1% tail of 569 rows is 5 rows, which no test can call empty at
p < 0.01, so the tail tests use the 1,797 digit images.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from collapse_callbacks import CollapseGate
from collapse_callbacks.dimensions import fidelity
from collapse_callbacks.dimensions.base import SignalKind, Status
from collapse_callbacks.profiling import compare_sources
from helpers import fired, signal, split

ALPHA = 0.01


@pytest.fixture(scope="module")
def ink() -> pd.DataFrame:
    """Ink (sum of pixel intensities) per region of each 8x8 digit scan, and the digit."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = digits.images
    return pd.DataFrame(
        {
            "ink": images.sum(axis=(1, 2)),
            "ink_top": images[:, :4].sum(axis=(1, 2)),
            "ink_bottom": images[:, 4:].sum(axis=(1, 2)),
            "ink_left": images[:, :, :4].sum(axis=(1, 2)),
            "ink_right": images[:, :, 4:].sum(axis=(1, 2)),
            "ink_centre": images[:, 2:6, 2:6].sum(axis=(1, 2)),
            "digit": [str(t) for t in digits.target],
        }
    )


def evidence(reference: pd.DataFrame, candidate: pd.DataFrame, seed: int = 0, **options):
    comparison, _ = compare_sources(reference, candidate, alpha=ALPHA, seed=seed, **options)
    return fidelity.run(comparison)


def halve_spread(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for column in frame.select_dtypes("number"):
        median = frame[column].median()
        out[column] = median + 0.5 * (frame[column] - median)
    return out


def test_identical_data_fires_nothing_and_scores_100(breast_cancer):
    result = evidence(breast_cancer, breast_cancer)
    assert result.name == fidelity.NAME == "distribution_fidelity"
    assert result.not_run is None
    # Every numeric column gets KS, spread and Wasserstein; the categorical target TVD.
    names = {s.name for s in result.signals}
    assert {"ks", "spread", "wasserstein", "total_variation"} <= names
    assert not [s for s in result.signals if s.fires(ALPHA)]
    assert min(s.score() for s in result.signals) == 100.0
    assert signal(result, "ks", "mean radius").value == 0.0
    assert signal(result, "spread", "mean radius").value == 1.0
    assert result.statistics["mean radius.variance_ratio"] == pytest.approx(1.0)


def test_real_splits_pass(breast_cancer, ink, penguins):
    # At the share of alpha the gate gives this dimension (with Holm): a per-dimension
    # alpha of 0.01 over six splits would flag one now and then by design.
    for frame in (breast_cancer, ink, penguins):
        for seed in (0, 1):
            reference, candidate = split(frame, seed)
            report = CollapseGate(reference=reference, seed=seed).check(candidate)
            dimension = report.dimensions[fidelity.NAME]
            assert dimension.status is Status.PASS, dimension.sentences
            scores = [s.score() for s in dimension.signals]
            assert np.median(scores) == 100.0
            assert min(scores) > 50


def test_halved_spread_fires_spread_and_both_tails(ink):
    result = evidence(ink, halve_spread(ink))
    numeric = [c for c in ink.columns if c != "digit"]
    firing = {(s.name, s.column) for s in fired(result)}
    for column in numeric:
        spread = signal(result, "spread", column)
        assert spread.kind is SignalKind.NARROWING
        assert spread.value == pytest.approx(0.5, abs=0.02)
        assert spread.p_value < 1e-12
        assert ("spread", column) in firing
        tail = signal(result, "tail_coverage_1%", column)
        assert tail.kind is SignalKind.NARROWING
        assert tail.value < 0.1  # at most a tenth of the better tail survives
        assert ("tail_coverage_1%", column) in firing
        assert result.statistics[f"{column}.variance_ratio"] == pytest.approx(0.25, rel=0.01)
    sentence = signal(result, "tail_coverage_1%", "ink_top").sentence
    assert "candidate reproduces 0.0% of the reference's lower 1% tail" in sentence
    assert "`ink_top`" in sentence
    assert "`ink` is narrower in the candidate" in signal(result, "spread", "ink").sentence


def test_halved_spread_on_breast_cancer_fires_spread_everywhere(breast_cancer):
    result = evidence(breast_cancer, halve_spread(breast_cancer))
    spreads = [s for s in result.signals if s.name == "spread"]
    assert len(spreads) == 30
    assert all(s in fired(result) for s in spreads)


def test_one_removed_tail_is_not_narrowing(ink):
    """Real data filtered on a column loses one tail and gains the other: the better-tail
    rule must not read it as collapse."""
    cut = ink[ink["ink"] <= ink["ink"].quantile(0.95)]
    result = evidence(ink, cut)
    assert result.statistics["ink.tail_1%_upper_coverage"] == 0.0
    assert result.statistics["ink.tail_1%_lower_coverage"] > 1.0
    tail = signal(result, "tail_coverage_1%", "ink")
    assert tail.value > 1.0 and tail.effect < 0 and tail.p_value > 0.5
    assert signal(result, "spread", "ink").effect <= 0
    assert not [s for s in fired(result) if s.kind is not SignalKind.SHIFT]


def test_a_larger_one_sided_cut_is_caught_as_shift_by_ks(ink):
    # At 1,797 rows a 5% cut moves KS by 0.05, within noise (p = 0.02); cutting the top
    # 20% must be seen, as a shift and not as narrowing.
    cut = ink[ink["ink"] <= ink["ink"].quantile(0.8)]
    result = evidence(ink, cut)
    ks = signal(result, "ks", "ink")
    assert ks.kind is SignalKind.SHIFT
    assert ks.value == pytest.approx(0.2, abs=0.01)
    assert ks.p_value < 1e-20
    assert ks in fired(result)
    assert "quartiles" in ks.sentence and "`ink`" in ks.sentence
    assert signal(result, "tail_coverage_1%", "ink").effect < 0
    assert signal(result, "spread", "ink").effect <= 0
    assert not [s for s in fired(result) if s.kind is not SignalKind.SHIFT]


def test_clipping_both_tails_fires_tail_coverage(ink):
    low, high = ink["ink"].quantile([0.05, 0.95])
    clipped = ink[(ink["ink"] >= low) & (ink["ink"] <= high)]
    result = evidence(ink, clipped)
    tail = signal(result, "tail_coverage_1%", "ink")
    assert tail.value == 0.0 and tail.effect == 1.0
    assert tail.p_value < 1e-4
    assert tail in fired(result)
    assert result.statistics["ink.tail_1%_lower_coverage"] == 0.0
    assert result.statistics["ink.tail_1%_upper_coverage"] == 0.0
    # The other columns lost only what correlates with total ink: no tail fires there.
    assert [s.column for s in fired(result) if s.name.startswith("tail")] == ["ink"]


def test_removing_rare_categories_fires_rare_category_coverage(breast_cancer):
    frame = breast_cancer.assign(
        radius=breast_cancer["mean radius"].round().astype(int).astype(str)
    )
    shares = frame["radius"].value_counts(normalize=True)
    rare = shares[shares < 0.01].index
    candidate = frame[~frame["radius"].isin(rare)]
    result = evidence(frame, candidate)
    coverage = signal(result, "rare_category_coverage", "radius")
    assert coverage.kind is SignalKind.NARROWING
    assert coverage.value == 0.0 and coverage.effect == 1.0
    assert coverage.reference_value > 3
    assert coverage.p_value < 1e-4
    assert coverage in fired(result)
    mass = signal(result, "rare_category_mass", "radius")
    assert mass.value == 0.0
    assert mass.reference_value == pytest.approx(shares[rare].sum())
    assert mass in fired(result)
    assert "missing e.g." in coverage.sentence and "`radius`" in coverage.sentence


def test_rare_categories_on_a_real_split_do_not_fire(breast_cancer):
    """A column of categories mostly seen once: plugging the reference's frequencies
    into sum(1 - (1 - p)^n) expects far more of them in a real split than it shows
    (Good-Turing); the test conditioned on pooled counts must not fire."""
    frame = breast_cancer.assign(radius=breast_cancer["mean radius"].round(2).astype(str))
    reference, candidate = split(frame, 0)
    result = evidence(reference, candidate)
    coverage = signal(result, "rare_category_coverage", "radius")
    assert result.statistics["radius.rare_categories"] > 200
    assert coverage.p_value > 0.1
    assert coverage not in fired(result)
    # The plug-in expectation calls the same split a massive loss.
    counts = reference["radius"].value_counts()
    p = (counts / len(reference))[counts / len(reference) < 0.01]
    present_p = 1 - (1 - p) ** len(candidate)
    present = len(set(candidate["radius"]) & set(p.index))
    z = (present - present_p.sum()) / np.sqrt((present_p * (1 - present_p)).sum())
    assert z < -10


def test_changed_mix_is_a_shift(penguins):
    gentoo = penguins[penguins["species"] == "Gentoo"]
    candidate = pd.concat([penguins[penguins["species"] != "Gentoo"], gentoo.iloc[:20]])
    result = evidence(penguins, candidate)
    tvd = signal(result, "total_variation", "species")
    assert tvd.kind is SignalKind.SHIFT
    # 124 -> 20 Gentoo: shares 36.0% -> 8.3%
    assert tvd.value == pytest.approx(124 / 344 - 20 / 240, abs=1e-9)
    assert tvd in fired(result)
    assert "`Gentoo`" in tvd.sentence


def test_small_candidate_skips_sample_statistics(penguins):
    result = evidence(penguins, penguins.iloc[:15])
    assert result.statistics["sample_tests_skipped_matched_rows"] == 15
    names = {s.name for s in result.signals}
    assert "ks" in names
    assert not names & {"spread", "wasserstein", "total_variation"}


def test_not_run_without_numeric_or_categorical_columns():
    text = pd.DataFrame({"note": [f"specimen number {i} was measured twice" for i in range(200)]})
    result = evidence(text, text)
    assert result.signals == ()
    assert "no numeric or categorical column" in result.not_run


def test_same_seed_same_evidence(breast_cancer):
    reference, candidate = split(breast_cancer, 5)
    first = evidence(reference, candidate, seed=7)
    again = evidence(reference, candidate, seed=7)
    assert repr(first) == repr(again)
    other = evidence(reference, candidate, seed=8)
    assert repr(other) != repr(first)


# --- values between the reference's values (a smoothed discrete column) -------------


@pytest.fixture(scope="module")
def pixels() -> pd.DataFrame:
    """The 64 pixels of the 1,797 real digit scans: integers 0-16, all seen in 900 rows."""
    from sklearn.datasets import load_digits

    data = load_digits().data
    return pd.DataFrame(data, columns=[f"p{i}" for i in range(data.shape[1])])


def _between_fired(result) -> list:
    return [s for s in fired(result) if s.name == "between_values"]


def test_a_smoothed_discrete_column_fires_between_values(pixels):
    reference, real = split(pixels)
    rng = np.random.default_rng(0)
    # A generator that models pixels as continuous and rounds to one decimal, as
    # tabular generators round to the training data's decimals.
    smoothed = (real + rng.normal(0, 0.7, real.shape)).clip(0, 16).round(1)
    result = evidence(reference, smoothed)
    hits = _between_fired(result)
    assert len(hits) >= 20
    worst = max(hits, key=lambda s: s.effect)
    assert worst.kind is SignalKind.STRUCTURE
    assert worst.value > 0.5
    assert "between the reference's values" in worst.sentence
    assert "as when a generator smooths a discrete column" in worst.sentence


def test_a_real_split_has_no_values_between(pixels):
    reference, real = split(pixels, seed=1)
    result = evidence(reference, real)
    tested = [s for s in result.signals if s.name == "between_values"]
    assert len(tested) >= 30  # the test ran: most pixels are discrete and fully seen
    assert not _between_fired(result)


def test_float32_copies_of_the_same_values_are_not_between(pixels):
    # 0.1 steps: a float32 source holds 0.3 as a different double than a float64 one.
    reference, real = split(pixels / 10, seed=2)
    result = evidence(reference, real.astype("float32"))
    assert not _between_fired(result)
    assert max(s.value for s in result.signals if s.name == "between_values") < 0.01


def test_values_beyond_the_range_are_drift_not_between(pixels):
    reference, real = split(pixels, seed=3)
    # New values above the reference's maximum, as a new year or a new code would be.
    result = evidence(reference, real + 20)
    assert not _between_fired(result)


def test_continuous_columns_are_not_tested_for_between_values(breast_cancer):
    reference, candidate = split(breast_cancer)
    result = evidence(reference, candidate)
    assert not [
        s for s in result.signals if s.name == "between_values" and s.column == "mean radius"
    ]


def test_wasserstein_columns_match_scipy_with_and_without_missing_values():
    from scipy import stats

    rng = np.random.default_rng(3)
    a = rng.standard_t(3, size=(500, 3))
    b = rng.normal(size=(500, 3))
    b[::7, 1] = np.nan  # unequal sizes after dropping NaN: scipy's general routine
    expected = [
        stats.wasserstein_distance(a[:, j][np.isfinite(a[:, j])], b[:, j][np.isfinite(b[:, j])])
        for j in range(3)
    ]
    np.testing.assert_allclose(fidelity._wasserstein_columns(a, b), expected, rtol=1e-12)


def test_a_column_that_lost_values_fires_missing_values(penguins):
    # An upstream field no longer filled in: `sex` missing in a third of the candidate.
    reference, candidate = split(penguins, 3)
    candidate = candidate.copy()
    candidate.loc[candidate.index[::3], "sex"] = None
    result = evidence(reference, candidate)
    missing = signal(result, "missing_values", "sex")
    assert missing.kind is SignalKind.NARROWING
    assert missing.value == pytest.approx(candidate["sex"].isna().mean())
    assert missing.reference_value == pytest.approx(reference["sex"].isna().mean())
    assert missing in fired(result)
    assert "`sex` has no value in" in missing.sentence


def test_real_missing_values_on_a_real_split_do_not_fire(penguins):
    # palmerpenguins leaves `sex` unrecorded for 11 birds and every measurement for 2.
    assert penguins.isna().any().any()
    for seed in (0, 1, 2):
        result = evidence(*split(penguins, seed))
        missing = [s for s in result.signals if s.name == "missing_values"]
        assert missing and not [s for s in missing if s.fires(ALPHA)]


def test_a_more_complete_candidate_is_not_narrowing(penguins):
    reference, candidate = split(penguins, 4)
    result = evidence(reference, candidate.dropna())
    assert not [s for s in fired(result) if s.name == "missing_values"]
    assert all(s.effect <= 0 for s in result.signals if s.name == "missing_values")


def test_dates_and_times_are_written_as_dates_and_times(penguins):
    # Profiles hold a timestamp as nanoseconds; the sentences show when, and how long.
    rng = np.random.default_rng(0)
    reference, candidate = split(penguins, 5)

    def stamped(frame, start):
        days = pd.to_timedelta(rng.uniform(0, 90, len(frame)), unit="D")
        return frame.assign(seen=(pd.Timestamp(start) + days).values)

    result = evidence(stamped(reference, "2024-01-01"), stamped(candidate, "2024-07-01"))
    ks = signal(result, "ks", "seen")
    assert "quartiles 2024-0" in ks.sentence and "e+18" not in ks.sentence
    wasserstein = signal(result, "wasserstein", "seen")
    assert "Wasserstein distance 18" in wasserstein.sentence and " days" in wasserstein.sentence
