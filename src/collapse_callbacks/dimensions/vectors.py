"""Collapse signals for vector and tensor columns (role ``VECTOR``).

Embeddings (``fixed_size_list<float32>[D]``) and tensors (``fixed_shape_tensor``, images
as ``[C, H, W]``) are compared with the house method: every statistic compares two
parts, the comparison's matched reference and candidate parts, and is calibrated against
the same statistic between disjoint random splits of both samples pooled, of the same size
(:meth:`~collapse_callbacks.comparison.Comparison.calibrate`). Effects are oriented so
that larger is worse. ``SIGNALS`` maps the name of the dimension each group of signals
belongs to onto a function ``comparison -> (signals, statistics)``:

``distribution_fidelity``

* ``vector_spread`` (narrowing): the spread of the values across rows, the root mean
  over positions of each position's variance, candidate over reference. Per channel
  for images of at most ``MAX_CHANNEL_SIGNALS`` channels (the worst channel counts: the
  statistic is the minimum over channels of the log ratio, calibrated as such), for
  the whole vector otherwise.
* ``vector_mean_shift`` (shift): how far the mean vector (image) moved, the RMS over
  positions of the difference of the means in units of the reference's RMS spread; the
  largest over channels.
* ``vector_missing_share`` (shift, only where a sample has missing vectors): the share
  of rows without a vector.

``spectral_coherence`` (tensors with two spatial dimensions of at least ``MIN_SIDE``)

* ``high_frequency_energy`` (narrowing): the share of each image's energy (the mean
  removed: per image and channel, the DC term) at spatial frequencies above half the
  Nyquist frequency, candidate over reference. Generated and blurred images lose their
  high frequencies first.
* ``band_profile`` (structure, two-sided): the RMS over ``BANDS`` radial frequency
  bands of the log ratio of the band energy shares. Sharpening, noise and upsampling
  artifacts (more high-frequency energy) move it as well as blur does.

  Spectra are the power of ``numpy.fft.rfft2`` over the last two axes, radially
  averaged with each axis' frequency in units of its Nyquist frequency. 1-D vectors get
  no spectrum: the order of an embedding's coordinates means nothing.

``diversity``

* ``vector_pairwise_distance`` (narrowing): the mean pairwise distance of the rows
  (on :class:`VectorFeatures`), candidate over reference.
* ``vector_coverage`` (narrowing): the share of the reference part's rows whose k-NN
  ball holds a candidate row (PRDC coverage, Naeem et al. 2020), p-value on the logit
  scale as in the diversity analyzer.
* ``vector_duplicate_rate`` (narrowing): the share of the column's vectors that repeat
  an earlier vector exactly, over the whole data (the column states' hashes), compared
  at the smaller side's size (:mod:`~collapse_callbacks.dimensions.duplicates`).

Rows whose vector is missing or holds a non-finite value are left out of every
statistic but the missing share. Columns whose rows differ in length (variable-length
lists) or whose shape differs between the reference and the candidate are skipped.

Costs are capped: images are average-pooled to at most ``POOL_SIDE`` pixels a side for
the per-position statistics and the features; statistics use at most
``FIDELITY_ROWS`` / ``DISTANCE_ROWS`` rows of each part; per-row spectra and features
are computed once per sample and indexed by the parts.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from collapse_callbacks.comparison import (
    MIN_MATCHED_ROWS,
    Calibrated,
    Comparison,
    Part,
    PerView,
)
from collapse_callbacks.data.roles import ColumnRole
from collapse_callbacks.dimensions import entropy as _entropy
from collapse_callbacks.dimensions import spectral as _spectral
from collapse_callbacks.dimensions.base import Signal, SignalKind
from collapse_callbacks.dimensions.duplicates import compare_duplicates

# Images with at most this many channels get per-channel spread and mean-shift
# statistics (RGB, RGBA, grey); wider tensors (feature maps) are one group.
MAX_CHANNEL_SIGNALS = 4
# A spatial dimension needs at least this many pixels for a spectrum with bands.
MIN_SIDE = 4
# Spatial dimensions are average-pooled to at most this many pixels for the
# per-position statistics and the features.
POOL_SIDE = 16
# Features: vectors wider than this are first randomly projected to it (distances are
# kept within a few percent), then reduced to their leading principal axes.
PROJECTION_WIDTH = 256
FIT_ROWS = 5000
SCALE_ROWS = 1000
# Rows of each part used by the per-position and by the distance statistics.
FIDELITY_ROWS = 2000
DISTANCE_ROWS = 1000
# Principal axes used by the diversity statistics (as the tabular diversity analyzer).
DIVERSITY_WIDTH = _entropy.MAX_NEIGHBOUR_DIMENSIONS
PRDC_K = 5
# Radial frequency bands, in units of the Nyquist frequency: (0, 1/4], (1/4, 1/2],
# (1/2, 3/4] and beyond (the corners of the square spectrum). The upper two are the
# "high frequencies".
BANDS = 4
HIGH_BANDS = slice(2, None)
# Band shares are floored at this before their log.
SHARE_FLOOR = 1e-9
# Distances (RMS figures) are calibrated as log(distance + LOG_EPSILON): their null is
# skewed right, its log near symmetric (as the entropy dimension's mutual information).
LOG_EPSILON = 1e-6
LOGIT_CLIP = 0.002

# Tolerances: the effect each signal must exceed to matter in practice.
# A tenth of the spread across rows lost (a fifth of the variance), as the fidelity
# dimension's spread of a numeric column.
SPREAD_TOLERANCE = 0.10
# The mean moved by a tenth of the reference's spread (RMS over positions) beyond what
# null splits show.
MEAN_SHIFT_TOLERANCE = 0.10
# Two percentage points more, or fewer, rows without a vector.
MISSING_TOLERANCE = 0.02
# A fifth of the reference's share of high-frequency energy lost. A 3x3 box blur
# removes most of it; JPEG at quality 90 or a resize round trip removes less than this.
HIGH_FREQUENCY_TOLERANCE = 0.20
# RMS log ratio of the band shares: the bands' shares about 15% off on average.
BAND_PROFILE_TOLERANCE = 0.15
# A tenth of the mean pairwise distance lost (the same scale as the spread).
PAIRWISE_DISTANCE_TOLERANCE = 0.10
# 5% of the reference's rows no longer reached by a candidate row (as the diversity
# analyzer's coverage).
COVERAGE_TOLERANCE = 0.05
# One percentage point more repeated vectors than the reference.
DUPLICATE_TOLERANCE = 0.01


# -- layout ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """How a column's per-row shape is read.

    ``[D]``: one vector. ``[H, W]``: one-channel image. ``[C, H, W]``: image, channels
    first, unless the last side is at most 4 and the first is larger (``[H, W, C]``).
    More dimensions: ``[..., H, W]``, the leading ones all channels of one group.
    Spatial sides shorter than ``MIN_SIDE`` make the tensor a flat vector.
    """

    shape: tuple[int, ...]
    channels_last: bool
    channels: int  # planes of the canonical [channels, H, W] (1 for vectors)
    spatial: tuple[int, int] | None
    groups: int  # channel groups of the per-position statistics

    @classmethod
    def of(cls, shape: tuple[int, ...]) -> Layout:
        shape = tuple(int(s) for s in shape)
        channels_last = len(shape) == 3 and shape[2] <= 4 < shape[0]
        if len(shape) >= 2:
            sides = shape[:2] if channels_last else shape[-2:]
            if min(sides) >= MIN_SIDE:
                channels = shape[2] if channels_last else int(np.prod(shape[:-2]))
                groups = channels if len(shape) == 3 and channels <= MAX_CHANNEL_SIGNALS else 1
                return cls(shape, channels_last, channels, (sides[0], sides[1]), groups)
        return cls(shape, False, 1, None, 1)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def planes(self, x: np.ndarray) -> np.ndarray:
        """``[n, channels, H, W]`` for an image layout."""
        if self.channels_last:
            x = np.moveaxis(x, -1, 1)
        height, width = self.spatial
        return x.reshape(len(x), self.channels, height, width)

    def reduced(self, x: np.ndarray) -> np.ndarray:
        """``[n, groups, positions]`` float32: images average-pooled to at most
        ``POOL_SIDE`` pixels a side (cropped to whole blocks), vectors as they are."""
        if self.spatial is None:
            return x.reshape(len(x), 1, -1)
        planes = self.planes(x)
        height, width = self.spatial
        fy, fx = math.ceil(height / POOL_SIDE), math.ceil(width / POOL_SIDE)
        if fy > 1 or fx > 1:
            h, w = height // fy, width // fx
            planes = planes[:, :, : h * fy, : w * fx].reshape(len(x), self.channels, h, fy, w, fx)
            planes = planes.mean(axis=(3, 5), dtype=np.float32)
        return planes.reshape(len(x), self.groups, -1)

    def describe_group(self, column: str, group: int) -> str:
        return f"`{column}` channel {group}" if self.groups > 1 else f"`{column}`"


def _band_matrix(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """For the flattened ``rfft2`` bins: the one-hot ``[bins, BANDS]`` band matrix with
    the one-sided spectrum's weights (interior columns count twice), DC left out."""
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    radius = np.sqrt((2 * fy) ** 2 + (2 * fx) ** 2)
    band = np.clip(np.ceil(radius * BANDS - 1e-9) - 1, 0, BANDS - 1).astype(np.int64)
    weight = np.full(fx.shape, 2.0)
    weight[0, 0] = 1.0
    if width % 2 == 0:
        weight[0, -1] = 1.0
    weight = np.broadcast_to(weight, radius.shape).ravel()
    matrix = np.zeros((radius.size, BANDS))
    matrix[np.arange(radius.size), band.ravel()] = weight
    matrix[0] = 0.0  # DC
    return matrix, radius


