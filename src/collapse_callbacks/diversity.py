"""The diversity analyzer: is the candidate as varied as the reference?

Not one of the eight dimensions, but its evidence feeds the verdict the same way. Every
signal is narrowing (one-sided: a more varied candidate is not collapsing). All but the
duplicate rates are computed on the comparison's matched parts and calibrated against
disjoint random splits of both samples pooled, of the same size. Each figure is also
given for the reference itself, so a report can say "candidate 0.61 vs reference 0.93":
for coverage and recall, which compare two parts, the mean over the null splits; for
the one-part figures (distinct ratios, Vendi) the matched reference part's own figure,
compared as a difference (see :class:`~collapse_callbacks.dimensions.spectral.Paired`).

* ``duplicate_rate`` / ``near_duplicate_rate``: share of the rows that repeat an earlier
  row, exactly or with numbers rounded to ``NEAR_DUPLICATE_DIGITS`` significant digits
  and text compared by its words only (higher is worse). These two are whole-data
  figures from the profiles' row hashes, compared at the smaller dataset's size and
  tested against their standard errors (``dimensions/duplicates.py``): a sample of rows
  keeps a repeated pair whole only with the square of its sampling rate.
* ``distinct_ratio`` per column with at least ``MIN_DISTINCT_VALUES`` distinct values:
  distinct present values over present values.
* ``coverage`` (Naeem et al. 2020, PRDC): share of reference rows whose k-NN ball
  (radius: distance to their k-th nearest reference row) holds a candidate row.
* ``recall`` (Kynkaanniemi et al. 2019, as in PRDC): share of reference rows inside the
  k-NN ball of some candidate row.
* ``vendi``: exp of the entropy of the normalized eigenvalues of an RBF kernel matrix of
  the rows (Friedman & Dieng 2023), the "effective number of distinct rows"; the kernel
  is approximated with random Fourier features, so it costs O(n * features).

Statistics add PRDC precision and density, for information.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow.compute as pc
from scipy import linalg
from scipy.spatial.distance import pdist

from collapse_callbacks.comparison import Calibrated, Comparison, Part, PerView, SampleView
from collapse_callbacks.data.roles import ColumnRole
from collapse_callbacks.dimensions.base import DimensionEvidence, Signal, SignalKind
from collapse_callbacks.dimensions.duplicates import compare_duplicates
from collapse_callbacks.dimensions.entropy import (
    KNN_DISTANCE_FLOOR,
    NeighbourRows,
    kth_neighbour_distance,
    squared_distances,
)
from collapse_callbacks.dimensions.spectral import (
    Paired,
    figures,
    not_calibratable,
    percent,
    relative_loss,
)
from collapse_callbacks.profile.counting import dense_ids, unique_counts
from collapse_callbacks.profile.rows import row_hashes
from collapse_callbacks.profile.table import NEAR_DUPLICATE_DIGITS

NAME = "diversity"

PRDC_K = 5
# PRDC needs three distance matrices per part pair, and the Vendi score a feature map
# and an eigen-decomposition per part; both run once per null split, so on 1,000 rows.
PRDC_ROWS = 1000
VENDI_ROWS = 1000
# Random Fourier features of the Vendi score's RBF kernel. Their approximation error is
# the same for the candidate and the null splits it is calibrated against, so it widens
# the null rather than biasing the test; 128 instead of 256 halved the Vendi signal's
# time and changed no verdict on the quality benchmark's 1,754 cases (session 8).
VENDI_FEATURES = 128
FEATURE_BLOCK_ROWS = 2048
BANDWIDTH_ROWS = 1000

# A column's distinct ratio is a signal only when the reference part holds at least this
# many distinct values. With fewer, the count moves by whole rare values (a pixel that is
# non-zero in three rows of a thousand), its null is too discrete for the t reference,
# and lost categories are the fidelity dimension's rare-category coverage anyway.
MIN_DISTINCT_VALUES = 20

# Tolerances: the effect each signal must exceed to matter in practice.
# One percentage point more repeated rows than the reference: a tenth of the 10% repeat
# share at which the repetition study in COLLAPSE-RESEARCH 1.2 lost a third of the compute.
DUPLICATE_TOLERANCE = 0.01
NEAR_DUPLICATE_TOLERANCE = 0.01
# Share of the distinct values lost: 5% is one category in twenty gone.
DISTINCT_TOLERANCE = 0.05
# Share of the reference's coverage / recall lost: 5% of the reference's support no
# longer reached by candidate rows.
COVERAGE_TOLERANCE = 0.05
RECALL_TOLERANCE = 0.05
# Share of the effective number of distinct rows lost.
VENDI_TOLERANCE = 0.10


# Shares closer to 0 or 1 than this are clipped before the logit: a 1,000-row PRDC
# share moves in steps of 0.001, so finer distinctions are noise.
LOGIT_CLIP = 0.002


def _hashes(view: SampleView, roles, digits: int | None) -> np.ndarray:
    batches = view.table.to_batches()
    if not batches:
        return np.empty(0, dtype=np.uint64)
    return np.concatenate([row_hashes(batch, roles, digits) for batch in batches])


@dataclass(frozen=True)
class _ValueIds:
    """Dense ids of a column's values in one sample (-1 where missing), and the value
    hashes they index, ascending."""

    ids: np.ndarray
    values: np.ndarray

    @classmethod
    def of(cls, view: SampleView, column: str, role) -> _ValueIds:
        values, ids = dense_ids(_hashes(view, {column: role}, None))
        missing = pc.is_null(view.table.column(column), nan_is_null=True)
        ids[np.asarray(missing.to_numpy(zero_copy_only=False), dtype=bool)] = -1
        return cls(ids, values)

    @classmethod
    def joined(cls, samples: list[_ValueIds]) -> _ValueIds:
        """The samples' rows in one index (the pooled view's): each sample's values are
        looked up among the union of them, so equal values share an id."""
        values = unique_counts(np.concatenate([s.values for s in samples]))[0]
        ids = [
            np.where(s.ids >= 0, np.searchsorted(values, s.values)[np.maximum(s.ids, 0)], -1)
            for s in samples
        ]
        return cls(np.concatenate(ids), values)


def distinct_count(ids: np.ndarray) -> tuple[int, int]:
    """Distinct present values and present values."""
    ids = ids[ids >= 0]
    return (int(np.count_nonzero(np.bincount(ids))) if len(ids) else 0), len(ids)


def distinct_ratio(ids: np.ndarray) -> float:
    ids = ids[ids >= 0]
    return np.count_nonzero(np.bincount(ids)) / len(ids) if len(ids) else np.nan


def prdc(
    real: np.ndarray,
    fake: np.ndarray,
    k: int = PRDC_K,
    floor: float = 0.0,
    radii: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """[precision, recall, density, coverage] of ``fake`` against ``real`` (Naeem et al.
    2020), with ``<=`` on ball radii floored at ``floor`` so repeated rows count as inside.
    ``radii``: both sides' k-th neighbour distances, if known."""
    if radii is None:
        radii = (kth_neighbour_distance(real, k), kth_neighbour_distance(fake, k))
    real_radius, fake_radius = (np.maximum(r, floor) for r in radii)
    distances = np.sqrt(squared_distances(real, fake))
    inside_real = distances <= real_radius[:, None]  # fake j inside real i's ball
    precision = inside_real.any(axis=0).mean()
    density = inside_real.sum() / (k * distances.shape[1])
    coverage = inside_real.any(axis=1).mean()
    recall = (distances <= fake_radius[None, :]).any(axis=1).mean()
    return np.array([precision, recall, density, coverage])


