"""Generalization gap as a classifier two-sample test (C2ST).

Two classifiers, a small MLP (torch) and gradient-boosted trees (scikit-learn), learn
to tell reference rows from candidate rows on 70% of the sample; the held-out 30% are
scored by the mean of the two models' ranks. If the two are draws of one distribution
the held-out AUC is 0.5 and its null distribution is that of the Mann-Whitney U
statistic, so the p-value is exact in the limit and needs no permutation. The MLP runs
on the GPU with bf16 autocast when one is present; all randomness goes through a forked
torch RNG and seeded trees, so a training run's global random state is left as it was.

Any difference a model can learn raises the AUC, a real filtered or reweighted
selection too. When one column alone, ranked by its own values, tells the held-out
rows apart nearly as well as the classifier does (``ONE_COLUMN_SHARE`` of its edge over
0.5), the difference is that column's distribution: the signal is then
``classifier_auc_one_column``, which the detector reads like single-column narrowing
(shift unless something else says collapse). Collapse differs jointly: narrower,
smoothed or off-manifold rows, which no single column's ranking separates.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from collapse_callbacks.adamw import AdamW
from collapse_callbacks.comparison import Comparison, Part
from collapse_callbacks.data.roles import ColumnRole
from collapse_callbacks.dimensions import selection_effects
from collapse_callbacks.dimensions.base import DimensionEvidence, Signal, SignalKind
from collapse_callbacks.dimensions.fidelity import quote

NAME = "generalization_gap"
MAX_ROWS_PER_SIDE = 5_000
REFERENCE_RATIO = 4
HOLDOUT = 0.3
# An AUC of 0.55 means a classifier ranks a candidate row above a reference row 55% of
# the time: small, but on millions of training rows a systematic 5-point tell is real.
AUC_TOLERANCE = 0.05
# One column's own AUC edge (|AUC - 0.5|) at this share of the classifier's or more:
# the classifier learned little beyond that column.
ONE_COLUMN_SHARE = 0.8
# The selection test (see _selection): the classifier's edge left after matching the
# two sides on one column, as a share of its edge before, at or below which the
# difference is explained as a selection. Filters and reweightings of real rows leave
# about 0-30% of it, recursive generations and mixtures 70-120% (benchmarks/quality).
SELECTION_RESIDUAL = 0.4
SELECTION_BINS = 10
SELECTION_MIN_ROWS = 100
# Four more classifier fits: only worth it when the classifier sees a difference at all,
# and one column's own ranking carries at least this share of its edge. Real rows
# selected on a column differ from the reference by a weight that is a function of that
# column, and for a filter or a tilt it is monotone, so that column ranks the rows
# about as well as any classifier can: the full plan's selections the test explains
# carry 86% of the edge or more in their column. Recursive generations and most mixtures
# carry less, and the test's fits cost the most of any one statistic.
SELECTION_WHEN_P_BELOW = 0.05
SELECTION_COLUMN_SHARE = 0.5
EPOCHS = 40
TREE_ROUNDS = 200
BATCH = 256


def run(comparison: Comparison) -> DimensionEvidence:
    if not comparison.can_calibrate:
        return DimensionEvidence(
            NAME, not_run=f"the samples are too small ({comparison.matched_rows} rows per side)"
        )
    encoder = comparison.encoder
    if encoder.width == 0:
        return DimensionEvidence(NAME, not_run="no numeric or categorical columns to classify on")
    # The held-out AUC has an exact null of its own, so unlike the split-calibrated
    # statistics it can use every sampled row: every candidate row, and up to
    # REFERENCE_RATIO times as many reference rows (the AUC does not depend on the
    # classes' sizes; more reference rows teach the models what real rows look like and
    # narrow the AUC's noise, by up to a fifth at 4:1).
    rng = comparison.rng("c2st rows")
    n = min(comparison.candidate_view.rows, MAX_ROWS_PER_SIDE)
    n_reference = min(comparison.reference_view.rows, MAX_ROWS_PER_SIDE, REFERENCE_RATIO * n)
    # The selection test below matches the sides on one column, and a candidate that is
    # a narrow slice of the reference needs all the reference rows there are.
    order = rng.permutation(comparison.reference_view.rows)[:MAX_ROWS_PER_SIDE]
    every_reference = encoder.encode(Part(comparison.reference_view, order))
    reference = every_reference[:n_reference]
    candidate_rows = rng.permutation(comparison.candidate_view.rows)[:n]
    candidate = encoder.encode(Part(comparison.candidate_view, candidate_rows))
    held_out = _held_out_scores(reference, candidate, comparison.rng("c2st split"))
    if held_out is None:
        return DimensionEvidence(NAME, not_run="the held-out split holds only one class")
    scores, test_labels, features, test = held_out
    positive, negative = scores[test_labels == 1], scores[test_labels == 0]
    # One-sided: only a classifier that beats chance tells the sets apart. A held-out AUC
    # below 0.5 happens when the same rows sit in both sets (the model memorizes a row's
    # training label and meets its twin with the other label): that is no evidence of
    # a difference between the distributions.
    result = stats.mannwhitneyu(positive, negative, alternative="greater")
    auc = result.statistic / (len(positive) * len(negative))
    noise = math.sqrt((len(positive) + len(negative) + 1) / (12 * len(positive) * len(negative)))
    effect = auc - 0.5
    sources = _tabular_sources(comparison)
    column, column_auc = _best_single_column(features[test], test_labels, sources)
    confined = column is not None and abs(column_auc - 0.5) >= ONE_COLUMN_SHARE * effect > 0
    sentence = (
        f"a classifier tells candidate rows from reference rows with held-out AUC {auc:.3f} "
        f"(0.5 = indistinguishable; {len(test_labels)} held-out rows)"
    )
    if confined:
        sentence += (
            f", but `{column}` alone does nearly as well (AUC {column_auc:.3f}): the sets "
            "differ in that column's distribution, as a filter or a reweighting does"
        )
    signal = Signal(
        name="classifier_auc_one_column" if confined else "classifier_auc",
        kind=SignalKind.STRUCTURE,
        column=None,
        value=float(auc),
        reference_value=0.5,
        effect=float(effect),
        tolerance=AUC_TOLERANCE,
        noise=noise,
        p_value=float(result.pvalue),
        sentence=sentence,
    )
    signals = [signal]
    selection = None
    column_edge = abs(column_auc - 0.5) if column is not None else 0.0
    if result.pvalue < SELECTION_WHEN_P_BELOW and column_edge >= SELECTION_COLUMN_SHARE * effect:
        parts = (
            Part(comparison.reference_view, order),
            Part(comparison.candidate_view, candidate_rows),
        )
        selection = _selection(every_reference, candidate, parts, sources, comparison, auc)
    if selection is not None and selection.auc <= 0.5:
        selection = None  # at the reduced size nothing tells the sets apart: nothing to explain
    statistics_extra = {}
    if selection is not None:
        signals.append(selection.signal(signal))
        statistics_extra = selection.statistics()
    return DimensionEvidence(
        NAME,
        signals=tuple(signals),
        statistics={
            "auc": float(auc),
            "train_rows": float(len(features) - len(test)),
            "test_rows": float(len(test)),
            "best_single_column_auc": float(column_auc) if column is not None else math.nan,
            **statistics_extra,
        },
    )


def _held_out_scores(reference: np.ndarray, candidate: np.ndarray, rng):
    """Train on 70% of the pooled rows, score the held-out 30%:
    (scores, held-out labels, features, held-out indices), or None with one class."""
    features = np.vstack([reference, candidate]).astype(np.float32)
    labels = np.concatenate([np.zeros(len(reference)), np.ones(len(candidate))]).astype(np.float32)
    order = rng.permutation(len(labels))
    test_size = max(int(len(labels) * HOLDOUT), 10)
    test, train = order[:test_size], order[test_size:]
    test_labels = labels[test]
    if test_labels.min() == test_labels.max():
        return None  # before the fits: an AUC needs both classes
    scores = _fit_and_score(
        features[train], labels[train], features[test], int(rng.integers(2**31))
    )
    return scores, test_labels, features, test


@dataclass(frozen=True)
class _Selection:
    column: str
    weighted_auc: float
    auc: float  # the control: the same number of reference rows, drawn uniformly
    rows: int
    # The signals no selection makes by itself that this one does (selection_effects).
    reproduced: tuple[str, ...] = ()

    @property
    def explains(self) -> bool:
        # The weighted AUC plus one null standard error (every row scored once, m rows a
        # side: sqrt(1 / 6m)) must stay under the residual share: on small samples a
        # weighted AUC near 0.5 is often just a weak classifier.
        noise = math.sqrt(1 / (6 * self.rows))
        return self.weighted_auc - 0.5 + noise <= SELECTION_RESIDUAL * (self.auc - 0.5)

    def statistics(self) -> dict[str, float]:
        return {
            "selection_weighted_auc": self.weighted_auc,
            "selection_control_auc": self.auc,
            "selection_rows": float(self.rows),
            "selection_explains": float(self.explains),
            "selection_reproduces": float(len(self.reproduced)),
        }

    def signal(self, classifier: Signal) -> Signal:
        explained = self.explains and classifier.effect > 0
        sentence = (
            f"the candidate reads as a selection of real data on {quote(self.column)}: "
            f"matching the two sides' rows on that column's deciles makes them "
            f"indistinguishable to the classifier (AUC {self.auc:.3f} -> "
            f"{self.weighted_auc:.3f} on {self.rows:,} rows a side); what differs is which "
            "rows were kept, not the rows"
        )
        return Signal(
            name="one_column_selection",
            kind=SignalKind.SHIFT,
            column=self.column,
            value=self.weighted_auc,
            reference_value=self.auc,
            effect=classifier.effect if explained else 0.0,
            tolerance=classifier.tolerance,
            noise=classifier.noise,
            p_value=classifier.p_value if explained else 1.0,
            sentence=sentence,
            restates=True,
            explains=self.reproduced if explained else (),
        )


def _selection(reference, candidate, parts, sources, comparison, auc) -> _Selection | None:
    """Is the candidate the reference reweighted on one column (a filter, a reweighting)?

    Both sides are matched on the deciles (of both pooled; on the values, for a column
    of few) of the one column c that best separates the sets by itself: within each
    decile, as many rows of each side as the side with fewer there holds (coarsened
    exact matching), and the classifier test is run again. A selection on c then leaves nothing to learn (AUC back near 0.5);
    recursive generations and mixtures with generated rows keep most of their edge,
    since no reweighting of real rows makes generated rows. Matching keeps the overlap
    of the two distributions of c (70% of the rows for a filter at the 30th percentile),
    where rejection sampling of the reference alone keeps only the rows the most
    over-represented decile allows, often too few for the classifier to learn from."""
    if not any(sources) or auc <= 0.5:
        return None
    labels = np.concatenate([np.zeros(len(reference)), np.ones(len(candidate))])
    j = _most_telling(_column_aucs(np.vstack([reference, candidate]), labels), sources)
    column = sources[j]
    bins_r, bins_c, k = _matching_bins(reference[:, j], candidate[:, j])
    take = np.minimum(np.bincount(bins_r, minlength=k), np.bincount(bins_c, minlength=k))
    rng = comparison.rng("c2st selection")
    matched_r = _per_bin(bins_r, take, rng)
    matched_c = _per_bin(bins_c, take, rng)
    if len(matched_r) < SELECTION_MIN_ROWS:
        return None
    # The control: as many rows of each side, drawn uniformly. Fewer rows mean a weaker
    # classifier, so the matched AUC is judged against the AUC at the same size.
    uniform_r = rng.permutation(len(reference))[: len(matched_r)]
    uniform_c = rng.permutation(len(candidate))[: len(matched_c)]
    control = _cross_fitted_auc(reference[uniform_r], candidate[uniform_c], rng)
    weighted = _cross_fitted_auc(reference[matched_r], candidate[matched_c], rng)
    selection = _Selection(column, weighted, control, len(matched_r))
    if not selection.explains:
        return selection
    reference_part, candidate_part = parts
    reproduced = selection_effects.reproduced(
        comparison,
        Part(reference_part.view, reference_part.rows[matched_r]),
        Part(candidate_part.view, candidate_part.rows[matched_c]),
    )
    return dataclasses.replace(selection, reproduced=reproduced)


def _matching_bins(reference: np.ndarray, candidate: np.ndarray):
    """Bin indices of both sides' values of one column, and the number of bins.

    Deciles of both sides pooled: a filter that keeps the reference's top fifth would
    otherwise fall into one or two of the reference's deciles, too coarse to match on.
    A column of few values (a category's indicator, a score 0-10) is matched value by
    value: deciles would lump values the two sides hold in different proportions. So is
    a value holding a tenth of the rows or more (the zeros of a zero-inflated count):
    in a decile with its neighbours, the zeros of one side get matched to the small
    positive values of the other (fair's `affairs` filtered on > 0 kept an AUC of 0.62
    after matching)."""
    pooled = np.concatenate([reference, candidate])
    values, counts = np.unique(pooled, return_counts=True)
    if len(values) <= 2 * SELECTION_BINS:
        return np.searchsorted(values, reference), np.searchsorted(values, candidate), len(values)
    atoms = values[counts * SELECTION_BINS >= len(pooled)]
    rest = pooled[~np.isin(pooled, atoms)]
    edges = np.unique(np.quantile(rest, np.linspace(0, 1, SELECTION_BINS + 1)))

    def bins(x: np.ndarray) -> np.ndarray:
        spread = len(atoms) + np.clip(np.searchsorted(edges, x, side="right") - 1, 0, None)
        return np.where(np.isin(x, atoms), np.searchsorted(atoms, x), spread)

    return bins(reference), bins(candidate), len(atoms) + len(edges)


def _per_bin(bins: np.ndarray, take: np.ndarray, rng) -> np.ndarray:
    """``take[b]`` rows drawn at random from each bin ``b``."""
    order = rng.permutation(len(bins))
    order = order[np.argsort(bins[order], kind="stable")]
    starts = np.searchsorted(bins[order], np.arange(len(take)))
    return np.concatenate([order[s : s + t] for s, t in zip(starts, take)]).astype(np.int64)


def _cross_fitted_auc(reference: np.ndarray, candidate: np.ndarray, rng) -> float:
    """Held-out AUC averaged over two folds (each half trains once and is scored once):
    every row is scored, which halves the noise of one 70/30 split on small samples."""
    folds = [rng.permutation(len(reference)), rng.permutation(len(candidate))]
    half_r, half_c = len(reference) // 2, len(candidate) // 2
    aucs = []
    for first in (True, False):
        r_train, r_test = (folds[0][:half_r], folds[0][half_r:])[:: 1 if first else -1]
        c_train, c_test = (folds[1][:half_c], folds[1][half_c:])[:: 1 if first else -1]
        x_train = np.vstack([reference[r_train], candidate[c_train]]).astype(np.float32)
        y_train = np.concatenate([np.zeros(len(r_train)), np.ones(len(c_train))])
        x_test = np.vstack([reference[r_test], candidate[c_test]]).astype(np.float32)
        scores = _fit_and_score(
            x_train, y_train.astype(np.float32), x_test, int(rng.integers(2**31))
        )
        positive, negative = scores[len(r_test) :], scores[: len(r_test)]
        aucs.append(
            stats.mannwhitneyu(positive, negative).statistic / (len(positive) * len(negative))
        )
    return float(np.mean(aucs))


def _column_aucs(features: np.ndarray, labels: np.ndarray) -> np.ndarray:
    candidate = labels == 1
    n_c, n_r = int(candidate.sum()), int((~candidate).sum())
    ranks = stats.rankdata(features, axis=0)
    return (ranks[candidate].sum(axis=0) - n_c * (n_c + 1) / 2) / (n_c * n_r)


def _best_single_column(features: np.ndarray, labels: np.ndarray, sources: list[str]):
    """(column, AUC) of the data column whose encoded values, ranked alone, best tell the
    held-out candidate rows (label 1) from the reference rows, either way round."""
    if not any(sources) or labels.min() == labels.max():
        return None, math.nan
    aucs = _column_aucs(features, labels)
    best = _most_telling(aucs, sources)
    return sources[best], float(aucs[best])


def _most_telling(aucs: np.ndarray, sources: list[str | None]) -> int:
    """The encoded feature of a tabular column whose AUC is farthest from 0.5."""
    edge = np.where([s is not None for s in sources], np.abs(aucs - 0.5), -1.0)
    return int(np.argmax(edge))


def _tabular_sources(comparison: Comparison) -> list[str | None]:
    """The data column behind each encoded feature, None for text, token and vector
    features: "the candidate is the reference resampled on one column" is a question
    about a column's values. One hashed n-gram bucket or an image's projection is not a
    column a person filters on, and on a few hundred documents one of dozens of such
    features explains a classifier's edge by chance."""
    tabular = (ColumnRole.NUMERIC, ColumnRole.CATEGORICAL, ColumnRole.BOOLEAN)
    return [
        s if comparison.roles[s] in tabular else None
        for s in comparison.encoder.sources(comparison)
    ]


def _fit_and_score(x_train, y_train, x_test, seed: int) -> np.ndarray:
    """Held-out scores of two classifiers trained on the same rows, as the mean of
    their ranks: the MLP sees smooth joint differences (correlations, variance), the
    boosted trees see thresholds and value lattices (a generator's integers falling
    between a real column's, a discrete column's rare values), where the MLP alone
    missed a third of 30% mixtures that trees caught (benchmarks/quality, session 6).
    Any score computed without the held-out labels keeps the Mann-Whitney null exact."""
    import torch

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    devices = [torch.cuda.current_device()] if device.type == "cuda" else []
    threads = torch.get_num_threads()
    # A 64-unit MLP is too small to gain from intra-op threads, and on a busy host their
    # spin-waiting makes each step many times slower; restored below.
    torch.set_num_threads(1)
    try:
        network = _train(torch, device, devices, x_train, y_train, x_test, seed)
    finally:
        torch.set_num_threads(threads)
    trees = _boosted_trees(x_train, y_train, x_test, seed)
    return (stats.rankdata(network) + stats.rankdata(trees)) / 2


def _boosted_trees(x_train, y_train, x_test, seed: int) -> np.ndarray:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from threadpoolctl import threadpool_limits

    # Early stopping on a slice of the training rows: on two samples of one
    # distribution the trees stop after a few rounds instead of fitting noise.
    model = HistGradientBoostingClassifier(
        max_iter=TREE_ROUNDS, early_stopping=True, random_state=seed % 2**31
    )
    # Same reason as the MLP's single thread: small data, busy hosts.
    with threadpool_limits(1, user_api="openmp"):
        model.fit(x_train, y_train.astype(np.int64))
        return model.predict_proba(x_test)[:, 1]


def _train(torch, device, devices, x_train, y_train, x_test, seed: int) -> np.ndarray:
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        mean = x_train.mean(axis=0)
        std = x_train.std(axis=0) + 1e-6
        xt = torch.from_numpy((x_train - mean) / std).to(device)
        yt = torch.from_numpy(y_train).to(device)
        xv = torch.from_numpy((x_test - mean) / std).to(device)
        width = xt.shape[1]
        model = torch.nn.Sequential(
            torch.nn.Linear(width, 64),
            torch.nn.ReLU(),
            torch.nn.Linear(64, 64),
            torch.nn.ReLU(),
            torch.nn.Linear(64, 1),
        ).to(device)
        optimizer = AdamW(model.parameters(), lr=3e-3, weight_decay=1e-3)
        loss_fn = torch.nn.BCEWithLogitsLoss()
        autocast = torch.autocast(
            device_type="cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"
        )
        generator = torch.Generator(device="cpu").manual_seed(seed)
        for _ in range(EPOCHS):
            permutation = torch.randperm(len(xt), generator=generator).to(device)
            for start in range(0, len(xt), BATCH):
                index = permutation[start : start + BATCH]
                optimizer.zero_grad()
                with autocast:
                    logits = model(xt[index]).squeeze(-1)
                loss = loss_fn(logits.float(), yt[index])
                loss.backward()
                optimizer.step()
        model.eval()
        with torch.no_grad(), autocast:
            return model(xv).squeeze(-1).float().cpu().numpy()
