"""alibi-detect's MMDDrift (pytorch backend, CPU) as a detector.

Preprocessing, because MMD needs vectors: numeric columns standardized with the
reference's mean and standard deviation, categorical columns one-hot over the union of
both sides' categories. The kernel matrix is (n_ref + n_cand)^2, so each side is
subsampled to MAX_ROWS rows (alibi's docs recommend subsampling large references).
The flag is the permutation test's p < alpha. MMD^2 has no natural 0-100 scale, so
``score`` is left empty; the distance is kept in ``extras``. Runs in _envs/.venv-alibi.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from _common import PeerCase, main

MAX_ROWS = 1000
N_PERMUTATIONS = 100


def _matrix(case: PeerCase, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    ref, cand = case.reference, case.candidate
    if len(ref) > MAX_ROWS:
        ref = ref.iloc[rng.choice(len(ref), MAX_ROWS, replace=False)]
    if len(cand) > MAX_ROWS:
        cand = cand.iloc[rng.choice(len(cand), MAX_ROWS, replace=False)]
    blocks_ref, blocks_cand = [], []
    if case.numeric:
        x_ref = ref[case.numeric].to_numpy(dtype=float)
        x_cand = cand[case.numeric].to_numpy(dtype=float)
        mean, std = x_ref.mean(axis=0), x_ref.std(axis=0)
        std[std == 0] = 1.0
        blocks_ref.append((x_ref - mean) / std)
        blocks_cand.append((x_cand - mean) / std)
    for column in case.categorical:
        union = sorted(set(ref[column].astype(str)) | set(cand[column].astype(str)))
        for side, blocks in ((ref, blocks_ref), (cand, blocks_cand)):
            codes = pd.Categorical(side[column].astype(str), categories=union).codes
            blocks.append(np.eye(len(union))[codes])
    return (
        np.hstack(blocks_ref).astype(np.float32),
        np.hstack(blocks_cand).astype(np.float32),
    )


def check(case: PeerCase) -> dict:
    import torch
    from alibi_detect.cd import MMDDrift

    rng = np.random.default_rng(case.seed)
    x_ref, x_cand = _matrix(case, rng)
    # The permutations draw from torch's and numpy's global generators.
    torch.manual_seed(case.seed)
    np.random.seed(case.seed % 2**32)
    detector = MMDDrift(
        x_ref,
        backend="pytorch",
        p_val=case.alpha,
        n_permutations=N_PERMUTATIONS,
        device="cpu",
    )
    data = detector.predict(x_cand)["data"]
    return {
        "collapsed": bool(data["is_drift"]),
        "shift": None,
        "score": None,
        "signals": {"mmd": bool(data["is_drift"])},
        "extras": {"p_value": float(data["p_val"]), "mmd2": float(data["distance"])},
    }


if __name__ == "__main__":
    raise SystemExit(main(check))