class RandomFourierVendi:
    """Vendi score with an RBF kernel ``exp(-|x - y|^2 / (2 bandwidth^2))`` approximated
    by ``features`` random Fourier features drawn once (so every part shares them)."""

    def __init__(self, width: int, bandwidth: float, features: int, rng) -> None:
        self.bandwidth = bandwidth
        self.weights = rng.normal(scale=1.0 / bandwidth, size=(width, features))
        self.phases = rng.uniform(0.0, 2.0 * np.pi, size=features)
        self.scale = np.sqrt(2.0 / features)

    def __call__(self, x: np.ndarray) -> float:
        return self.of_features(self.features(x))

    def features(self, x: np.ndarray) -> np.ndarray:
        """Each row's random Fourier features (one row of ``phi``), in single precision.

        A block of rows at a time, in place: on a 20,000-row sample the float64
        temporaries of the whole matrix at once took 100 MB more peak memory."""
        out = np.empty((len(x), self.weights.shape[1]), dtype=np.float32)
        for start in range(0, len(x), FEATURE_BLOCK_ROWS):
            block = x[start : start + FEATURE_BLOCK_ROWS] @ self.weights
            block += self.phases
            np.cos(block, out=block)
            block *= self.scale
            out[start : start + FEATURE_BLOCK_ROWS] = block
        return out

    @staticmethod
    def of_features(phi: np.ndarray) -> float:
        """The Vendi score of the rows whose features are ``phi``."""
        if len(phi) == 0:
            return np.nan
        # The kernel matrix phi phi^T and phi^T phi share their non-zero eigenvalues:
        # decompose the smaller one.
        gram = phi @ phi.T if len(phi) < phi.shape[1] else phi.T @ phi
        gram /= len(phi)
        # SciPy's divide-and-conquer driver, eigenvalues only: the same LAPACK routine
        # as numpy.linalg.eigvalsh, in about 60% of its time on these Gram matrices (one
        # thread), and this runs twice per null split.
        eigenvalues = linalg.eigh(gram, eigvals_only=True, driver="evd", check_finite=False)
        # Below single precision's rounding of the largest, an eigenvalue is a zero of
        # the kernel (numpy.linalg.matrix_rank's cut): counted, it would give one row
        # repeated a Vendi score above 1.
        noise = eigenvalues.max(initial=0.0) * len(gram) * np.finfo(np.float32).eps
        eigenvalues = np.where(eigenvalues > noise, eigenvalues, 0.0)
        total = eigenvalues.sum()
        if not total > 0:
            return np.nan
        p = eigenvalues[eigenvalues > 0] / total
        return float(np.exp(-(p * np.log(p)).sum()))


