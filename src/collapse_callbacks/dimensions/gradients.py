"""Gradient health: the model's gradients on candidate batches against reference batches.

Inputs are the probe measurements of every rank (:mod:`collapse_callbacks.probes`).
Signals:

* ``nonfinite_gradients`` (structure): a NaN or infinite loss or gradient on either
  side. Training on it would corrupt the weights at the first step; there is no noise to
  calibrate, so it fires outright and names the layers.
* ``gradient_norm_ratio`` (structure, two-sided): the candidate's per-batch gradient
  norm against the reference's, as a ratio of geometric means, with Welch's t-test on
  the log norms. Data a model already reproduces gives small gradients; degenerate or
  off-distribution data gives large ones.

Statistics: the cosine between the mean reference and mean candidate gradients (do the
two sets pull the weights the same way), and the counts of vanishing and exploding
layers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats

from collapse_callbacks.dimensions.base import DimensionEvidence, Signal, SignalKind
from collapse_callbacks.probes import ProbeMeasurements, missing_sides

NAME = "gradient_health"
# Gradients half or twice as large as on real data: a learning rate tuned on real data
# is then off by the same factor.
NORM_RATIO_TOLERANCE = math.log(2.0)
# A layer whose gradient norm is this many times the median layer's is exploding.
EXPLODING_FACTOR = 1e3
# Per-layer candidate / reference gradient-norm ratios kept in the statistics.
LAYERS_SHOWN = 5


def run(measurements: Sequence[ProbeMeasurements]) -> DimensionEvidence:
    missing = missing_sides(measurements)
    if missing is not None:
        return DimensionEvidence(NAME, not_run=missing)
    signals = [_nonfinite(measurements)]
    statistics: dict[str, float] = {}
    ratio = _norm_ratio(measurements, statistics)
    if ratio is not None:
        signals.append(ratio)
    statistics.update(_layers(measurements))
    statistics["mean_gradient_cosine"] = _cosine(measurements)
    return DimensionEvidence(NAME, signals=tuple(signals), statistics=statistics)


def pooled_norms(measurements: Sequence[ProbeMeasurements], side: str) -> np.ndarray:
    """Per-batch total gradient norms of one side across ranks. Sharded (FSDP): the
    same batch index on every rank is one global gradient in shards, so squares add;
    otherwise every rank's batches are separate samples."""
    per_rank = [np.asarray(getattr(m, side).grad_norms, dtype=float) for m in measurements]
    if measurements[0].sharded:
        return np.sqrt(np.sum([n**2 for n in per_rank], axis=0))
    return np.concatenate(per_rank)


def _nonfinite(measurements: Sequence[ProbeMeasurements]) -> Signal:
    layers: dict[str, list[str]] = {"candidate": [], "reference": []}
    losses = {"candidate": 0, "reference": 0}
    for m in measurements:
        for side in layers:
            got = getattr(m, side)
            layers[side] += [n for n in got.nonfinite_layers if n not in layers[side]]
            losses[side] += got.nonfinite_losses
    bad = {side for side in layers if layers[side] or losses[side]}
    if not bad:
        sentence = "every loss and gradient is finite on both sides"
    else:
        names = layers["candidate"] or layers["reference"]
        shown = ", ".join(f"`{n}`" for n in names[:4]) or "the loss"
        sides = " and ".join(sorted(bad))
        sentence = (
            f"NaN or infinite gradients in {shown} on {sides} batches "
            f"({losses['candidate']} candidate and {losses['reference']} reference losses "
            "non-finite): the first optimizer step would corrupt the weights"
        )
    return Signal(
        name="nonfinite_gradients",
        kind=SignalKind.STRUCTURE,
        column=None,
        value=float(len(layers["candidate"]) + losses["candidate"]),
        reference_value=float(len(layers["reference"]) + losses["reference"]),
        effect=1.0 if bad else 0.0,
        tolerance=0.5,
        noise=0.0,
        p_value=0.0 if bad else 1.0,
        sentence=sentence,
    )


def _norm_ratio(measurements, statistics: dict) -> Signal | None:
    reference = pooled_norms(measurements, "reference")
    candidate = pooled_norms(measurements, "candidate")
    reference, candidate = (x[np.isfinite(x) & (x > 0)] for x in (reference, candidate))
    if len(reference) < 2 or len(candidate) < 2:
        return None
    log_r, log_c = np.log(reference), np.log(candidate)
    difference = float(log_c.mean() - log_r.mean())
    ratio = math.exp(difference)
    statistics["gradient_norm_reference"] = float(np.exp(log_r.mean()))
    statistics["gradient_norm_candidate"] = float(np.exp(log_c.mean()))
    statistics["gradient_norm_ratio"] = ratio
    test = stats.ttest_ind(log_c, log_r, equal_var=False)
    p_value = float(test.pvalue) if np.isfinite(test.pvalue) else 1.0
    noise = math.sqrt(log_c.var(ddof=1) / len(log_c) + log_r.var(ddof=1) / len(log_r))
    direction = "larger" if ratio > 1 else "smaller"
    return Signal(
        name="gradient_norm_ratio",
        kind=SignalKind.STRUCTURE,
        column=None,
        value=ratio,
        reference_value=1.0,
        effect=abs(difference),
        tolerance=NORM_RATIO_TOLERANCE,
        noise=noise,
        p_value=p_value,
        sentence=(
            f"the model's gradients are {ratio:.2f}x as large on candidate batches as on "
            f"reference batches ({direction}; geometric means "
            f"{statistics['gradient_norm_candidate']:.3g} vs "
            f"{statistics['gradient_norm_reference']:.3g} over {len(candidate)} and "
            f"{len(reference)} batches)"
        ),
    )


def _layers(measurements) -> dict[str, float]:
    sides = {}
    for side in ("reference", "candidate"):
        combined: dict[str, float] = {}
        for m in measurements:
            for name, sq in getattr(m, side).layer_sq_norms.items():
                combined[name] = combined.get(name, 0.0) + sq
        sides[side] = combined
    candidate = sides["candidate"]
    if not candidate:
        return {"layers_vanishing": 0.0, "layers_exploding": 0.0}
    norms = np.sqrt(np.array(list(candidate.values())))
    median = float(np.median(norms[norms > 0])) if (norms > 0).any() else 0.0
    exploding = int((norms > EXPLODING_FACTOR * median).sum()) if median > 0 else 0
    out = {
        "layers_measured": float(len(norms)),
        "layers_vanishing": float((norms == 0).sum()),
        "layers_exploding": float(exploding),
    }
    # The layers whose gradients differ most between the sides (both sides summed over
    # the same number of batches, so the ratio of norms is comparable).
    ratios = {
        name: math.sqrt(sq / sides["reference"][name])
        for name, sq in candidate.items()
        if sides["reference"].get(name, 0.0) > 0 and sq > 0
    }
    for name in sorted(ratios, key=lambda n: -abs(math.log(ratios[n])))[:LAYERS_SHOWN]:
        out[f"layer_norm_ratio[{name}]"] = ratios[name]
    return out


def _cosine(measurements) -> float:
    dot = sum(m.dot for m in measurements)
    norms = math.sqrt(sum(m.reference_sq for m in measurements)) * math.sqrt(
        sum(m.candidate_sq for m in measurements)
    )
    return dot / norms if norms > 0 else math.nan
