"""The penguin task as a LightningModule, for the Lightning callback tests."""

from __future__ import annotations

import lightning.pytorch as pl
import torch

from training_task import classifier


class PenguinModule(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = classifier()
        self.seen_batches: list[torch.Tensor] = []

    def on_train_batch_start(self, batch, batch_idx):
        # Not in training_step: the gate's probes call training_step too.
        self.seen_batches.append(batch[0].detach().clone())

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.cross_entropy(self.net(x), y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-2)


def trainer(**options) -> pl.Trainer:
    defaults = dict(
        accelerator="cpu",
        devices=1,
        max_epochs=2,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    return pl.Trainer(**{**defaults, **options})
