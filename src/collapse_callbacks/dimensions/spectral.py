"""Spectral coherence: does the candidate keep the reference's covariance eigen-spectrum?

Rows are encoded by the comparison's :class:`~collapse_callbacks.comparison.RowEncoder`
(numeric columns robust-scaled, categoricals one-hot). For each pair of parts the
reference part's covariance gives principal axes and their variances; the candidate part,
centred on its own mean (a change of location is shift, not narrowing), is projected on
those axes. Signals:

* ``variance_retained`` (narrowing): the candidate's total variance over the
  reference's. Projection on a complete orthonormal basis keeps the trace, so this is
  the share of the reference's variance the candidate spreads along its axes.
* ``trailing_variance_retained`` (narrowing): the same share along the reference's
  *minor* axes, those beyond the leading axes that hold ``LEADING_SHARE`` of its
  variance. Recursive training thins these first: a generator fit to samples loses the
  weak directions before the strong ones.
* ``effective_rank_ratio`` (structure, two-sided): the candidate's effective rank
  (exp of the entropy of its normalized eigenvalues) over the reference's. Correlations
  smoothed away raise it, merged modes or collapsed directions lower it.

Text and token columns enter the encoding as hashed n-gram features, vector and
tensor columns as a projection (``dimensions/features.py``); their power spectra along
the sequence axis and over image frequencies come from ``dimensions/sequences.py`` and
``dimensions/vectors.py``. With nothing to encode the dimension does not run.

The encoded dimensions are winsorized at the reference's 1% and 99% quantiles first
(:class:`SpectralRows`), so that rare spikes do not dominate the spectrum.

The helpers :class:`EncodedRows`, :class:`ProjectedRows`, :class:`SpectralRows`,
:func:`covariance_spectrum` and
:func:`spectrum_entropy` are shared with the entropy dimension and the diversity analyzer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from collapse_callbacks.comparison import (
    MAX_CATEGORIES_ENCODED,
    MIN_MATCHED_ROWS,
    Calibrated,
    Comparison,
    Part,
    PerView,
)
from collapse_callbacks.dimensions.base import DimensionEvidence, Signal, SignalKind

NAME = "spectral_coherence"

# The leading axes together hold this share of the reference part's variance; the
# axes after them are the "trailing" (minor) axes. 90% is the usual cut for "the
# directions that matter" in PCA; what lies beyond is what a fitted generator drops.
LEADING_SHARE = 0.90
# An axis whose variance is below this fraction of the total is a null direction
# (a constant column, the sum-to-one constraint of a one-hot block): no ratio there.
NULL_AXIS = 1e-9

# Spectra are taken on encoded dimensions winsorized at these reference quantiles (see
# SpectralRows).
WINSOR = 0.01

# Tolerances: the effect each signal must exceed to matter in practice.
# A tenth of the total variance gone: every column's spread about 5% smaller.
VARIANCE_TOLERANCE = 0.10
# Minor axes carry little variance and are noisier, so the practical bar is higher:
# a fifth of their variance gone.
TRAILING_TOLERANCE = 0.20
# log of the effective-rank ratio: a change of about 10% in the number of effective
# directions (e.g. 10 -> 9 on a 10-dimensional spectrum).
EFFECTIVE_RANK_TOLERANCE = 0.10


class EncodedRows:
    """The encoded rows of both samples, computed once; ``rows(part)`` indexes them."""

    def __init__(self, comparison: Comparison) -> None:
        encoder = comparison.encoder
        self.width = encoder.width
        self.names = encoded_names(comparison)
        self._matrices = PerView(
            comparison,
            lambda view: encoder.encode(Part(view, np.arange(view.rows))) if self.width else None,
            lambda matrices: None if matrices[0] is None else np.vstack(matrices),
        )

    @property
    def reference(self) -> np.ndarray | None:
        """Every encoded row of the reference sample (None with nothing to encode)."""
        return self._matrices.reference

    def rows(self, part: Part, limit: int | None = None) -> np.ndarray:
        rows = part.rows if limit is None else part.rows[:limit]
        return self._matrices[part.view][rows]


class ProjectedRows:
    """Encoded rows on at most ``dims`` leading principal axes of the reference sample
    (all of them, unprojected, when there are no more): distance-based statistics cost
    ``rows^2 * width`` per split, and beyond a few dozen dimensions the leading axes
    carry the distances."""

    def __init__(self, encoded: EncodedRows, dims: int) -> None:
        self._encoded = encoded
        self.source_width = encoded.width
        self.width = min(encoded.width, dims)
        self.basis = None
        reference = encoded.reference
        if encoded.width > dims and reference is not None and len(reference) > 1:
            self.mean = reference.mean(axis=0)
            self.basis = covariance_spectrum(reference)[1][:, :dims]

    def rows(self, part: Part, limit: int | None = None) -> np.ndarray:
        x = self._encoded.rows(part, limit)
        return x if self.basis is None else (x - self.mean) @ self.basis

    def describe(self) -> str:
        if self.basis is None:
            return f"{self.width} encoded dimensions"
        return f"{self.width} dimensions (the leading principal axes of {self.source_width})"


class SpectralRows:
    """Encoded rows prepared for spectra: each dimension winsorized at the reference
    sample's ``WINSOR`` and ``1 - WINSOR`` quantiles; dimensions left constant (a column
    that is almost always one value, a category rarer than ``WINSOR``) are dropped.

    Why: on the encoder's robust scale a column that is nearly constant (an IQR of 0)
    turns its rare values into spikes that dominate every variance and eigenvalue, and
    which reference split holds the spikes then decides the statistic, so its null is far
    too narrow (digits: 35% of real splits below p = 0.01 for the effective rank, 0% once
    winsorized). Thinning of the tails themselves is the fidelity dimension's to see.
    (Scaling every dimension to unit variance as well was tried and rejected: it blows
    up rare one-hot columns the same way, 15% below p = 0.01 on penguins.)
    """

    def __init__(self, encoded: EncodedRows) -> None:
        self._encoded = encoded
        reference = encoded.reference
        if reference is None or len(reference) == 0:
            self.low = self.high = np.zeros(0)
            self.keep = np.zeros(0, dtype=bool)
        else:
            self.low, self.high = np.quantile(reference, [WINSOR, 1.0 - WINSOR], axis=0)
            self.keep = self.high > self.low
        self.width = int(self.keep.sum())
        self.names = [name for name, kept in zip(encoded.names, self.keep) if kept]

    def rows(self, part: Part, limit: int | None = None) -> np.ndarray:
        return np.clip(self._encoded.rows(part, limit), self.low, self.high)[:, self.keep]


def encoded_names(comparison: Comparison) -> list[str]:
    """One readable name per encoded dimension, in the encoder's order."""
    encoder = comparison.encoder
    names = []
    for column in encoder.numeric:
        names.append(column)
        if encoder.missing[column]:
            names.append(f"{column} (missing)")
    for column in encoder.categorical:
        values = comparison.categories[column][:MAX_CATEGORIES_ENCODED]
        names.extend(f"{column}={value}" for value in values)
    for block in encoder.blocks:
        names.extend(block.names())
    return names


