"""The recipes' toy task: classify penguin species from four body measurements.

This file is shared by the three recipes so that each of them is only about its training
framework. When you copy a recipe, copy this file with it, then replace it with your own
data and model: nothing in it is specific to the gate, except the one rule below.

Data: the Palmer penguins (333 complete rows, CC0) from the ``palmerpenguins`` package,
read by ``collapse_callbacks.demo.real_penguins()`` (``pip install palmerpenguins``, or
the package's ``examples`` extra), split in two halves at random. One half is the gate's *reference*: held-out real data
that the training data is compared with. The other half is the training data. With
``collapsed=True`` the training data is instead generation 5 of the demo's recursive
generator (a per-species Gaussian refit on its own samples five times, sampled at
temperature 0.9): synthetic data of the kind the gate exists to stop.

The rule: the gate compares the batches the model trains on with the reference, so the
reference must come through the same preprocessing, into the same column names and
units. Here both sides are standardized with the reference's statistics and both are
read through the same kind of DataLoader.

The model is a two-layer MLP built in code (no download). Like a ``transformers`` model
it takes the columns as keyword arguments and computes its own loss from ``labels``,
so the Hugging Face ``Trainer``, Lightning and a plain loop can all call it the same way.
"""

from __future__ import annotations

import argparse

import numpy as np
import pyarrow as pa
import torch
from torch.utils.data import DataLoader, Dataset

from collapse_callbacks.demo import NUMERIC, generations, real_penguins

BATCH = 32
# Sampling temperature of the synthetic generations: below 1, as generators usually run,
# which makes each generation lose diversity faster (Alemohammad et al. 2023).
TEMPERATURE = 0.9
GENERATION = 5


def tables(*, collapsed: bool, seed: int = 0) -> tuple[pa.Table, pa.Table]:
    """(reference, training data) as pyarrow tables."""
    table = real_penguins()
    order = np.random.default_rng(seed).permutation(table.num_rows)
    half = table.num_rows // 2
    reference, real = table.take(order[:half]), table.take(order[half:])
    if not collapsed:
        return reference, real
    rng = np.random.default_rng(seed + 1)
    synthetic = generations(real, GENERATION, real.num_rows, rng, TEMPERATURE)[-1]
    return reference, synthetic


class PenguinRows(Dataset):
    """One dict per penguin: the four measurements (standardized) and ``labels``."""

    def __init__(self, table: pa.Table, reference: pa.Table) -> None:
        base = _measurements(reference)
        # The reference's statistics for both sides: the same units on both sides of the
        # gate's comparison, as a real pipeline would fit its scaler on real data once.
        x = (_measurements(table) - base.mean(axis=0)) / base.std(axis=0)
        species = sorted(set(reference.column("species").to_pylist()))
        y = [species.index(name) for name in table.column("species").to_pylist()]
        self.x = torch.from_numpy(x.astype(np.float32))
        self.y = torch.tensor(y, dtype=torch.long)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        row = {name: self.x[index, i] for i, name in enumerate(NUMERIC)}
        row["labels"] = self.y[index]
        return row


def _measurements(table: pa.Table) -> np.ndarray:
    return np.column_stack([table.column(name).to_numpy() for name in NUMERIC]).astype(float)


def datasets(*, collapsed: bool, seed: int = 0) -> tuple[PenguinRows, PenguinRows]:
    """(reference, training data) as datasets of dict rows."""
    reference, train = tables(collapsed=collapsed, seed=seed)
    return PenguinRows(reference, reference), PenguinRows(train, reference)


def reference_loader(reference: PenguinRows) -> DataLoader:
    """The gate's reference: a DataLoader yields batches in the model's own input format,
    so the gate also uses them for its model probes (gradients and loss landscape on
    real batches next to training batches). It is not sharded: every rank reads all of
    it, because the comparison on rank 0 needs the whole reference."""
    return DataLoader(reference, batch_size=BATCH)


def train_loader(train: PenguinRows, batch_size: int = BATCH, seed: int = 0) -> DataLoader:
    """The training DataLoader, before any framework shards it. A distributed run pads
    the last round of batches with repeats of the first rows; the gate profiles only the
    real rows of each shard, so no ``drop_last`` is needed for it."""
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(train, batch_size=batch_size, shuffle=True, generator=generator)


class PenguinClassifier(torch.nn.Module):
    def __init__(self, hidden: int = 16, classes: int = 3) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(len(NUMERIC), hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, classes)
        )

    # Every input is named, not taken as **kwargs: the Hugging Face Trainer drops the
    # batch keys that the forward signature does not name (remove_unused_columns), and
    # would hand a **kwargs forward nothing but an error.
    def forward(
        self,
        bill_length_mm: torch.Tensor,
        bill_depth_mm: torch.Tensor,
        flipper_length_mm: torch.Tensor,
        body_mass_g: torch.Tensor,
        labels: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        x = torch.stack([bill_length_mm, bill_depth_mm, flipper_length_mm, body_mass_g], dim=1)
        logits = self.net(x)
        out = {"logits": logits}
        if labels is not None:
            # float(): under bf16 autocast the logits are bf16; the loss is taken in fp32.
            out["loss"] = torch.nn.functional.cross_entropy(logits.float(), labels)
        return out


# -- command line: the options every recipe takes ----------------------------------------


def recipe_parser(description: str, gpu_help: str) -> argparse.ArgumentParser:
    """--collapsed, --gpu, --batch-size and --seed; a recipe adds its own options."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--collapsed",
        action="store_true",
        help="train on generation-5 synthetic data instead of real data (the gate aborts)",
    )
    parser.add_argument("--gpu", action="store_true", help=gpu_help)
    parser.add_argument("--batch-size", type=int, default=BATCH, help="per process")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def parse_recipe_args(parser: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    args = parser.parse_args(argv)
    if args.gpu and not torch.cuda.is_available():
        # Fail here rather than train on the CPU without a word.
        parser.error("--gpu: no CUDA device is visible to this process")
    return args
