"""A kernel two-sample test (maximum mean discrepancy) with an exact permutation null.

MMD^2 (Gretton et al. 2012) compares the mean kernel similarity within each side with
the similarity across them: with a characteristic kernel it is zero only when the two
distributions are equal. A share ``f`` of replaced rows scales it by ``f^2``, yet the
test uses every row at once, where a held-out classifier learns on half and is judged
on the other half; on text a 10% mixture of generated documents is often beyond the
classifier and within reach of this test (benchmarks/quality/text).

The kernel is Gaussian in the rows' Euclidean distance, with the bandwidth set to the
median pairwise squared distance of the pooled rows. Nothing before the permutations
depends on which side a row came from, so shuffling the side labels gives the exact
null distribution of the statistic: the p-value is valid at any size and for any data,
duplicates included, as long as the rows are exchangeable when nothing differs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

PERMUTATION_CHUNK = 250
MIN_PERMUTATIONS = 1_000
MAX_PERMUTATIONS = 20_000


@dataclass(frozen=True)
class KernelTest:
    mmd2: float  # the unbiased estimate of MMD^2 between the sides
    null_mean: float  # its mean over the label permutations (about 0)
    null_sd: float
    p_value: float  # one-sided: the sides differ more than shuffled sides do
    rows_per_side: int
    permutations: int

    @property
    def effect(self) -> float:
        return self.mmd2 - self.null_mean


def permutations_for(alpha: float) -> int:
    """Enough permutations that the smallest attainable p-value, 1 / (B + 1), sits well
    under the share of ``alpha`` one signal of the classifier dimension gets."""
    wanted = math.ceil(30.0 / alpha) if alpha > 0 else MAX_PERMUTATIONS
    return int(min(MAX_PERMUTATIONS, max(MIN_PERMUTATIONS, wanted)))


def mmd_test(gram: np.ndarray, rng: np.random.Generator, permutations: int) -> KernelTest:
    """The test on the pooled rows' inner products ``gram``: the first half of the rows
    are one side, the second half the other (equal sizes)."""
    pooled = len(gram)
    n = pooled // 2
    if n < 2 or 2 * n != pooled:
        raise ValueError("mmd_test needs the same number of rows (at least 2) on each side")
    norms = np.diag(gram).copy()
    distances = np.maximum(norms[:, None] + norms[None, :] - 2.0 * gram, 0.0)
    off_diagonal = distances[np.triu_indices(pooled, 1)]
    bandwidth = float(np.median(off_diagonal))
    if not bandwidth > 0:
        bandwidth = float(off_diagonal.mean()) or 1.0
    kernel = np.exp(-distances / bandwidth)
    np.fill_diagonal(kernel, 0.0)  # the unbiased estimate leaves out i == j
    row_sums = kernel.sum(axis=1)
    total = float(row_sums.sum())

    def statistic(first: np.ndarray) -> np.ndarray:
        # ``first``: [pooled, k] 0/1 columns marking one labelling's first side each.
        within_first = np.einsum("ij,ij->j", first, kernel @ first)
        across = first.T @ row_sums - within_first
        within_second = total - 2.0 * across - within_first
        pairs = n * (n - 1)
        return (within_first + within_second) / pairs - 2.0 * across / (n * n)

    observed = float(statistic(np.r_[np.ones(n), np.zeros(n)][:, None])[0])
    base = np.r_[np.ones(n), np.zeros(n)]
    null = np.concatenate(
        [
            statistic(np.stack([rng.permutation(base) for _ in range(size)], axis=1))
            for size in _chunks(permutations, PERMUTATION_CHUNK)
        ]
    )
    return KernelTest(
        mmd2=observed,
        null_mean=float(null.mean()),
        null_sd=float(null.std()),
        p_value=float((1 + np.count_nonzero(null >= observed)) / (permutations + 1)),
        rows_per_side=n,
        permutations=permutations,
    )


def _chunks(total: int, size: int) -> list[int]:
    return [min(size, total - start) for start in range(0, total, size)]