def covariance_spectrum(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (descending, clipped at 0) and eigenvectors (columns) of the sample
    covariance of ``x`` (rows centred on their own mean)."""
    centred = x - x.mean(axis=0)
    covariance = centred.T @ centred / max(len(x) - 1, 1)
    values, vectors = np.linalg.eigh(covariance)
    return np.clip(values[::-1], 0.0, None), vectors[:, ::-1]


def spectrum_entropy(eigenvalues: np.ndarray) -> float:
    """Shannon entropy (nats) of the normalized eigenvalues: log of the effective rank."""
    total = eigenvalues.sum()
    if not total > 0:
        return 0.0
    p = eigenvalues[eigenvalues > 0] / total
    return float(-(p * np.log(p)).sum()) + 0.0  # + 0.0: no -0.0 for a single direction


def figures(cal: Calibrated, worse: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For a two-sample statistic (one that compares the two parts): the observed value,
    the reference's value (the null mean), the null spread and the p-value, as arrays."""
    with np.errstate(all="ignore"):
        return (
            np.atleast_1d(cal.observed),
            np.atleast_1d(cal.null_mean),
            np.atleast_1d(cal.null_sd),
            np.atleast_1d(cal.p_value(worse)),
        )


@dataclass(frozen=True)
class Paired:
    """A one-sample figure ``f`` compared as ``f(candidate part) - f(reference part)``.

    Calibrating ``f(candidate part)`` alone against ``f`` on null splits is wrong
    whenever the samples are not much larger than the parts: the splits all come from
    the same rows, so they vary less than a fresh sample would and their mean carries
    those rows' own error (on penguins 10% of real splits fell below p = 0.01). The
    difference of two disjoint parts has the same spread whether both come from the
    null pool or one from each sample. ``reference`` is the reference part's figure
    moved by the null's mean difference, so that ``value`` vs ``reference`` is exactly
    what ``effect`` measures.
    """

    value: np.ndarray
    reference: np.ndarray
    effect: np.ndarray  # oriented so that larger is worse
    noise: np.ndarray
    p_value: np.ndarray

    @classmethod
    def from_calibrated(
        cls,
        cal: Calibrated,
        worse: str,
        *,
        relative: bool,
        min_spread: np.ndarray | None = None,
        root_deficit: bool = False,
    ) -> Paired:
        """``cal`` holds ``[f(candidate part), f(reference part)]`` (first axis) per draw.

        ``min_spread`` floors the null spread of the difference. ``root_deficit`` (with
        ``worse="lower"``) takes the p-value on ``sqrt(max(0, f(reference) -
        f(candidate)))``: for a deficit that behaves like a chi-square (a histogram's
        entropy below the maximum its own bins give) the root is near normal (Fisher),
        where the deficit's long upper tail made the t reference too liberal.
        """
        observed, null = np.asarray(cal.observed), np.asarray(cal.null)
        difference = Calibrated(observed[0] - observed[1], null[:, 0] - null[:, 1])
        with np.errstate(all="ignore"):
            shift = difference.observed - difference.null_mean
            spread = difference.null_sd
            if root_deficit:
                root = Calibrated(
                    np.sqrt(np.maximum(-difference.observed, 0.0)),
                    np.sqrt(np.maximum(-difference.null, 0.0)),
                )
                p = root.p_value("higher")
            elif min_spread is None:
                p = difference.p_value(worse)
            else:
                spread = np.maximum(spread, min_spread)
                p = _t_p_value(shift, spread, null.shape[0], worse)
            value = observed[0]
            reference = value - shift
            effect = -shift if worse == "lower" else shift
            if relative:
                scale = np.where(reference > 0, reference, 1.0)
                effect, spread = effect / scale, spread / scale
        return cls(
            *(
                np.atleast_1d(np.asarray(x, dtype=np.float64))
                for x in (value, reference, effect, spread, p)
            )
        )

    def finite(self, j: int) -> bool:
        return bool(np.isfinite(self.value[j]) and np.isfinite(self.reference[j]))


def _t_p_value(shift: np.ndarray, spread: np.ndarray, draws: int, worse: str) -> np.ndarray:
    """``Calibrated.p_value`` with a given spread (a floored one)."""
    t = shift / (spread * np.sqrt(1 + 1 / draws))
    dist = stats.t(df=max(draws - 1, 1))
    if worse == "lower":
        return dist.cdf(t)
    if worse == "higher":
        return dist.sf(t)
    return np.minimum(1.0, 2 * dist.sf(np.abs(t)))


def relative_loss(value: float, reference: float, spread: float) -> tuple[float, float]:
    """The share of the reference's figure the candidate lost (larger is worse) and its
    null spread on the same scale; the plain difference when the reference is zero."""
    if reference > 0:
        return 1.0 - value / reference, spread / reference
    return reference - value, spread


def percent(share: float) -> str:
    """A share as a percentage with the precision it needs: 0.4%, 3.1%, 42%."""
    return f"{share:.1%}" if abs(share) < 0.1 else f"{share:.0%}"


def not_calibratable(comparison: Comparison) -> str:
    return (
        f"the matched samples hold {comparison.matched_rows} rows per side; calibrating "
        f"against the reference needs at least {MIN_MATCHED_ROWS}"
    )


def _pair_spectrum(reference: np.ndarray, candidate: np.ndarray) -> dict:
    """Reference eigen-decomposition and the candidate's variance along its axes."""
    values, vectors = covariance_spectrum(reference)
    total = values.sum()
    keep = values > NULL_AXIS * total if total > 0 else np.zeros(len(values), dtype=bool)
    centred = candidate - candidate.mean(axis=0)
    projected = centred @ vectors
    candidate_variance = (projected**2).sum(axis=0) / max(len(candidate) - 1, 1)
    axes = np.flatnonzero(keep)
    leading = 0
    if len(axes) >= 2:
        cumulative = np.cumsum(values[axes]) / values[axes].sum()
        leading = min(int(np.searchsorted(cumulative, LEADING_SHARE)) + 1, len(axes) - 1)
    return {
        "values": values,
        "vectors": vectors,
        "candidate_variance": candidate_variance,
        "axes": axes,
        "trailing": axes[leading:] if len(axes) >= 2 else axes[:0],
    }


def _log_ratios(encoded: SpectralRows):
    """Statistic: log of [variance retained, trailing variance retained, effective-rank
    ratio]. Ratios are calibrated on the log scale, where their null is near symmetric."""

    def statistic(a: Part, b: Part) -> np.ndarray:
        xa, xb = encoded.rows(a), encoded.rows(b)
        pair = _pair_spectrum(xa, xb)
        values, cand = pair["values"], pair["candidate_variance"]
        trailing = pair["trailing"]
        with np.errstate(all="ignore"):
            retained = np.log(cand.sum() / values.sum())
            trailing_retained = (
                np.log(cand[trailing].sum() / values[trailing].sum()) if len(trailing) else np.nan
            )
        candidate_values, _ = covariance_spectrum(xb)
        log_rank_ratio = spectrum_entropy(candidate_values) - spectrum_entropy(values)
        return np.array([retained, trailing_retained, log_rank_ratio])

    return statistic


def _weakest_axis(encoded: SpectralRows, comparison: Comparison) -> str:
    """The leading reference axis the candidate thins most, named by its heaviest column."""
    a, b = comparison.observed_parts
    pair = _pair_spectrum(encoded.rows(a), encoded.rows(b))
    axes = pair["axes"][: max(len(pair["axes"]) - len(pair["trailing"]), 1)]
    if not len(axes):
        return ""
    ratios = pair["candidate_variance"][axes] / pair["values"][axes]
    worst = int(axes[np.argmin(ratios)])
    loading = np.abs(pair["vectors"][:, worst])
    column = encoded.names[int(np.argmax(loading))]
    return (
        f"; along the reference's principal axis {worst + 1} (mostly `{column}`) it keeps "
        f"{ratios.min():.0%}"
    )


def run(comparison: Comparison) -> DimensionEvidence:
    if comparison.encoder.width == 0:
        return DimensionEvidence(
            NAME,
            not_run="no columns to encode",
        )
    if not comparison.can_calibrate:
        return DimensionEvidence(NAME, not_run=not_calibratable(comparison))
    encoded = SpectralRows(EncodedRows(comparison))
    if encoded.width == 0:
        return DimensionEvidence(
            NAME, not_run="every encoded column is (almost) constant in the reference sample"
        )
    cal = comparison.calibrate(_log_ratios(encoded))
    log_value, log_reference, spread, p_lower = figures(cal, "lower")
    p_either = np.atleast_1d(cal.p_value("either"))
    value, reference = np.exp(log_value), np.exp(log_reference)
    finite = np.isfinite(log_value) & np.isfinite(log_reference)
    signals: list[Signal] = []
    statistics: dict[str, float] = {
        "spectral_dimensions": float(encoded.width),
        "matched_rows": float(comparison.matched_rows),
    }
    for j, key in enumerate(
        ("variance_retained", "trailing_variance_retained", "effective_rank_ratio")
    ):
        if finite[j]:
            statistics[key] = float(value[j])
            statistics[f"{key}_reference"] = float(reference[j])

    if finite[0]:
        signals.append(
            Signal(
                name="variance_retained",
                kind=SignalKind.NARROWING,
                column=None,
                value=float(value[0]),
                reference_value=float(reference[0]),
                effect=float(1.0 - value[0] / reference[0]),
                tolerance=VARIANCE_TOLERANCE,
                noise=float(spread[0]),
                p_value=float(p_lower[0]),
                sentence=(
                    f"the candidate keeps {value[0]:.0%} of the reference's total variance "
                    f"over {encoded.width} encoded dimensions (a reference split keeps "
                    f"{reference[0]:.0%})" + _weakest_axis(encoded, comparison)
                ),
            )
        )
    if finite[1]:
        signals.append(
            Signal(
                name="trailing_variance_retained",
                kind=SignalKind.NARROWING,
                column=None,
                value=float(value[1]),
                reference_value=float(reference[1]),
                effect=float(1.0 - value[1] / reference[1]),
                tolerance=TRAILING_TOLERANCE,
                noise=float(spread[1]),
                p_value=float(p_lower[1]),
                sentence=(
                    f"along the reference's minor principal axes (beyond the leading ones "
                    f"holding {LEADING_SHARE:.0%} of its variance) the candidate keeps "
                    f"{value[1]:.0%} of the variance (a reference split keeps "
                    f"{reference[1]:.0%})"
                ),
            )
        )
    if finite[2]:
        direction = "fell" if value[2] < reference[2] else "rose"
        signals.append(
            Signal(
                name="effective_rank_ratio",
                kind=SignalKind.STRUCTURE,
                column=None,
                value=float(value[2]),
                reference_value=float(reference[2]),
                effect=float(abs(log_value[2] - log_reference[2])),
                tolerance=EFFECTIVE_RANK_TOLERANCE,
                noise=float(spread[2]),
                p_value=float(p_either[2]),
                sentence=(
                    f"the effective rank of the encoded rows {direction}: candidate/reference "
                    f"ratio {value[2]:.2f} (between random splits of both samples {reference[2]:.2f})"
                ),
            )
        )
    return DimensionEvidence(NAME, signals=tuple(signals), statistics=statistics)