def _duplicate_signals(comparison: Comparison, statistics: dict[str, float]) -> list[Signal]:
    """Exact and near-duplicate rows over both whole datasets (``dimensions/duplicates``)."""
    loosely = []
    roles = set(comparison.roles.values())
    if ColumnRole.NUMERIC in roles:
        loosely.append(f"numbers rounded to {NEAR_DUPLICATE_DIGITS} significant digits")
    if ColumnRole.TEXT in roles:
        loosely.append("text compared by its words only")
    specs = (
        ("duplicate_rate", "duplicates", "repeat an earlier row exactly", DUPLICATE_TOLERANCE),
        (
            "near_duplicate_rate",
            "near_duplicates",
            "repeat an earlier row" + (f" with {' and '.join(loosely)}" if loosely else ""),
            NEAR_DUPLICATE_TOLERANCE,
        ),
    )
    signals = []
    for name, attribute, what, tolerance in specs:
        reference = getattr(comparison.reference, attribute)
        candidate = getattr(comparison.candidate, attribute)
        test = compare_duplicates([reference], [candidate])
        statistics[name] = test.value
        statistics[f"{name}_reference"] = test.reference
        statistics[f"{name}_rows"] = float(test.rows)
        estimated = "" if reference.exact and candidate.exact else ", estimated from row hashes"
        sentence = (
            f"{percent(test.value)} of the candidate's rows {what} (reference "
            f"{percent(test.reference)}; both at {test.rows:,} rows{estimated})"
        )
        signals.append(test.signal(name, None, tolerance, sentence))
    return signals


