"""A tiny real training task for the callback tests: classify penguin species.

Real data: half of the Palmer penguins is the reference, the other half the real
candidate; the collapsed candidate is generation 5 of the demo's recursive per-species
Gaussian (temperature 0.9) trained on the real half. Batches are ``(x, y)`` tensors, as
most tabular training loops use.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from collapse_callbacks.demo import NUMERIC, generations, real_penguins

BATCH = 32


def tables(seed: int = 0):
    """(reference, real candidate, collapsed candidate) as pyarrow tables."""
    table = real_penguins()
    order = np.random.default_rng(seed).permutation(table.num_rows)
    half = table.num_rows // 2
    reference, real = table.take(order[:half]), table.take(order[half:])
    collapsed = generations(real, 5, real.num_rows, np.random.default_rng(seed + 1), 0.9)[-1]
    return reference, real, collapsed


def tensors(table, scale_from) -> TensorDataset:
    """Measurements standardized with the reference's statistics; species as codes."""

    def matrix(t):
        return np.column_stack([t.column(c).to_numpy() for c in NUMERIC]).astype(np.float32)

    base = matrix(scale_from)
    x = (matrix(table) - base.mean(0)) / base.std(0)
    species = sorted(set(scale_from.column("species").to_pylist()))
    y = np.array([species.index(s) for s in table.column("species").to_pylist()])
    return TensorDataset(torch.from_numpy(x), torch.from_numpy(y).long())


def loaders(seed: int = 0, shuffle_seed: int = 0):
    """(reference loader, real loader, collapsed loader)."""
    reference, real, collapsed = tables(seed)

    def loader(table):
        generator = torch.Generator().manual_seed(shuffle_seed)
        return DataLoader(
            tensors(table, reference), batch_size=BATCH, shuffle=True, generator=generator
        )

    return loader(reference), loader(real), loader(collapsed)


def classifier() -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Linear(len(NUMERIC), 16), torch.nn.ReLU(), torch.nn.Linear(16, 3)
    )


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
