"""Dimension evidence -> scored dimensions, score, collapsed, shift.

False alarms are controlled family-wise: the user's ``alpha`` is split over the
dimensions that ran (weighted Bonferroni, see ``ALPHA_WEIGHTS``), and within a dimension
its signals are tested with Holm's step-down procedure at that share. A signal *fires*
when Holm rejects it AND its effect exceeds the practical tolerance, so that negligible
differences in huge datasets pass. ``collapsed`` is any firing narrowing or structure
signal; ``shift`` is any firing shift signal (a change of location or mix), reported
separately and not failing the gate.
Three exceptions read narrowing or structure as shift: narrowing confined to single
columns (``CONFINABLE``); everything a selection of real rows can produce when the
classifier test finds the candidate to be real rows selected on one column
(``one_column_selection``; ``NOT_FROM_SELECTION`` lists what still fails the gate); and
joint signals that vanish when the one column that shifted is left out
(``column_effect``, from dimensions/column_effects.py).

Scores: a signal scores 100 while its effect is within twice its noise and 50 when it
exceeds that by its tolerance; a dimension scores its worst signal; the overall score is
the geometric mean of the dimensions that ran (``overall_score``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from collapse_callbacks.dimensions.base import (
    DimensionEvidence,
    DimensionResult,
    Signal,
    SignalKind,
    Status,
)

if TYPE_CHECKING:
    from collapse_callbacks.dimensions.column_effects import ColumnEffect

# The order of the report; the two model dimensions need a model (the training
# integrations provide one).
DIMENSIONS = (
    "distribution_fidelity",
    "correlation_preservation",
    "entropy_stability",
    "gradient_health",
    "loss_landscape",
    "spectral_coherence",
    "generalization_gap",
    "statistical_consistency",
)
MODEL_DIMENSIONS = {
    name: "needs a model: runs inside the Lightning / Hugging Face callbacks, or on a proxy "
    "model with --proxy-model (check(..., proxy_model=True))"
    for name in ("gradient_health", "loss_landscape")
}


# Narrowing of single columns that real data filtered or reweighted on a column also
# shows (its spread, entropy or distinct values fall). Alone, with no tail loss on both
# sides, no rare-category loss and no row-level narrowing or structural change, it is
# reported as shift; collapse thins the tails and the joint distribution as well.
CONFINABLE = frozenset(
    {
        "spread",
        "binned_entropy",
        "categorical_entropy",
        "distinct_ratio",
        "length_spread",  # of a text column's document lengths
        # The classifier's edge comes from one column's distribution (generalization.py).
        "classifier_auc_one_column",
    }
)


# What a selection of real rows does not produce by itself: both tails thinner (a
# selection keeps one side), values no real row has, more repeated rows, a broken
# model. When the classifier finds the candidate to be real rows selected on one column
# (generalization.py, ``one_column_selection``), every other narrowing or structure
# signal is read as a consequence of that selection: shift. Of these, the tails and
# duplicates that the reference matched on the same column shows too are consequences
# as well (the selection signal's ``explains``, dimensions/selection_effects.py).
NOT_FROM_SELECTION = frozenset(
    {
        "tail_coverage_1%",
        "tail_coverage_0.1%",
        "between_values",
        "duplicate_rate",
        "near_duplicate_rate",
        "nonfinite_gradients",
        # Text looping on itself and repeated documents or images: no selection of
        # real rows repeats what real rows do not.
        "repeated_ngrams",
        "near_duplicate_documents",
        "vector_duplicate_rate",
    }
)


@dataclass(frozen=True)
class Verdict:
    score: float
    collapsed: bool
    shift: bool
    dimensions: dict[str, DimensionResult]
    diversity: DimensionResult
    reasons: tuple[str, ...]
    # The firing signals that fail the gate, and every firing signal.
    decisive: tuple[Signal, ...] = ()
    firing: tuple[Signal, ...] = ()


def holm(signals: tuple[Signal, ...], alpha: float) -> tuple[set[int], float | None]:
    """Indices of the signals Holm rejects at ``alpha``, and the smallest adjusted p.

    A signal that restates another's test (``Signal.restates``) is not counted among the
    tests: it is rejected when its p-value is no larger than one Holm rejected."""
    tests = [i for i, s in enumerate(signals) if not s.restates]
    if not tests:
        return set(), None
    order = sorted(tests, key=lambda i: signals[i].p_value)
    k = len(tests)
    rejected: set[int] = set()
    for rank, i in enumerate(order):
        if signals[i].p_value <= alpha / (k - rank):
            rejected.add(i)
        else:
            break
    if rejected:
        largest = max(signals[i].p_value for i in rejected)
        rejected |= {i for i, s in enumerate(signals) if s.restates and s.p_value <= largest}
    adjusted = min(1.0, signals[order[0]].p_value * k)
    return rejected, adjusted


def score_dimension(evidence: DimensionEvidence, alpha: float) -> DimensionResult:
    if evidence.not_run is not None:
        return DimensionResult.not_run(evidence.name, evidence.not_run)
    signals = evidence.signals
    rejected, adjusted = holm(signals, alpha)
    fired = sorted(
        (i for i in rejected if signals[i].effect > signals[i].tolerance),
        key=lambda i: signals[i].score(),
    )
    return DimensionResult(
        name=evidence.name,
        status=Status.FAIL if fired else Status.PASS,
        score=min((s.score() for s in signals), default=100.0),
        p_value=adjusted,
        signals=signals,
        fired=tuple(fired),
        statistics=dict(evidence.statistics),
    )


# Weighted Bonferroni: the shares are fixed in advance and sum to alpha, so the
# family-wise false-alarm rate stays at alpha. The classifier two-sample test is the one
# omnibus test (any difference a model can learn, e.g. a fraction of off-manifold rows
# in a mixture), so it gets a larger share than a single-aspect dimension.
ALPHA_WEIGHTS = {"generalization_gap": 3.0}


def alpha_shares(names: list[str], alpha: float) -> dict[str, float]:
    """Each dimension's share of ``alpha`` (weights from ``ALPHA_WEIGHTS``, else 1)."""
    weights = {name: ALPHA_WEIGHTS.get(name, 1.0) for name in names}
    total = sum(weights.values()) or 1.0
    return {name: alpha * weight / total for name, weight in weights.items()}


