"""Loss landscape: the model's loss on candidate batches against reference batches, and
the sharpness of the loss around the current weights.

Signals (inputs: every rank's probe measurements):

* ``loss_ratio`` (narrowing, one-sided): candidate loss / reference loss, Welch's
  t-test on the per-batch losses. A model finds its own (or a sibling model's) output
  easier than real data: the perplexity gap of recursive training. A candidate *harder*
  than real data is not collapse and is not tested.
* ``sharpness_ratio`` (structure, two-sided): curvature of the loss along the same
  filter-normalized random directions on each side (Li et al. 2018), per direction and
  rank; with a few directions it has little power, and says so through its p-value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats

from collapse_callbacks.dimensions.base import DimensionEvidence, Signal, SignalKind
from collapse_callbacks.probes import ProbeMeasurements, missing_sides

NAME = "loss_landscape"
# 20% lower loss on the candidate than on real data: well beyond what two real samples
# of a few batches differ by once significance is required, and the size of the gap
# recursive generations open (Shumailov et al. 2024, perplexity of generation-n data
# under generation-0 models).
LOSS_TOLERANCE = 0.2
SHARPNESS_TOLERANCE = math.log(2.0)


def run(measurements: Sequence[ProbeMeasurements]) -> DimensionEvidence:
    missing = missing_sides(measurements)
    if missing is not None:
        return DimensionEvidence(NAME, not_run=missing)
    reference = _pool(measurements, "reference", "losses")
    candidate = _pool(measurements, "candidate", "losses")
    statistics = {
        "loss_reference": float(reference.mean()) if len(reference) else math.nan,
        "loss_candidate": float(candidate.mean()) if len(candidate) else math.nan,
    }
    signals = []
    loss = _loss_ratio(reference, candidate, statistics)
    if loss is not None:
        signals.append(loss)
    sharp = _sharpness(
        _pool(measurements, "reference", "sharpness"),
        _pool(measurements, "candidate", "sharpness"),
        statistics,
    )
    if sharp is not None:
        signals.append(sharp)
    if not signals:
        return DimensionEvidence(
            NAME, not_run="too few finite probe losses to compare (need 2 batches a side)"
        )
    return DimensionEvidence(NAME, signals=tuple(signals), statistics=statistics)


def _pool(measurements, side: str, field: str) -> np.ndarray:
    values = np.concatenate(
        [np.asarray(getattr(getattr(m, side), field), float) for m in measurements]
    )
    return values[np.isfinite(values)]


def _loss_ratio(reference: np.ndarray, candidate: np.ndarray, statistics: dict) -> Signal | None:
    if len(reference) < 2 or len(candidate) < 2 or reference.mean() <= 0:
        return None
    ratio = float(candidate.mean() / reference.mean())
    statistics["loss_ratio"] = ratio
    test = stats.ttest_ind(candidate, reference, equal_var=False, alternative="less")
    p_value = float(test.pvalue) if np.isfinite(test.pvalue) else 1.0
    noise = (
        math.sqrt(candidate.var(ddof=1) / len(candidate) + reference.var(ddof=1) / len(reference))
        / reference.mean()
    )
    return Signal(
        name="loss_ratio",
        kind=SignalKind.NARROWING,
        column=None,
        value=ratio,
        reference_value=1.0,
        effect=1.0 - ratio,
        tolerance=LOSS_TOLERANCE,
        noise=noise,
        p_value=p_value,
        sentence=(
            f"the model's loss is {ratio:.2f}x on candidate batches what it is on reference "
            f"batches ({candidate.mean():.4g} vs {reference.mean():.4g}): the candidate is "
            "easier than real data, as a model's own output is"
        ),
    )


def _sharpness(reference: np.ndarray, candidate: np.ndarray, statistics: dict) -> Signal | None:
    if len(reference) < 2 or len(candidate) < 2:
        return None
    statistics["sharpness_reference"] = float(reference.mean())
    statistics["sharpness_candidate"] = float(candidate.mean())
    if reference.mean() <= 0 or candidate.mean() <= 0:
        return None  # not locally convex along these directions: no ratio to speak of
    difference = float(math.log(candidate.mean() / reference.mean()))
    statistics["sharpness_ratio"] = math.exp(difference)
    test = stats.ttest_ind(candidate, reference, equal_var=False)
    p_value = float(test.pvalue) if np.isfinite(test.pvalue) else 1.0
    spread = math.sqrt(
        candidate.var(ddof=1) / len(candidate) / candidate.mean() ** 2
        + reference.var(ddof=1) / len(reference) / reference.mean() ** 2
    )
    return Signal(
        name="sharpness_ratio",
        kind=SignalKind.STRUCTURE,
        column=None,
        value=math.exp(difference),
        reference_value=1.0,
        effect=abs(difference),
        tolerance=SHARPNESS_TOLERANCE,
        noise=spread,
        p_value=p_value,
        sentence=(
            f"the loss around the current weights is {math.exp(difference):.2f}x as sharp on "
            "candidate batches as on reference batches (curvature along random "
            "filter-normalized directions)"
        ),
    )