def _distinct_signals(comparison: Comparison, statistics: dict[str, float]) -> list[Signal]:
    columns = list(comparison.roles)
    ids = {
        c: PerView(
            comparison,
            lambda v, c=c: _ValueIds.of(v, c, comparison.roles[c]),
            _ValueIds.joined,
        )
        for c in columns
    }

    def statistic(a: Part, b: Part) -> np.ndarray:
        return np.array(
            [[distinct_ratio(ids[c][p.view].ids[p.rows]) for c in columns] for p in (b, a)]
        )

    fig = Paired.from_calibrated(comparison.calibrate(statistic), "lower", relative=True)
    a, b = comparison.observed_parts
    signals = []
    for j, column in enumerate(columns):
        if not fig.finite(j):
            continue
        value, reference = float(fig.value[j]), float(fig.reference[j])
        (nb, rows_b), (na, rows_a) = (
            distinct_count(ids[column][p.view].ids[p.rows]) for p in (b, a)
        )
        statistics[f"distinct_ratio[{column}]"] = value
        statistics[f"distinct_ratio_reference[{column}]"] = reference
        if na < MIN_DISTINCT_VALUES:
            continue
        signals.append(
            Signal(
                name="distinct_ratio",
                kind=SignalKind.NARROWING,
                column=column,
                value=value,
                reference_value=reference,
                effect=float(fig.effect[j]),
                tolerance=DISTINCT_TOLERANCE,
                noise=float(fig.noise[j]),
                p_value=float(fig.p_value[j]),
                sentence=(
                    f"`{column}` has {nb} distinct values among {rows_b} present in the "
                    f"candidate's matched rows, the reference {na} among {rows_a} (distinct "
                    f"ratio {percent(value)} vs {percent(reference)})"
                ),
            )
        )
    return signals


def _logit(share: np.ndarray) -> np.ndarray:
    clipped = np.clip(share, LOGIT_CLIP, 1 - LOGIT_CLIP)
    return np.log(clipped / (1 - clipped))


def _support_signals(
    comparison: Comparison, encoded: NeighbourRows, statistics: dict[str, float]
) -> list[Signal]:
    spacing = encoded.kth(comparison.observed_parts[0], PRDC_K, PRDC_ROWS)
    floor = KNN_DISTANCE_FLOOR * float(np.nanmedian(spacing)) if len(spacing) else 0.0

    def statistic(a: Part, b: Part) -> np.ndarray:
        radii = (encoded.kth(a, PRDC_K, PRDC_ROWS), encoded.kth(b, PRDC_K, PRDC_ROWS))
        return prdc(encoded.rows(a, PRDC_ROWS), encoded.rows(b, PRDC_ROWS), PRDC_K, floor, radii)

    cal = comparison.calibrate(statistic)
    value, reference, spread, p = figures(cal, "lower")
    # Recall and coverage sit near 1 on real data, where their split null is bunched
    # against the ceiling and the t approximation is far too liberal (a 94% recall
    # against 99% read as p < 1e-4 on a real penguin split). Their p-values come from
    # the logit scale, where that skew is gone; the figures stay as they are.
    logit = Calibrated(_logit(cal.observed), _logit(cal.null)).p_value("lower")
    p = np.array(p, dtype=float)
    p[[1, 3]] = logit[[1, 3]]
    for j, name in enumerate(("precision", "recall", "density", "coverage")):
        statistics[name] = float(value[j])
        statistics[f"{name}_reference"] = float(reference[j])
    statistics["prdc_k"] = float(PRDC_K)
    statistics["prdc_rows"] = float(min(comparison.matched_rows, PRDC_ROWS))
    signals = []
    specs = (
        (
            3,
            "coverage",
            COVERAGE_TOLERANCE,
            "of the reference's rows have a candidate row inside their {k}-NN ball",
        ),
        (
            1,
            "recall",
            RECALL_TOLERANCE,
            "of the reference's rows lie inside some candidate row's {k}-NN ball",
        ),
    )
    for j, name, tolerance, what in specs:
        if not (np.isfinite(value[j]) and np.isfinite(reference[j])):
            continue
        effect, noise = relative_loss(value[j], reference[j], spread[j])
        sentence = (
            f"{value[j]:.0%} {what.format(k=PRDC_K)} (reference {reference[j]:.0%}); "
            f"precision {value[0]:.0%} (reference {reference[0]:.0%})"
        )
        if effect > tolerance and value[0] >= reference[0] - 0.05:
            sentence += ": the candidate stays inside the reference's support but misses part of it"
        signals.append(
            Signal(
                name=name,
                kind=SignalKind.NARROWING,
                column=None,
                value=float(value[j]),
                reference_value=float(reference[j]),
                effect=float(effect),
                tolerance=tolerance,
                noise=float(noise),
                p_value=float(p[j]),
                sentence=sentence,
            )
        )
    return signals