# A dimension score this low (in points) counts as this low: a score of 0 would pin the
# geometric mean at 0 whatever the other dimensions say.
SCORE_FLOOR = 0.01


def overall_score(scores: list[float]) -> float:
    """The geometric mean of the dimension scores (100 with none).

    Not the arithmetic mean: once a dimension fails outright its score sits near 0, and
    an arithmetic mean then moves only with the dimensions still near the reference,
    whose noise made later generations of a recursive chain score *higher* than earlier
    ones (Spearman -0.74 for kernel-density chains). On the log scale a failed dimension
    keeps pulling the score down as its effect grows (-0.95 on the same chains; see
    benchmarks/quality/README.md).
    """
    if not scores:
        return 100.0
    logs = [math.log(max(score, SCORE_FLOOR) / 100.0) for score in scores]
    return 100.0 * math.exp(sum(logs) / len(logs))


def decide(
    evidence: list[DimensionEvidence],
    diversity: DimensionEvidence,
    alpha: float,
    column_effect: ColumnEffect | None = None,
) -> Verdict:
    """The verdict on the evidence. ``column_effect`` names the joint signals that
    vanish without the one column that shifted (dimensions/column_effects.py): they
    are read as shift."""
    shares = alpha_shares([e.name for e in [*evidence, diversity] if e.not_run is None], alpha)
    results = {e.name: score_dimension(e, shares.get(e.name, alpha)) for e in evidence}
    for name, reason in MODEL_DIMENSIONS.items():
        results.setdefault(name, DimensionResult.not_run(name, reason))
    order = [name for name in DIMENSIONS if name in results] + [
        n for n in results if n not in DIMENSIONS
    ]
    dimensions = {name: results[name] for name in order}
    diversity_result = score_dimension(diversity, shares.get(diversity.name, alpha))
    firing = [s for r in [*dimensions.values(), diversity_result] for s in r.firing]
    selection = [s for s in firing if s.name == "one_column_selection"]
    confinable = CONFINABLE
    damage = [s for s in firing if s.kind is not SignalKind.SHIFT]
    reproduced: set[str] = set(column_effect.explains) if column_effect else set()
    if selection:
        confinable = CONFINABLE | ({s.name for s in damage} - NOT_FROM_SELECTION)
        reproduced |= {key for s in selection for key in s.explains}

    def follows(signal: Signal) -> bool:
        return signal.name in confinable or signal.key in reproduced

    decisive = [s for s in damage if not follows(s)]
    confined = [s for s in damage if follows(s)]
    collapsed = bool(decisive)
    shift = any(s.kind is SignalKind.SHIFT for s in firing) or (bool(confined) and not collapsed)
    # Worst first: what fails the gate, then what only moved; each by its score.
    ordered = sorted(decisive, key=Signal.score) + sorted(
        (s for s in firing if s not in decisive), key=Signal.score
    )
    reasons = [s.sentence for s in ordered]
    if confined and not collapsed and selection:
        column = selection[0].column
        sentence = (
            f"{len(confined)} narrowing or structure signal(s) follow from the selection on "
            f"`{column}`: read as shift"
        )
        matched = [s for s in confined if s.key in reproduced]
        if matched:
            sentence += (
                f" (the reference's rows matched on `{column}` show "
                + ", ".join(
                    f"{s.name.replace('_', ' ')}" + (f" in `{s.column}`" if s.column else "")
                    for s in matched
                )
                + " too)"
            )
        reasons.append(sentence)
    elif confined and not collapsed and column_effect:
        joint = ", ".join(key.replace("_", " ") for key in column_effect.explains)
        columns = ", ".join(f"`{c}`" for c in column_effect.columns)
        several = len(column_effect.columns) > 1
        reasons.append(
            f"the joint signals ({joint}) change only through {columns}: measured again "
            f"without {'those columns' if several else 'that column'} none of them exceeds "
            "its tolerance at 5%, so "
            + ("those columns' distributions" if several else "one column's distribution")
            + " moved (a filter, a reweighting or drift in time): read as shift"
        )
    elif confined and not collapsed:
        columns = ", ".join(dict.fromkeys(f"`{s.column}`" for s in confined if s.column))
        reasons.append(
            f"narrowing is confined to {columns or 'single columns'} while tails, rare categories and "
            "the joint distribution are intact: read as a filtered or reweighted selection (shift)"
        )
    score = overall_score(
        [r.score for r in [*dimensions.values(), diversity_result] if r.score is not None]
    )
    return Verdict(
        score,
        collapsed,
        shift,
        dimensions,
        diversity_result,
        tuple(reasons),
        decisive=tuple(decisive),
        firing=tuple(firing),
    )
