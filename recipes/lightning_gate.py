"""Recipe: a Lightning run with the collapse gate as a callback.

The gate is ``CollapseGateCallback`` in ``Trainer(callbacks=[...])``. It runs in
``on_train_start``, when the train DataLoader is already sharded (a ``DistributedSampler``
per rank under DDP) and the model already wrapped: each rank profiles its shard, rank 0
compares the merged profile with the reference, the model is probed through
``training_step`` on every rank, and the same verdict reaches every rank. On collapse
every rank raises ``CollapseDetected`` out of ``trainer.fit()`` before the first
``training_step``: no optimizer step, no checkpoint of a model trained on bad data.

Run it (from the repository root)::

    # one process, CPU, a few seconds
    python recipes/lightning_gate.py
    python recipes/lightning_gate.py --collapsed           # the gate aborts: exit 1

    # two CPU processes, DDP on gloo (Lightning starts the second process itself)
    python recipes/lightning_gate.py --devices 2 --strategy ddp --collapsed

    # four GPUs, DDP, bf16 autocast (the default precision with --gpu)
    python recipes/lightning_gate.py --gpu --devices 4 --strategy ddp --precision bf16-mixed

    # log the gate's report to Weights & Biases (offline: no account, no network)
    WANDB_MODE=offline python recipes/lightning_gate.py --wandb

Exit codes: 0 trained, 1 the gate found collapse risk (nothing was trained), 3 the gate
could not check the data (nothing was trained: this recipe fails closed; 2 is left to
argparse's usage errors). Every rank prints one ``rank R: ...`` line saying which.

The data and model are the toy task in ``_penguins.py``; swap in yours.
"""

from __future__ import annotations

import argparse
import os
import sys

import lightning.pytorch as pl
import torch

from collapse_callbacks import CollapseDetected, GateError
from collapse_callbacks.lightning import CollapseGateCallback

# isort: split
# The toy task, a file next to this one: Python puts the script's folder on sys.path.
from _penguins import (
    PenguinClassifier,
    datasets,
    parse_recipe_args,
    recipe_parser,
    reference_loader,
    train_loader,
)


class PenguinModule(pl.LightningModule):
    def __init__(self, learning_rate: float = 1e-2) -> None:
        super().__init__()
        self.model = PenguinClassifier()
        self.learning_rate = learning_rate

    def training_step(self, batch, batch_idx):
        # The gate's model probes call this same training_step (through the strategy,
        # so under DDP and the precision plugin's autocast); its self.log calls are
        # muted while they do, so the logged curve holds training steps only.
        loss = self.model(**batch)["loss"]
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.learning_rate)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = recipe_parser(__doc__.split("\n", 1)[0], "train on CUDA GPUs")
    parser.add_argument("--devices", type=int, default=1, help="processes (GPUs or CPU ranks)")
    parser.add_argument("--strategy", default="auto", help="e.g. ddp; auto for one device")
    parser.add_argument(
        "--precision",
        default=None,
        help="Lightning precision; default bf16-mixed with --gpu, 32-true on CPU",
    )
    parser.add_argument(
        "--wandb", action="store_true", help="log to W&B (WANDB_MODE=offline works)"
    )
    parser.add_argument("--epochs", type=int, default=1)
    return parse_recipe_args(parser, argv)


def build_trainer(args: argparse.Namespace, reference) -> tuple[pl.Trainer, CollapseGateCallback]:
    logger = False
    if args.wandb:
        from lightning.pytorch.loggers import WandbLogger

        # WandbLogger has its own offline switch; follow WANDB_MODE so that one variable
        # drives all the recipes. log_model=False keeps checkpoints out of W&B.
        logger = WandbLogger(
            project="collapse-callbacks-recipes",
            offline=os.environ.get("WANDB_MODE", "").lower() == "offline",
            log_model=False,
        )
    gate = CollapseGateCallback(
        # Held-out real data, read through a DataLoader in the model's input format, so
        # its batches also feed the gate's model probes.
        reference_loader(reference),
        # Fail closed: when the data cannot be checked (a probe raised, unreadable
        # batches), do not train. The default (False) warns on rank 0 and trains.
        fail_closed=True,
        # Log the report to the WandbLogger's run (rank 0). Off without --wandb: looking
        # for a run imports wandb, half a second of start-up for nothing.
        log_to_wandb=args.wandb,
    )
    trainer = pl.Trainer(
        accelerator="gpu" if args.gpu else "cpu",
        devices=args.devices,
        strategy=args.strategy,
        # bf16 autocast needs Ampere (A100, H100, RTX 30xx) or newer; "16-mixed" before.
        precision=args.precision or ("bf16-mixed" if args.gpu else "32-true"),
        max_epochs=args.epochs,
        callbacks=[gate],
        logger=logger,
        log_every_n_steps=1,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    return trainer, gate


def finish(trainer: pl.Trainer, args: argparse.Namespace, code: int, message: str) -> int:
    """Print this rank's outcome, close the W&B run, wait for the other ranks."""
    print(f"rank {trainer.global_rank}: {message}", flush=True)
    if args.wandb and trainer.is_global_zero:
        import wandb

        # WandbLogger never finishes its run; finishing it here records the exit code
        # (a failed run on collapse) and, offline, flushes the run to disk.
        wandb.finish(exit_code=code)
    # Under a launcher that stops the remaining workers as soon as one exits non-zero
    # (torchrun, SLURM's srun), the barrier lets every rank print first. Lightning keeps
    # the process group after fit() raised, and the verdict is the same on every rank,
    # so every rank gets here.
    trainer.strategy.barrier()
    return code


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    pl.seed_everything(args.seed, verbose=False)
    reference, train_data = datasets(collapsed=args.collapsed, seed=args.seed)
    trainer, gate = build_trainer(args, reference)
    module = PenguinModule()
    try:
        # Raises CollapseDetected (or GateError) on every rank at once, before the first
        # training_step: the verdict is collective, so no rank is left waiting in DDP's
        # first all-reduce.
        trainer.fit(module, train_dataloaders=train_loader(train_data, args.batch_size, args.seed))
    except CollapseDetected as exc:
        # The reasons are in the report rank 0 printed above; one short line per rank.
        message = f"NOT TRAINED (exit 1): collapse risk, gate score {exc.report.score:.1f}/100"
        return finish(trainer, args, 1, message)
    except GateError as exc:
        return finish(trainer, args, 3, f"NOT TRAINED (exit 3): {exc}")
    loss = float(trainer.callback_metrics["train_loss"])
    score = gate.report.score
    message = (
        f"trained {trainer.global_step} optimizer steps, "
        f"last loss {loss:.3f} (gate score {score:.1f}/100)"
    )
    return finish(trainer, args, 0, message)


if __name__ == "__main__":
    sys.exit(main())
