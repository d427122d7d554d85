"""Generalization gap as a classifier two-sample test (C2ST).

A small MLP learns to tell reference rows from candidate rows on 70% of the matched
sample and is scored on the held-out 30%. If the two are draws of one distribution the
held-out AUC is 0.5 and its null distribution is that of the Mann-Whitney U statistic,
so the p-value is exact in the limit and needs no permutation. The model runs on the GPU
with bf16 autocast when one is present; all randomness goes through a forked torch RNG,
so a training run's global random state is left as it was.

Any difference a model can learn raises the AUC, a real filtered or reweighted
selection too. When one column alone, ranked by its own values, tells the held-out
rows apart nearly as well as the classifier does (``ONE_COLUMN_SHARE`` of its edge over
0.5), the difference is that column's distribution: the signal is then
``classifier_auc_one_column``, which the detector reads like single-column narrowing
(shift unless something else says collapse). Collapse differs jointly: narrower,
smoothed or off-manifold rows, which no single column's ranking separates.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from collapse_callbacks.comparison import Comparison, Part
from collapse_callbacks.dimensions.base import DimensionEvidence, Signal, SignalKind

NAME = "generalization_gap"
MAX_ROWS_PER_SIDE = 5_000
HOLDOUT = 0.3
# An AUC of 0.55 means a classifier ranks a candidate row above a reference row 55% of
# the time: small, but on millions of training rows a systematic 5-point tell is real.
AUC_TOLERANCE = 0.05
# One column's own AUC edge (|AUC - 0.5|) at this share of the classifier's or more:
# the classifier learned little beyond that column.
ONE_COLUMN_SHARE = 0.8
EPOCHS = 40
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
    # statistics it can use every sampled row: balanced classes, as many as both allow.
    rng = comparison.rng("c2st rows")
    n = min(comparison.reference_view.rows, comparison.candidate_view.rows, MAX_ROWS_PER_SIDE)
    reference = encoder.encode(
        Part(comparison.reference_view, rng.permutation(comparison.reference_view.rows)[:n])
    )
    candidate = encoder.encode(
        Part(comparison.candidate_view, rng.permutation(comparison.candidate_view.rows)[:n])
    )
    features = np.vstack([reference, candidate]).astype(np.float32)
    labels = np.concatenate([np.zeros(n), np.ones(n)]).astype(np.float32)
    rng = comparison.rng("c2st split")
    order = rng.permutation(len(labels))
    test_size = max(int(len(labels) * HOLDOUT), 10)
    test, train = order[:test_size], order[test_size:]
    scores = _fit_and_score(
        features[train], labels[train], features[test], int(rng.integers(2**31))
    )
    test_labels = labels[test]
    positive, negative = scores[test_labels == 1], scores[test_labels == 0]
    if len(positive) == 0 or len(negative) == 0:
        return DimensionEvidence(NAME, not_run="the held-out split holds only one class")
    # One-sided: only a classifier that beats chance tells the sets apart. A held-out AUC
    # below 0.5 happens when the same rows sit in both sets (the model memorizes a row's
    # training label and meets its twin with the other label): that is no evidence of
    # a difference between the distributions.
    result = stats.mannwhitneyu(positive, negative, alternative="greater")
    auc = result.statistic / (len(positive) * len(negative))
    noise = math.sqrt((len(positive) + len(negative) + 1) / (12 * len(positive) * len(negative)))
    effect = auc - 0.5
    column, column_auc = _best_single_column(
        features[test], test_labels, encoder.sources(comparison)
    )
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
    return DimensionEvidence(
        NAME,
        signals=(signal,),
        statistics={
            "auc": float(auc),
            "train_rows": float(len(train)),
            "test_rows": float(len(test)),
            "best_single_column_auc": float(column_auc) if column is not None else math.nan,
        },
    )


def _best_single_column(features: np.ndarray, labels: np.ndarray, sources: list[str]):
    """(column, AUC) of the data column whose encoded values, ranked alone, best tell the
    held-out candidate rows (label 1) from the reference rows, either way round."""
    candidate = labels == 1
    n_c, n_r = int(candidate.sum()), int((~candidate).sum())
    if not sources or n_c == 0 or n_r == 0:
        return None, math.nan
    ranks = stats.rankdata(features, axis=0)
    aucs = (ranks[candidate].sum(axis=0) - n_c * (n_c + 1) / 2) / (n_c * n_r)
    best = int(np.argmax(np.abs(aucs - 0.5)))
    return sources[best], float(aucs[best])


def _fit_and_score(x_train, y_train, x_test, seed: int) -> np.ndarray:
    import torch

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    devices = [torch.cuda.current_device()] if device.type == "cuda" else []
    threads = torch.get_num_threads()
    # A 64-unit MLP is too small to gain from intra-op threads, and on a busy host their
    # spin-waiting makes each step many times slower; restored below.
    torch.set_num_threads(1)
    try:
        return _train(torch, device, devices, x_train, y_train, x_test, seed)
    finally:
        torch.set_num_threads(threads)


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
        optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-3)
        loss_fn = torch.nn.BCEWithLogitsLoss()
        autocast = torch.autocast(
            device_type="cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"
        )
        generator = torch.Generator(device="cpu").manual_seed(seed)
        for _ in range(EPOCHS):
            permutation = torch.randperm(len(xt), generator=generator).to(device)
            for start in range(0, len(xt), BATCH):
                index = permutation[start : start + BATCH]
                optimizer.zero_grad(set_to_none=True)
                with autocast:
                    logits = model(xt[index]).squeeze(-1)
                loss = loss_fn(logits.float(), yt[index])
                loss.backward()
                optimizer.step()
        model.eval()
        with torch.no_grad(), autocast:
            return model(xv).squeeze(-1).float().cpu().numpy()