# -- per-sample data, computed once ---------------------------------------------------


class _Side:
    """One column of one sample: what the statistics index by a part's rows."""

    def __init__(self, raw: np.ndarray, layout: Layout) -> None:
        self.raw = raw
        self.layout = layout
        flat = raw.reshape(len(raw), -1)
        self.missing = np.isnan(flat).all(axis=1) if flat.shape[1] else np.ones(len(raw), bool)
        self.finite = np.isfinite(flat).all(axis=1) & ~self.missing
        self._reduced: np.ndarray | None = None
        self._bands: np.ndarray | None = None

    @property
    def reduced(self) -> np.ndarray:
        if self._reduced is None:
            self._reduced = self.layout.reduced(self.raw)
        return self._reduced

    @property
    def bands(self) -> np.ndarray:
        """``[rows, BANDS]`` energy per band (0 for rows that are not finite)."""
        if self._bands is None:
            height, width = self.layout.spatial
            matrix, _ = _band_matrix(height, width)
            out = np.zeros((len(self.raw), BANDS))
            rows = np.flatnonzero(self.finite)
            for start in range(0, len(rows), 256):
                chunk = rows[start : start + 256]
                planes = self.layout.planes(self.raw[chunk]).astype(np.float64)
                planes -= planes.mean(axis=(2, 3), keepdims=True)
                power = np.abs(np.fft.rfft2(planes)) ** 2
                out[chunk] = power.sum(axis=1).reshape(len(chunk), -1) @ matrix
            self._bands = out
        return self._bands

    def rows(self, part: Part, limit: int | None = None) -> np.ndarray:
        """The part's rows (at most ``limit``) that hold a finite vector."""
        rows = part.rows if limit is None else part.rows[:limit]
        return rows[self.finite[rows]]