class _StackedRows:
    """The rows of the reference's and the candidate's arrays as one, indexed without
    copying both into a pooled array."""

    def __init__(self, arrays: list[np.ndarray]) -> None:
        self.arrays = arrays
        self.split = len(arrays[0])

    def __getitem__(self, rows: np.ndarray) -> np.ndarray:
        first = rows < self.split
        out = np.empty((len(rows), *self.arrays[0].shape[1:]), dtype=self.arrays[0].dtype)
        out[first] = self.arrays[0][rows[first]]
        out[~first] = self.arrays[1][rows[~first] - self.split]
        return out


def _vendi_signal(
    comparison: Comparison, encoded: NeighbourRows, statistics: dict[str, float]
) -> list[Signal]:
    sample = encoded.rows(comparison.observed_parts[0], BANDWIDTH_ROWS)
    distances = pdist(sample) if len(sample) > 1 else np.empty(0)
    bandwidth = float(np.median(distances)) if len(distances) else 1.0
    if not bandwidth > 0:
        bandwidth = 1.0
    vendi = RandomFourierVendi(
        encoded.width, bandwidth, VENDI_FEATURES, comparison.rng("diversity: vendi features")
    )

    # Every row's features once, not once per null split it lands in (computing them took
    # half of the Vendi signal's time); single precision halves their memory (20,000-row
    # samples: 20 MB a side) and changes the scores in the seventh digit.
    features = PerView(
        comparison,
        lambda view: vendi.features(encoded.rows(Part(view, np.arange(view.rows)))),
        _StackedRows,
    )

    def statistic(a: Part, b: Part) -> np.ndarray:
        return np.array([vendi.of_features(features[p.view][p.rows[:VENDI_ROWS]]) for p in (b, a)])

    fig = Paired.from_calibrated(comparison.calibrate(statistic), "lower", relative=True)
    statistics["vendi_bandwidth"] = bandwidth
    if not fig.finite(0):
        return []
    v, r = float(fig.value[0]), float(fig.reference[0])
    statistics["vendi"] = v
    statistics["vendi_reference"] = r
    rows = min(comparison.matched_rows, VENDI_ROWS)
    return [
        Signal(
            name="vendi",
            kind=SignalKind.NARROWING,
            column=None,
            value=v,
            reference_value=r,
            effect=float(fig.effect[0]),
            tolerance=VENDI_TOLERANCE,
            noise=float(fig.noise[0]),
            p_value=float(fig.p_value[0]),
            sentence=(
                f"Vendi diversity (effective number of distinct rows among {rows}, RBF "
                f"kernel of bandwidth {bandwidth:.3g}) candidate {v:.3g} vs reference {r:.3g}"
            ),
        )
    ]


def run(comparison: Comparison) -> DimensionEvidence:
    statistics: dict[str, float] = {}
    if not comparison.roles:
        return DimensionEvidence(NAME, statistics=statistics, not_run="no columns to compare")
    # Whole-data figures, which need no calibration: kept for information when the
    # samples are too small for the rest.
    signals = _duplicate_signals(comparison, statistics)
    if not comparison.can_calibrate:
        return DimensionEvidence(NAME, statistics=statistics, not_run=not_calibratable(comparison))
    statistics["matched_rows"] = float(comparison.matched_rows)
    signals += _distinct_signals(comparison, statistics)
    encoded = NeighbourRows.of(comparison)
    if encoded.width:
        statistics["distance_dimensions"] = float(encoded.width)
        signals += _support_signals(comparison, encoded, statistics)
        signals += _vendi_signal(comparison, encoded, statistics)
    return DimensionEvidence(NAME, signals=tuple(signals), statistics=statistics)
