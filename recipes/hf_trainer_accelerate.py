"""Recipe: a Hugging Face ``Trainer`` run with the collapse gate, under ``accelerate launch``.

The gate is one callback. In ``on_train_begin`` it profiles the Trainer's own train
DataLoader (each rank its shard), compares it with the reference on rank 0, probes the
model, and hands the same verdict to every rank; on collapse every rank raises
``CollapseDetected`` out of ``trainer.train()`` before the first forward pass.

Run it (from the repository root)::

    # one process, CPU, a few seconds
    python recipes/hf_trainer_accelerate.py
    python recipes/hf_trainer_accelerate.py --collapsed      # the gate aborts: exit 1

    # two CPU processes (gloo). ACCELERATE_USE_CPU=1 is needed: without it each worker
    # believes it is alone (see integrations/README.md, "The 2-process CPU trap")
    ACCELERATE_USE_CPU=1 accelerate launch --config_file integrations/accelerate/cpu-2proc.yaml \\
        recipes/hf_trainer_accelerate.py --collapsed

    # four GPUs: DDP, or FSDP2, both bf16
    accelerate launch --config_file integrations/accelerate/ddp-4gpu.yaml \\
        recipes/hf_trainer_accelerate.py --gpu
    accelerate launch --config_file integrations/accelerate/fsdp-bf16-4gpu.yaml \\
        recipes/hf_trainer_accelerate.py --gpu

    # log the gate's report to Weights & Biases (offline: no account, no network)
    WANDB_MODE=offline python recipes/hf_trainer_accelerate.py --wandb

Exit codes: 0 trained, 1 the gate found collapse risk (nothing was trained), 3 the gate
could not check the data (nothing was trained: this recipe fails closed; 2 is left to
argparse's usage errors). Every rank prints one ``rank R: ...`` line saying which.

The data and model are the toy task in ``_penguins.py``; swap in yours.
"""

from __future__ import annotations

import argparse
import os
import sys

import torch
from accelerate import PartialState
from transformers import Trainer, TrainingArguments

from collapse_callbacks import CollapseDetected, GateError
from collapse_callbacks.hf import CollapseGateTrainerCallback

# isort: split
# The toy task, a file next to this one: Python puts the script's folder on sys.path.
from _penguins import (
    PenguinClassifier,
    datasets,
    parse_recipe_args,
    recipe_parser,
    reference_loader,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = recipe_parser(__doc__.split("\n", 1)[0], "train on CUDA GPUs with bf16")
    parser.add_argument(
        "--wandb", action="store_true", help="report to W&B (WANDB_MODE=offline works)"
    )
    parser.add_argument(
        "--output-dir",
        default="recipe-output/hf-trainer",
        help="the Trainer's output_dir; the gate writes collapse_gate_report.json there",
    )
    parser.add_argument("--epochs", type=float, default=1.0)
    return parse_recipe_args(parser, argv)


def train(args: argparse.Namespace) -> str:
    reference, train_data = datasets(collapsed=args.collapsed, seed=args.seed)
    if args.wandb:
        os.environ.setdefault("WANDB_PROJECT", "collapse-callbacks-recipes")
    training_args = TrainingArguments(
        output_dir=args.output_dir,
        # use_cpu=True also makes every worker of a CPU `accelerate launch` a real gloo
        # rank (the same effect as ACCELERATE_USE_CPU=1).
        use_cpu=not args.gpu,
        # bf16 autocast on GPUs that have it (Ampere and newer); CPU runs stay fp32.
        bf16=args.gpu and torch.cuda.is_bf16_supported(),
        per_device_train_batch_size=args.batch_size,
        # The model uses every parameter in every step; True only adds a graph traversal.
        ddp_find_unused_parameters=False,
        num_train_epochs=args.epochs,
        learning_rate=1e-2,
        seed=args.seed,
        report_to=["wandb"] if args.wandb else "none",
        # Per-step loss to W&B when it is on; the console gets the final line only.
        logging_strategy="steps" if args.wandb else "no",
        logging_steps=1,
        save_strategy="no",
        disable_tqdm=True,
    )
    gate = CollapseGateTrainerCallback(
        # Held-out real data, read through a DataLoader in the model's input format, so
        # its batches also feed the gate's model probes.
        reference_loader(reference),
        # Fail closed: when the data cannot be checked (a probe raised, unreadable
        # batches), do not train. The default (False) warns on rank 0 and trains.
        fail_closed=True,
        # Log the report to the Trainer's W&B run (rank 0). Off without --wandb: looking
        # for a run imports wandb, half a second of start-up for nothing.
        log_to_wandb=args.wandb,
    )
    trainer = Trainer(
        model=PenguinClassifier(),
        args=training_args,
        train_dataset=train_data,
        callbacks=[gate],
    )
    # Raises CollapseDetected (or GateError) on every rank at once, before any forward
    # pass of training: the verdict is collective, so no rank is left waiting in DDP's
    # first all-reduce or in an FSDP all-gather.
    result = trainer.train()
    return (
        f"trained {result.global_step} optimizer steps, "
        f"training loss {result.training_loss:.3f} (gate score {gate.report.score:.1f}/100)"
    )


def finish(args: argparse.Namespace, code: int, message: str) -> int:
    """Print this rank's outcome, close the W&B run, wait for the other ranks."""
    state = PartialState()
    print(f"rank {state.process_index}: {message}", flush=True)
    if args.wandb and state.is_main_process:
        import wandb

        # The Trainer's W&B integration leaves its run open; finishing it here records
        # the exit code (a failed run on collapse) and, offline, flushes it to disk.
        wandb.finish(exit_code=code)
    # The launcher (torchrun under `accelerate launch`) stops the remaining workers as
    # soon as one exits non-zero; the barrier lets every rank say what happened first.
    # Safe here: the gate's verdict is the same on every rank, so all of them get here.
    state.wait_for_everyone()
    return code


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        done = train(args)
    except CollapseDetected as exc:
        # The reasons are in the report rank 0 printed above (and in
        # <output-dir>/collapse_gate_report.json); one short line per rank here.
        message = f"NOT TRAINED (exit 1): collapse risk, gate score {exc.report.score:.1f}/100"
        return finish(args, 1, message)
    except GateError as exc:
        return finish(args, 3, f"NOT TRAINED (exit 3): {exc}")
    return finish(args, 0, done)


if __name__ == "__main__":
    sys.exit(main())