class _Column:
    def __init__(self, comparison: Comparison, name: str, layout: Layout) -> None:
        self.name = name
        self.layout = layout
        pooled = comparison.pooled_view
        self.sides = PerView(
            comparison,
            lambda view: _Side(view.tensors(name), layout),
            lambda _: _Side(pooled.tensors(name), layout),
        )
        self.reference, self.candidate = self.sides.samples()
        self._features: dict[int, VectorFeatures] = {}
        self._comparison = weakref.ref(comparison)

    def side(self, part: Part) -> _Side:
        return self.sides[part.view]

    def features(self, width: int) -> VectorFeatures:
        if width not in self._features:
            self._features[width] = VectorFeatures(self._comparison(), self.name, width)
        return self._features[width]


_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _fixed_shape(view, column: str) -> bool:
    kind = view.table.schema.field(column).type
    if isinstance(kind, pa.FixedShapeTensorType):
        return True
    while pa.types.is_fixed_size_list(kind):
        kind = kind.value_type
    return not (pa.types.is_list(kind) or pa.types.is_large_list(kind)) and (
        pa.types.is_floating(kind) or pa.types.is_integer(kind) or pa.types.is_boolean(kind)
    )


def _usable(comparison: Comparison, column: str) -> Layout | None:
    """The layout of a column both samples hold with one fixed shape, else None."""
    reference, candidate = comparison.reference_view, comparison.candidate_view
    if column not in candidate.table.column_names or column not in reference.table.column_names:
        return None
    if not (_fixed_shape(reference, column) and _fixed_shape(candidate, column)):
        return None
    shape = reference.tensors(column).shape[1:]
    if shape != candidate.tensors(column).shape[1:] or not shape or int(np.prod(shape)) == 0:
        return None
    return Layout.of(shape)


def vector_columns(comparison: Comparison) -> list[_Column]:
    """The comparison's usable vector columns (cached per comparison)."""
    if comparison not in _CACHE:
        columns = []
        for name in comparison.columns(ColumnRole.VECTOR):
            layout = _usable(comparison, name)
            if layout is not None:
                columns.append(_Column(comparison, name, layout))
        _CACHE[comparison] = columns
    return _CACHE[comparison]


