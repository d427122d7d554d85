"""Two honest baselines a collapse gate has to beat.

Both are symmetric two-sample tests: they flag *any* difference, so on the shift cases
they are expected to cry "collapsed". That is the point of comparing against them.
"""

from __future__ import annotations

import warnings
from time import perf_counter

import numpy as np
import pandas as pd
from scipy import stats

from .datasets import categorical_columns
from .verdict import Verdict

# Categories with fewer rows than this (reference + candidate) are pooled into one
# bucket: chi-square's approximation is poor on near-empty cells and would over-reject.
MIN_CATEGORY_COUNT = 10
# The classifier test subsamples each side to this many rows: beyond it the test has
# ample power and only costs time.
C2ST_MAX_ROWS = 50_000


def ks_bonferroni(
    reference: pd.DataFrame, candidate: pd.DataFrame, alpha: float, seed: int
) -> Verdict:
    """Per-column KS (numeric) / chi-square (categorical), Bonferroni over columns.

    Score: 100 * (1 - the largest per-column distance), where the distance is the KS
    statistic or the total-variation distance; 100 when every column matches.
    """
    del seed  # deterministic
    start = perf_counter()
    cats = set(categorical_columns(reference))
    columns = list(reference.columns)
    signals: dict[str, bool] = {}
    extras: dict[str, float] = {}
    worst = 0.0
    for column in columns:
        if column in cats:
            p_value, distance = _chi_square(reference[column], candidate[column])
        else:
            with warnings.catch_warnings():
                # On ties the exact method gives up and says so; asymp is the intended
                # fallback, the warning is noise.
                warnings.simplefilter("ignore", RuntimeWarning)
                result = stats.ks_2samp(
                    reference[column].to_numpy(dtype=float),
                    candidate[column].to_numpy(dtype=float),
                )
            p_value, distance = float(result.pvalue), float(result.statistic)
        signals[column] = p_value < alpha / len(columns)
        extras[f"p:{column}"] = p_value
        worst = max(worst, distance)
    return Verdict(
        collapsed=any(signals.values()),
        shift=None,
        score=100.0 * (1.0 - worst),
        seconds=perf_counter() - start,
        signals=signals,
        extras=extras,
    )


def _chi_square(reference: pd.Series, candidate: pd.Series) -> tuple[float, float]:
    ref = reference.astype(str).value_counts()
    cand = candidate.astype(str).value_counts()
    table = pd.concat([ref, cand], axis=1).fillna(0).to_numpy(dtype=float).T  # 2 x k
    distance = 0.5 * np.abs(table[0] / table[0].sum() - table[1] / table[1].sum()).sum()
    rare = table.sum(axis=0) < MIN_CATEGORY_COUNT
    if rare.any():
        table = np.column_stack([table[:, ~rare], table[:, rare].sum(axis=1)])
        table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return 1.0, float(distance)
    result = stats.chi2_contingency(table, correction=False)
    return float(result.pvalue), float(distance)


def c2st(reference: pd.DataFrame, candidate: pd.DataFrame, alpha: float, seed: int) -> Verdict:
    """Classifier two-sample test: held-out AUC, one-sided Mann-Whitney p-value.

    A gradient-boosted classifier learns reference (0) vs candidate (1) on one half of
    the rows; on the other half the Mann-Whitney U of its scores is AUC * n0 * n1, and
    under "same distribution" the held-out labels are exchangeable, so the U test's
    p-value is valid whatever the classifier learned. Score: 100 * (1 - 2 * (AUC - 0.5)),
    clipped to 100 when the AUC is at or below chance.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import train_test_split

    start = perf_counter()
    rng = np.random.default_rng(seed)
    ref = _cap_rows(reference, C2ST_MAX_ROWS, rng)
    cand = _cap_rows(candidate, C2ST_MAX_ROWS, rng)
    x, is_categorical = _encode(ref, cand)
    y = np.concatenate([np.zeros(len(ref), dtype=int), np.ones(len(cand), dtype=int)])
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.5, stratify=y, random_state=seed
    )
    model = HistGradientBoostingClassifier(
        max_iter=200,
        early_stopping=True,  # also on small tables: stops fitting noise early
        categorical_features=is_categorical if is_categorical.any() else None,
        random_state=seed,
    ).fit(x_train, y_train)
    scores = model.predict_proba(x_test)[:, 1]
    result = stats.mannwhitneyu(scores[y_test == 1], scores[y_test == 0], alternative="greater")
    auc = float(result.statistic) / ((y_test == 1).sum() * (y_test == 0).sum())
    p_value = float(result.pvalue)
    return Verdict(
        collapsed=p_value < alpha,
        shift=None,
        score=100.0 * (1.0 - 2.0 * max(0.0, auc - 0.5)),
        seconds=perf_counter() - start,
        signals={"classifier": p_value < alpha},
        extras={"auc": float(auc), "p_value": p_value},
    )


def _cap_rows(df: pd.DataFrame, limit: int, rng: np.random.Generator) -> pd.DataFrame:
    if len(df) <= limit:
        return df
    return df.iloc[np.sort(rng.choice(len(df), size=limit, replace=False))]


def _encode(ref: pd.DataFrame, cand: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Numeric as is; categories as codes over the union of both sides' categories."""
    cats = set(categorical_columns(ref))
    blocks, flags = [], []
    for column in ref.columns:
        if column in cats:
            union = sorted(set(ref[column].astype(str)) | set(cand[column].astype(str)))
            codes = [
                pd.Categorical(side[column].astype(str), categories=union).codes
                for side in (ref, cand)
            ]
            blocks.append(np.concatenate(codes).astype(float))
            flags.append(True)
        else:
            blocks.append(
                np.concatenate(
                    [ref[column].to_numpy(dtype=float), cand[column].to_numpy(dtype=float)]
                )
            )
            flags.append(False)
    return np.column_stack(blocks), np.array(flags)
