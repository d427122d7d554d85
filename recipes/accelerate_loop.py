"""Recipe: a plain 🤗 Accelerate training loop that calls the collapse gate itself.

No Trainer and no callback: after ``accelerator.prepare`` the script runs
``TrainingGate.run`` once, on the prepared (sharded) DataLoader and the prepared model,
and decides what to do with the outcome. Every rank gets the same outcome, so every
rank takes the same branch: all train, or all stop before the first step.

Run it (from the repository root)::

    # one process, CPU, a few seconds
    python recipes/accelerate_loop.py
    python recipes/accelerate_loop.py --collapsed          # the gate aborts: exit 1

    # two CPU processes (gloo). ACCELERATE_USE_CPU=1 is needed: without it each worker
    # believes it is alone (see integrations/README.md, "The 2-process CPU trap")
    ACCELERATE_USE_CPU=1 accelerate launch --config_file integrations/accelerate/cpu-2proc.yaml \\
        recipes/accelerate_loop.py --collapsed

    # four GPUs: DDP, or FSDP2, both bf16 (the config's mixed_precision)
    accelerate launch --config_file integrations/accelerate/ddp-4gpu.yaml \\
        recipes/accelerate_loop.py --gpu
    accelerate launch --config_file integrations/accelerate/fsdp-bf16-4gpu.yaml \\
        recipes/accelerate_loop.py --gpu

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
from accelerate import Accelerator
from accelerate.utils import DistributedType, send_to_device, set_seed

from collapse_callbacks import CollapseDetected, GateError, GateReport
from collapse_callbacks.distributed import AccelerateCollective
from collapse_callbacks.probes import ProbeTarget
from collapse_callbacks.training import TrainingGate

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


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = recipe_parser(__doc__.split("\n", 1)[0], "train on CUDA GPUs with bf16")
    parser.add_argument("--epochs", type=int, default=1)
    return parse_recipe_args(parser, argv)


def make_accelerator(args: argparse.Namespace) -> Accelerator:
    # Under `accelerate launch` the config's mixed_precision arrives in this variable and
    # wins; run as a plain script, --gpu means bf16 autocast (Ampere or newer).
    launched = "ACCELERATE_MIXED_PRECISION" in os.environ
    precision = None if launched else ("bf16" if args.gpu else "no")
    # cpu=True also makes every worker of a CPU `accelerate launch` a real gloo rank
    # (the same effect as ACCELERATE_USE_CPU=1).
    return Accelerator(cpu=not args.gpu, mixed_precision=precision)


def check_training_data(accelerator: Accelerator, model, loader, reference) -> GateReport:
    """Gate the run's own (prepared) loader and model; raise on every rank or none."""
    gate = TrainingGate(
        # Held-out real data, read through a DataLoader in the model's input format, so
        # its batches also feed the model probes. Not prepared: every rank reads all of
        # it, because the comparison on rank 0 needs the whole reference.
        reference_loader(reference)
    )
    probe = ProbeTarget(
        # The prepared model: DDP- or FSDP-wrapped, its forward already under the run's
        # autocast, so the probes measure the model exactly as the loop will train it.
        model=model,
        loss=lambda batch: model(**batch)["loss"],
        # Training batches come from the prepared loader, already on the device; the
        # reference batches do not, so every probe batch goes through this.
        to_device=lambda batch: send_to_device(batch, accelerator.device),
        # Under FSDP each rank holds a shard of every parameter; the probes then sum
        # their per-rank statistics instead of taking one rank's as the whole.
        sharded=accelerator.distributed_type == DistributedType.FSDP,
    )
    # A collective: every rank calls it, with its own shard of the training data.
    outcome = gate.run(loader, AccelerateCollective(), probe=probe)
    # outcome is identical on every rank (the report is broadcast from rank 0, an error
    # on any rank is gathered to all), so these branches are taken together.
    if outcome.error is not None:
        # Fail closed: data that could not be checked is not trained on. To fail open
        # instead, warn here on the main process and return None.
        raise GateError(outcome.error, outcome.error_rank)
    report = outcome.report
    if accelerator.is_main_process:
        print(report.render(), flush=True)
    if report.collapsed:
        raise CollapseDetected(report)
    return report


def train(args: argparse.Namespace, accelerator: Accelerator) -> str:
    set_seed(args.seed)
    reference, train_data = datasets(collapsed=args.collapsed, seed=args.seed)
    model = PenguinClassifier()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    loader = train_loader(train_data, args.batch_size, args.seed)
    # prepare() first: the gate must see what training will see, the loader sharded
    # across the ranks and the model wrapped (and under FSDP, sharded) for this run.
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)

    report = check_training_data(accelerator, model, loader, reference)

    steps, loss = 0, torch.tensor(float("nan"))
    model.train()
    for _ in range(args.epochs):
        for batch in loader:
            loss = model(**batch)["loss"]
            accelerator.backward(loss)
            optimizer.step()
            optimizer.zero_grad()
            steps += 1
    return (
        f"trained {steps} optimizer steps, "
        f"last loss {loss.item():.3f} (gate score {report.score:.1f}/100)"
    )


def finish(accelerator: Accelerator, code: int, message: str) -> int:
    """Print this rank's outcome, wait for the other ranks, shut down cleanly."""
    print(f"rank {accelerator.process_index}: {message}", flush=True)
    # The launcher (torchrun under `accelerate launch`) stops the remaining workers as
    # soon as one exits non-zero; the barrier lets every rank say what happened first.
    # Safe here: the gate's verdict is the same on every rank, so all of them get here.
    accelerator.wait_for_everyone()
    accelerator.end_training()  # destroys the process group
    return code


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    accelerator = make_accelerator(args)
    try:
        done = train(args, accelerator)
    except CollapseDetected as exc:
        # The reasons are in the report rank 0 printed above; one short line per rank.
        message = f"NOT TRAINED (exit 1): collapse risk, gate score {exc.report.score:.1f}/100"
        return finish(accelerator, 1, message)
    except GateError as exc:
        return finish(accelerator, 3, f"NOT TRAINED (exit 3): {exc}")
    return finish(accelerator, 0, done)


if __name__ == "__main__":
    sys.exit(main())
