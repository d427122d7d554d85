from __future__ import annotations

import math

from collapse_callbacks.detector import (
    DIMENSIONS,
    decide,
    holm,
    overall_score,
    score_dimension,
)
from collapse_callbacks.dimensions.base import DimensionEvidence, Signal, SignalKind, Status


def _signal(p, effect, kind=SignalKind.NARROWING, tolerance=0.1, noise=0.0, column="x"):
    return Signal(
        name="s",
        kind=kind,
        column=column,
        value=0.0,
        reference_value=0.0,
        effect=effect,
        tolerance=tolerance,
        noise=noise,
        p_value=p,
        sentence=f"{column} moved by {effect}",
    )


def test_holm_steps_down_and_stops_at_the_first_acceptance():
    signals = (_signal(0.001, 1), _signal(0.04, 1), _signal(0.015, 1), _signal(0.5, 1))
    rejected, adjusted = holm(signals, 0.05)
    # Sorted p: 0.001 <= 0.05/4, 0.015 <= 0.05/3, 0.04 > 0.05/2 -> stop.
    assert rejected == {0, 2}
    assert adjusted == 0.004


def test_holm_does_not_count_a_signal_that_restates_another_test():
    from dataclasses import replace

    # The classifier's test and its reading as a selection share one p-value: one test,
    # so the classifier keeps the whole alpha (0.04 <= 0.05), and its reading goes with it.
    test = _signal(0.04, 1)
    reading = replace(_signal(0.04, 1), restates=True)
    rejected, adjusted = holm((test, reading), 0.05)
    assert rejected == {0, 1}
    assert adjusted == 0.04
    # A reading never rejects on its own.
    rejected, _ = holm((_signal(0.2, 1), replace(_signal(0.001, 1), restates=True)), 0.05)
    assert rejected == set()


def test_a_signal_fires_only_when_significant_and_beyond_tolerance():
    significant_but_small = _signal(1e-9, effect=0.05, tolerance=0.1)
    large_but_noise = _signal(0.2, effect=0.5, tolerance=0.1)
    both = _signal(1e-9, effect=0.5, tolerance=0.1, column="y")
    result = score_dimension(
        DimensionEvidence("d", (significant_but_small, large_but_noise, both)), 0.01
    )
    assert result.status is Status.FAIL
    assert result.fired == (2,)
    assert result.drivers == ("y",)
    assert result.sentences == ("y moved by 0.5",)


def test_signal_score_is_100_within_noise_and_50_at_tolerance_beyond_it():
    assert _signal(0.5, effect=0.02, noise=0.01).score() == 100.0
    assert math.isclose(_signal(0.5, effect=0.12, noise=0.01).score(), 50.0)
    assert _signal(0.5, effect=1.0, noise=0.0).score() < 2.0


def test_shift_alone_does_not_collapse_and_model_dimensions_are_listed_not_run():
    shift = DimensionEvidence("statistical_consistency", (_signal(1e-12, 0.5, SignalKind.SHIFT),))
    quiet = DimensionEvidence("distribution_fidelity", (_signal(0.4, 0.01),))
    verdict = decide(
        [quiet, shift], DimensionEvidence("diversity", (_signal(0.3, 0.0),)), alpha=0.01
    )
    assert verdict.shift and not verdict.collapsed
    assert list(verdict.dimensions) == [d for d in DIMENSIONS if d in verdict.dimensions]
    assert verdict.dimensions["gradient_health"].status is Status.NOT_RUN
    assert "needs a model" in verdict.dimensions["loss_landscape"].reason


def test_alpha_is_shared_across_the_dimensions_that_ran():
    # p = 0.004 passes alone at 0.01 but not once three families share it (0.0033 each).
    evidence = [
        DimensionEvidence(f"d{i}", (_signal(0.004 if i == 0 else 0.9, 1.0),)) for i in range(2)
    ]
    alone = decide(evidence[:1], DimensionEvidence("diversity", not_run="no"), alpha=0.01)
    shared = decide(evidence, DimensionEvidence("diversity", (_signal(0.9, 0.0),)), alpha=0.01)
    assert alone.collapsed and not shared.collapsed


def test_narrowing_confined_to_single_columns_reads_as_shift():
    confined = Signal(**{**_signal(1e-9, 1.0).__dict__, "name": "spread", "column": "month"})
    verdict = decide(
        [DimensionEvidence("distribution_fidelity", (confined,))],
        DimensionEvidence("diversity", (_signal(0.9, 0.0),)),
        alpha=0.01,
    )
    assert verdict.shift and not verdict.collapsed
    assert "confined to `month`" in verdict.reasons[-1]
    tails = Signal(**{**confined.__dict__, "name": "tail_coverage_1%"})
    verdict = decide(
        [DimensionEvidence("distribution_fidelity", (confined, tails))],
        DimensionEvidence("diversity", (_signal(0.9, 0.0),)),
        alpha=0.01,
    )
    assert verdict.collapsed


def test_alpha_shares_sum_to_alpha_and_favour_the_classifier_test():
    from collapse_callbacks.detector import alpha_shares

    shares = alpha_shares(["distribution_fidelity", "generalization_gap", "diversity"], 0.01)
    assert math.isclose(sum(shares.values()), 0.01)
    assert math.isclose(shares["generalization_gap"], 3 * shares["diversity"])
    assert alpha_shares(["diversity"], 0.05) == {"diversity": 0.05}


def test_a_selection_explains_structure_but_not_what_selection_cannot_make():
    def named(name, kind=SignalKind.STRUCTURE, column=None):
        return Signal(**{**_signal(1e-9, 1.0, kind=kind).__dict__, "name": name, "column": column})

    selection = named("one_column_selection", SignalKind.SHIFT, "affairs")
    correlation = named("pearson_rms_change")
    verdict = decide(
        [
            DimensionEvidence("correlation_preservation", (correlation,)),
            DimensionEvidence("generalization_gap", (named("classifier_auc"), selection)),
        ],
        DimensionEvidence("diversity", (named("coverage", SignalKind.NARROWING),)),
        alpha=0.01,
    )
    assert verdict.shift and not verdict.collapsed
    assert "follow from the selection on `affairs`" in verdict.reasons[-1]
    # Values between a discrete column's values are not made by selecting real rows.
    verdict = decide(
        [
            DimensionEvidence("distribution_fidelity", (named("between_values", column="age"),)),
            DimensionEvidence("generalization_gap", (named("classifier_auc"), selection)),
        ],
        DimensionEvidence("diversity", (_signal(0.9, 0.0),)),
        alpha=0.01,
    )
    assert verdict.collapsed


def test_overall_score_is_the_geometric_mean_and_keeps_falling_with_a_failed_dimension():
    assert overall_score([]) == 100.0
    assert math.isclose(overall_score([100.0, 25.0]), 50.0)
    # One dimension failing harder lowers the score even while another, still near the
    # reference, wobbles by noise: the arithmetic mean would rank these the other way.
    earlier = overall_score([1.0, 60.0, 100.0])
    later = overall_score([0.1, 90.0, 100.0])
    assert later < earlier
    assert (0.1 + 90 + 100) / 3 > (1 + 60 + 100) / 3
    # A score of 0 does not pin the whole at 0.
    assert overall_score([0.0, 100.0, 100.0]) > 0.0