def _reference_rows(comparison: Comparison, column: _Column) -> int:
    a, _ = comparison.observed_parts
    return len(column.reference.rows(a))


def _calibrated_columns(comparison: Comparison) -> list[_Column]:
    if not comparison.can_calibrate:
        return []
    return [
        c for c in vector_columns(comparison) if _reference_rows(comparison, c) >= MIN_MATCHED_ROWS
    ]


# -- features ---------------------------------------------------------------------------


class VectorFeatures:
    """A vector column as ``width`` numbers per row, fitted on the reference sample.

    Images are average-pooled to at most ``POOL_SIDE`` pixels a side; vectors wider than
    ``PROJECTION_WIDTH`` are randomly projected to it (Gaussian, seeded from the
    comparison), centred on the reference's mean and, when still wider than ``width``,
    reduced to the reference's ``width`` leading principal axes. Everything is divided by
    the median pairwise distance of reference rows, so that two typical rows are at
    distance about 1 (as two rows differing by an inter-quartile range in one numeric
    column of the row encoder). A missing or non-finite vector is the reference's mean
    (all zeros), plus a 0/1 missing indicator where the reference sample has such rows.
    """

    def __init__(self, comparison: Comparison, column: str, width: int = 32) -> None:
        self.column = column
        reference = comparison.reference_view.tensors(column)
        self.shape = reference.shape[1:]
        self.layout = Layout.of(self.shape)
        flat = reference.reshape(len(reference), -1)
        finite = np.isfinite(flat).all(axis=1) if flat.shape[1] else np.zeros(len(flat), bool)
        self.has_missing = bool((~finite).any())
        rows = np.flatnonzero(finite)
        rng = comparison.rng(f"vectors: features {column}")
        fit = rng.permutation(rows)[:FIT_ROWS]
        x = self._reduce(reference[fit]) if len(fit) else np.zeros((0, self.layout.size))
        self.projection = None
        if x.shape[1] > PROJECTION_WIDTH:
            self.projection = rng.normal(
                scale=1.0 / np.sqrt(PROJECTION_WIDTH), size=(x.shape[1], PROJECTION_WIDTH)
            )
            x = x @ self.projection
        self.mean = x.mean(axis=0) if len(x) else np.zeros(x.shape[1])
        self.basis = None
        if x.shape[1] > width and len(x) > 1:
            _, vectors = _spectral.covariance_spectrum(x)
            self.basis = vectors[:, :width]
        dims = x.shape[1] if self.basis is None else width
        self.dims = dims if len(x) else 0
        self.scale = 1.0
        if len(x) > 1 and self.dims:
            y = self._rotate(x[:SCALE_ROWS])
            distances = np.sqrt(_entropy.squared_distances(y, y))
            median = float(np.median(distances[np.triu_indices(len(y), k=1)]))
            self.scale = median if median > 0 else 1.0
        self.width = self.dims + int(self.has_missing)

    def _reduce(self, x: np.ndarray) -> np.ndarray:
        return self.layout.reduced(x).reshape(len(x), -1).astype(np.float64)

    def _rotate(self, x: np.ndarray) -> np.ndarray:
        centred = x - self.mean
        return centred if self.basis is None else centred @ self.basis

    def encode(self, part: Part) -> np.ndarray:
        """``[len(part), width]`` float64, finite."""
        out = np.zeros((len(part), self.width))
        values = part.tensors(self.column)
        if values.shape[1:] != self.shape:
            finite = np.zeros(len(part), dtype=bool)
        else:
            flat = values.reshape(len(values), -1)
            finite = np.isfinite(flat).all(axis=1) if flat.shape[1] else np.zeros(len(flat), bool)
        if self.dims and finite.any():
            x = self._reduce(values[finite])
            if self.projection is not None:
                x = x @ self.projection
            out[finite, : self.dims] = self._rotate(x) / self.scale
        if self.has_missing:
            out[:, -1] = (~finite).astype(np.float64)
        return out

    def names(self) -> list[str]:
        if self.basis is not None:
            names = [f"{self.column} (principal axis {i + 1})" for i in range(self.dims)]
        elif self.projection is not None:
            names = [f"{self.column} (projection {i + 1})" for i in range(self.dims)]
        else:
            names = [f"{self.column}[{i}]" for i in range(self.dims)]
        return names + ([f"{self.column} (missing)"] if self.has_missing else [])


# -- statistics -----------------------------------------------------------------------


def _spreads_and_means(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per group of ``[n, groups, positions]``: RMS over positions of the standard
    deviation across rows, and the mean vector ``[groups, positions]``."""
    x = x.astype(np.float64)
    if len(x) < 2:
        nan = np.full(x.shape[1], np.nan)
        return nan, np.full(x.shape[1:], np.nan)
    mean = x.mean(axis=0)
    variance = x.var(axis=0, ddof=1)
    return np.sqrt(variance.mean(axis=1)), mean


def _fidelity_figures(column: _Column, a: Part, b: Part) -> dict:
    sa, sb = column.side(a), column.side(b)
    xa = sa.reduced[sa.rows(a, FIDELITY_ROWS)]
    xb = sb.reduced[sb.rows(b, FIDELITY_ROWS)]
    spread_a, mean_a = _spreads_and_means(xa)
    spread_b, mean_b = _spreads_and_means(xb)
    with np.errstate(all="ignore"):
        log_ratio = np.log(spread_b / spread_a)
        shift = np.sqrt(((mean_b - mean_a) ** 2).mean(axis=1)) / spread_a
    return {
        "spread_a": spread_a,
        "spread_b": spread_b,
        "log_ratio": log_ratio,
        "shift": shift,
        "positions": xa.shape[2],
    }


def _keeps(share: float) -> str:
    """ "keeps 41%" for a loss, "has 130%" for a gain."""
    return f"{'keeps' if share < 1 else 'has'} {_spectral.percent(share)}"


def _log_distance(cal: Calibrated) -> tuple[float, float, float, float]:
    """A distance calibrated on its log: the candidate's distance, the null splits'
    (mean of the log, back-transformed), the null spread on the distance's scale and the
    one-sided p-value for "larger"."""
    log_value, log_reference, spread, p = (float(v[0]) for v in _spectral.figures(cal, "higher"))
    value = math.exp(log_value) - LOG_EPSILON
    reference = math.exp(log_reference) - LOG_EPSILON
    return value, reference, spread * (reference + LOG_EPSILON), p


def _nan_extreme(values: np.ndarray, pick) -> tuple[float, int]:
    if not np.isfinite(values).any():
        return np.nan, -1
    index = int(pick(np.where(np.isfinite(values), values, np.nan)))
    return float(values[index]), index


def _distribution_fidelity(comparison: Comparison) -> tuple[list[Signal], dict[str, float]]:
    columns = _calibrated_columns(comparison)
    signals: list[Signal] = []
    statistics: dict[str, float] = {}
    if not columns:
        return signals, statistics

    def statistic(a: Part, b: Part) -> np.ndarray:
        out = []
        for column in columns:
            fig = _fidelity_figures(column, a, b)
            out.append(
                [
                    _nan_extreme(fig["log_ratio"], np.nanargmin)[0],
                    np.log(_nan_extreme(fig["shift"], np.nanargmax)[0] + LOG_EPSILON),
                ]
            )
        return np.array(out)

    cal = comparison.calibrate(statistic)
    a, b = comparison.observed_parts
    for j, column in enumerate(columns):
        layout, name = column.layout, column.name
        fig = _fidelity_figures(column, a, b)
        spread = Calibrated(cal.observed[j, 0], cal.null[:, j, 0])
        log_value, log_reference, noise, p = (
            float(v[0]) for v in _spectral.figures(spread, "lower")
        )
        if np.isfinite(log_value) and np.isfinite(log_reference):
            _, g = _nan_extreme(fig["log_ratio"], np.nanargmin)
            value, reference = math.exp(log_value), math.exp(log_reference)
            statistics[f"vector_spread[{name}]"] = value
            statistics[f"vector_spread_reference[{name}]"] = reference
            kept = math.exp(log_value - log_reference)
            signals.append(
                Signal(
                    name="vector_spread",
                    kind=SignalKind.NARROWING,
                    column=name,
                    value=value,
                    reference_value=reference,
                    effect=1.0 - kept,
                    tolerance=SPREAD_TOLERANCE,
                    noise=noise,
                    p_value=p,
                    sentence=(
                        f"{layout.describe_group(name, g)} {_keeps(kept)} "
                        f"of the reference's spread across rows (RMS over "
                        f"{fig['positions']} positions of the standard deviation: "
                        f"{fig['spread_b'][g]:.3g} vs {fig['spread_a'][g]:.3g}; a reference "
                        f"split keeps {_spectral.percent(reference)})"
                    ),
                )
            )
        shift = Calibrated(cal.observed[j, 1], cal.null[:, j, 1])
        value, reference, noise, p = _log_distance(shift)
        if np.isfinite(value) and np.isfinite(reference):
            _, g = _nan_extreme(fig["shift"], np.nanargmax)
            statistics[f"vector_mean_shift[{name}]"] = value
            statistics[f"vector_mean_shift_reference[{name}]"] = reference
            signals.append(
                Signal(
                    name="vector_mean_shift",
                    kind=SignalKind.SHIFT,
                    column=name,
                    value=value,
                    reference_value=reference,
                    effect=value - reference,
                    tolerance=MEAN_SHIFT_TOLERANCE,
                    noise=noise,
                    p_value=p,
                    sentence=(
                        f"the mean of {layout.describe_group(name, g)} moved by {value:.2f} of "
                        f"the reference's standard deviations (RMS over {fig['positions']} "
                        f"positions; between random splits of both samples {reference:.2f})"
                    ),
                )
            )
    signals += _missing_signals(comparison, columns, statistics)
    return signals, statistics


def _missing_signals(
    comparison: Comparison, columns: list[_Column], statistics: dict[str, float]
) -> list[Signal]:
    columns = [c for c in columns if c.reference.missing.any() or c.candidate.missing.any()]
    if not columns:
        return []

    def statistic(a: Part, b: Part) -> np.ndarray:
        return np.array(
            [[c.side(p).missing[p.rows].mean() for c in columns] for p in (b, a)], dtype=float
        )

    cal = comparison.calibrate(statistic)
    rows = comparison.matched_rows
    base = np.maximum(np.atleast_2d(cal.null_mean)[1], 1.0 / rows)
    fig = _spectral.Paired.from_calibrated(
        cal, "either", relative=False, min_spread=np.sqrt(2.0 * base / rows)
    )
    signals = []
    for j, column in enumerate(columns):
        value, reference = float(fig.value[j]), float(fig.reference[j])
        statistics[f"vector_missing_share[{column.name}]"] = value
        statistics[f"vector_missing_share_reference[{column.name}]"] = reference
        signals.append(
            Signal(
                name="vector_missing_share",
                kind=SignalKind.SHIFT,
                column=column.name,
                value=value,
                reference_value=reference,
                effect=abs(float(fig.effect[j])),
                tolerance=MISSING_TOLERANCE,
                noise=float(fig.noise[j]),
                p_value=float(fig.p_value[j]),
                sentence=(
                    f"{_spectral.percent(value)} of the candidate's matched rows have no "
                    f"`{column.name}` vector (reference {_spectral.percent(reference)})"
                ),
            )
        )
    return signals


def _band_shares(side: _Side, rows: np.ndarray) -> np.ndarray:
    energy = side.bands[rows].sum(axis=0)
    total = energy.sum()
    return energy / total if total > 0 else np.full(BANDS, np.nan)


def _spectral_coherence(comparison: Comparison) -> tuple[list[Signal], dict[str, float]]:
    columns = [c for c in _calibrated_columns(comparison) if c.layout.spatial is not None]
    signals: list[Signal] = []
    statistics: dict[str, float] = {}
    if not columns:
        return signals, statistics

    def shares(column: _Column, a: Part, b: Part) -> tuple[np.ndarray, np.ndarray]:
        sa, sb = column.side(a), column.side(b)
        return _band_shares(sa, sa.rows(a)), _band_shares(sb, sb.rows(b))

    def statistic(a: Part, b: Part) -> np.ndarray:
        out = []
        for column in columns:
            share_a, share_b = shares(column, a, b)
            with np.errstate(all="ignore"):
                high = np.log(share_b[HIGH_BANDS].sum() / share_a[HIGH_BANDS].sum())
                logs = np.log(np.maximum(share_b, SHARE_FLOOR) / np.maximum(share_a, SHARE_FLOOR))
                profile = np.log(np.sqrt(np.mean(logs**2)) + LOG_EPSILON)
            out.append([high, profile])
        return np.array(out)

    cal = comparison.calibrate(statistic)
    a, b = comparison.observed_parts
    for j, column in enumerate(columns):
        name = column.name
        share_a, share_b = shares(column, a, b)
        high = Calibrated(cal.observed[j, 0], cal.null[:, j, 0])
        log_value, log_reference, noise, p = (float(v[0]) for v in _spectral.figures(high, "lower"))
        if np.isfinite(log_value) and np.isfinite(log_reference):
            value, reference = math.exp(log_value), math.exp(log_reference)
            kept = math.exp(log_value - log_reference)
            statistics[f"high_frequency_energy[{name}]"] = value
            statistics[f"high_frequency_energy_reference[{name}]"] = reference
            statistics[f"high_frequency_share[{name}]"] = float(share_b[HIGH_BANDS].sum())
            statistics[f"high_frequency_share_reference[{name}]"] = float(share_a[HIGH_BANDS].sum())
            signals.append(
                Signal(
                    name="high_frequency_energy",
                    kind=SignalKind.NARROWING,
                    column=name,
                    value=value,
                    reference_value=reference,
                    effect=1.0 - kept,
                    tolerance=HIGH_FREQUENCY_TOLERANCE,
                    noise=noise,
                    p_value=p,
                    sentence=(
                        f"`{name}` {_keeps(kept)} of the reference's "
                        f"high-frequency energy (spatial frequencies above half the Nyquist "
                        f"frequency hold {_spectral.percent(share_b[HIGH_BANDS].sum())} of "
                        f"the candidate's energy, "
                        f"{_spectral.percent(share_a[HIGH_BANDS].sum())} of the reference's; "
                        f"a reference split keeps {_spectral.percent(reference)})"
                    ),
                )
            )
        profile = Calibrated(cal.observed[j, 1], cal.null[:, j, 1])
        value, reference, noise, p = _log_distance(profile)
        if np.isfinite(value) and np.isfinite(reference):
            with np.errstate(all="ignore"):
                logs = np.log(np.maximum(share_b, SHARE_FLOOR) / np.maximum(share_a, SHARE_FLOOR))
            k = int(np.nanargmax(np.abs(logs))) if np.isfinite(logs).any() else 0
            low, high_edge = k / BANDS, (k + 1) / BANDS
            band = (
                f"{low:.2g}-{high_edge:.2g} of the Nyquist frequency"
                if k < BANDS - 1
                else f"above {low:.2g} of the Nyquist frequency"
            )
            statistics[f"band_profile[{name}]"] = value
            statistics[f"band_profile_reference[{name}]"] = reference
            for i in range(BANDS):
                statistics[f"band_share[{name}][{i}]"] = float(share_b[i])
                statistics[f"band_share_reference[{name}][{i}]"] = float(share_a[i])
            signals.append(
                Signal(
                    name="band_profile",
                    kind=SignalKind.STRUCTURE,
                    column=name,
                    value=value,
                    reference_value=reference,
                    effect=value - reference,
                    tolerance=BAND_PROFILE_TOLERANCE,
                    noise=noise,
                    p_value=p,
                    sentence=(
                        f"the spatial-frequency profile of `{name}` changed: band energy "
                        f"shares differ by {value:.2f} (RMS log ratio over {BANDS} bands; "
                        f"between random splits of both samples {reference:.2f}); most at {band}: "
                        f"{_spectral.percent(share_b[k])} of the candidate's energy vs "
                        f"{_spectral.percent(share_a[k])} of the reference's"
                    ),
                )
            )
    return signals, statistics


def _logit(share: np.ndarray) -> np.ndarray:
    clipped = np.clip(share, LOGIT_CLIP, 1 - LOGIT_CLIP)
    return np.log(clipped / (1 - clipped))


def _mean_pairwise_distance(x: np.ndarray) -> float:
    if len(x) < 2:
        return np.nan
    distances = np.sqrt(_entropy.squared_distances(x, x))
    return float(distances[np.triu_indices(len(x), k=1)].mean())


def _diversity(comparison: Comparison) -> tuple[list[Signal], dict[str, float]]:
    from collapse_callbacks import diversity as _diversity_module  # imports this module's peers

    columns = _calibrated_columns(comparison)
    signals: list[Signal] = []
    statistics: dict[str, float] = {}
    if not columns:
        return signals, statistics
    encoded = {}
    for column in columns:
        features = column.features(DIVERSITY_WIDTH)
        encoded[column.name] = PerView(
            comparison,
            lambda view, f=features: f.encode(Part(view, np.arange(view.rows)))[:, : f.dims],
        )
    a0, _ = comparison.observed_parts
    floors = {}
    for column in columns:
        x = encoded[column.name][a0.view][column.reference.rows(a0, DISTANCE_ROWS)]
        spacing = _entropy.kth_neighbour_distance(x, PRDC_K)
        floors[column.name] = (
            _entropy.KNN_DISTANCE_FLOOR * float(np.nanmedian(spacing)) if len(spacing) else 0.0
        )

    def rows(column: _Column, part: Part) -> np.ndarray:
        return encoded[column.name][part.view][column.side(part).rows(part, DISTANCE_ROWS)]

    def statistic(a: Part, b: Part) -> np.ndarray:
        out = []
        for column in columns:
            xa, xb = rows(column, a), rows(column, b)
            with np.errstate(all="ignore"):
                ratio = np.log(_mean_pairwise_distance(xb) / _mean_pairwise_distance(xa))
            coverage = (
                _diversity_module.prdc(xa, xb, PRDC_K, floors[column.name])[3]
                if len(xa) > PRDC_K and len(xb) > PRDC_K
                else np.nan
            )
            out.append([ratio, coverage])
        return np.array(out)

    cal = comparison.calibrate(statistic)
    _a, _b = comparison.observed_parts
    for j, column in enumerate(columns):
        name = column.name
        dims = column.features(DIVERSITY_WIDTH).dims
        statistics[f"vector_distance_dimensions[{name}]"] = float(dims)
        pairwise = Calibrated(cal.observed[j, 0], cal.null[:, j, 0])
        log_value, log_reference, noise, p = (
            float(v[0]) for v in _spectral.figures(pairwise, "lower")
        )
        if np.isfinite(log_value) and np.isfinite(log_reference):
            value, reference = math.exp(log_value), math.exp(log_reference)
            kept = math.exp(log_value - log_reference)
            statistics[f"vector_pairwise_distance[{name}]"] = value
            statistics[f"vector_pairwise_distance_reference[{name}]"] = reference
            signals.append(
                Signal(
                    name="vector_pairwise_distance",
                    kind=SignalKind.NARROWING,
                    column=name,
                    value=value,
                    reference_value=reference,
                    effect=1.0 - kept,
                    tolerance=PAIRWISE_DISTANCE_TOLERANCE,
                    noise=noise,
                    p_value=p,
                    sentence=(
                        f"`{name}` vectors of the candidate are {_spectral.percent(kept)} as "
                        f"far apart as the reference's (mean pairwise distance over "
                        f"{dims} feature dimensions, at most {DISTANCE_ROWS} rows; a "
                        f"reference split {_spectral.percent(reference)})"
                    ),
                )
            )
        coverage = Calibrated(cal.observed[j, 1], cal.null[:, j, 1])
        value, reference, spread, _ = (float(v[0]) for v in _spectral.figures(coverage, "lower"))
        if np.isfinite(value) and np.isfinite(reference):
            p = float(
                np.atleast_1d(
                    Calibrated(_logit(coverage.observed), _logit(coverage.null)).p_value("lower")
                )[0]
            )
            effect, noise = _spectral.relative_loss(value, reference, spread)
            statistics[f"vector_coverage[{name}]"] = value
            statistics[f"vector_coverage_reference[{name}]"] = reference
            signals.append(
                Signal(
                    name="vector_coverage",
                    kind=SignalKind.NARROWING,
                    column=name,
                    value=value,
                    reference_value=reference,
                    effect=float(effect),
                    tolerance=COVERAGE_TOLERANCE,
                    noise=float(noise),
                    p_value=p,
                    sentence=(
                        f"{value:.0%} of the reference's `{name}` vectors have a candidate "
                        f"vector inside their {PRDC_K}-NN ball (reference {reference:.0%})"
                        + (
                            f": the candidate misses {_spectral.percent(effect)} of the "
                            f"reference's support"
                            if effect > 0
                            else ""
                        )
                    ),
                )
            )
    signals += _duplicate_signals(comparison, columns, statistics)
    return signals, statistics


def _duplicate_signals(
    comparison: Comparison, columns: list[_Column], statistics: dict[str, float]
) -> list[Signal]:
    signals = []
    for column in columns:
        reference = comparison.reference.states[column.name].duplicates
        candidate = comparison.candidate.states[column.name].duplicates
        if reference is None or candidate is None or not (reference.rows and candidate.rows):
            continue  # profiles stored before the column states counted repeats
        test = compare_duplicates([reference], [candidate])
        statistics[f"vector_duplicate_rate[{column.name}]"] = test.value
        statistics[f"vector_duplicate_rate_reference[{column.name}]"] = test.reference
        sentence = (
            f"{_spectral.percent(test.value)} of the candidate's `{column.name}` vectors "
            f"repeat an earlier one exactly (reference {_spectral.percent(test.reference)}; "
            f"both at {test.rows:,} vectors)"
        )
        signals.append(
            test.signal("vector_duplicate_rate", column.name, DUPLICATE_TOLERANCE, sentence)
        )
    return signals


SIGNALS: dict[str, Callable[[Comparison], tuple[list[Signal], dict[str, float]]]] = {
    "distribution_fidelity": _distribution_fidelity,
    "spectral_coherence": _spectral_coherence,
    "diversity": _diversity,
}
