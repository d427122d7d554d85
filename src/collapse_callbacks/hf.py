"""The gate as a Hugging Face ``TrainerCallback`` (and so under ``accelerate launch``).

::

    from collapse_callbacks.hf import CollapseGateTrainerCallback

    trainer = Trainer(..., callbacks=[CollapseGateTrainerCallback(reference="real.parquet")])

The gate runs in ``on_train_begin`` on the ``train_dataloader`` the Trainer hands over
(already prepared by accelerate: sharded, on device), through a fresh iterator. Ranks
meet through accelerate's ``PartialState``, the state the Trainer itself uses; the model
is probed as the Trainer holds it (the FSDP-wrapped module under FSDP, where every
forward is a collective), with ``model(**batch).loss`` unless ``loss_fn`` is given.

``on_collapse``:

* ``"raise"`` (default): every rank raises :class:`collapse_callbacks.CollapseDetected`
  out of ``trainer.train()``, before any forward pass of training.
* ``"stop"``: sets ``control.should_training_stop``. The Trainer checks the flag after
  a step, so **one full optimizer step still runs**; use ``"raise"`` when no step may.
* ``"warn"``: logs the report and trains.

On a run resumed from a checkpoint (``state.global_step > 0`` at ``on_train_begin``)
the gate does not run again unless ``regate_on_resume=True``; the report of the first
gating is read back from ``<output_dir>/collapse_gate_report.json``, which rank 0 writes.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from collapse_callbacks.errors import CollapseDetected, GateError
from collapse_callbacks.report import GateReport
from collapse_callbacks.training import ON_COLLAPSE, GateOutcome, TrainingGate, log_report

REPORT_FILE = "collapse_gate_report.json"


class CollapseGateTrainerCallback(TrainerCallback):
    def __init__(
        self,
        reference: Any,
        *,
        alpha: float = 0.01,
        seed: int = 0,
        max_rows: int | None = None,
        max_seconds: float | None = None,
        on_collapse: str = "raise",
        fail_closed: bool = False,
        probe_batches: int = 4,
        reference_batches: Iterable | None = None,
        loss_fn: Callable[[Any, Any], Any] | None = None,
        columns: list[str] | None = None,
        regate_on_resume: bool = False,
        log_to_wandb: bool = True,
        **gate_options: Any,
    ) -> None:
        if on_collapse not in ON_COLLAPSE:
            raise ValueError(f"on_collapse must be one of {ON_COLLAPSE}, got {on_collapse!r}")
        self.gate = TrainingGate(
            reference,
            alpha=alpha,
            seed=seed,
            max_rows=max_rows,
            max_seconds=max_seconds,
            probe_batches=probe_batches,
            reference_batches=reference_batches,
            columns=columns,
            **gate_options,
        )
        self.on_collapse = on_collapse
        self.fail_closed = fail_closed
        self.loss_fn = loss_fn
        self.regate_on_resume = regate_on_resume
        self.log_to_wandb = log_to_wandb
        self.report: GateReport | None = None
        self.error: str | None = None

    def on_train_begin(self, args, state, control, model=None, train_dataloader=None, **kwargs):
        saved = Path(args.output_dir or ".") / REPORT_FILE
        if state.global_step > 0 and not self.regate_on_resume:
            if saved.exists():
                self.report = GateReport.from_json(saved.read_text())
            return control
        if train_dataloader is None:
            raise GateError("the Trainer passed no train_dataloader to on_train_begin")
        from collapse_callbacks.distributed import AccelerateCollective

        probe = None if model is None else self._probe_target(model)
        reason = None if model is not None else "needs a model: the Trainer passed none"
        outcome = self.gate.run(train_dataloader, AccelerateCollective(), probe, reason)
        self._act(outcome, args, state, control, saved)
        return control

    def _probe_target(self, model):
        from collapse_callbacks.probes import ProbeTarget

        loss_fn = self.loss_fn or _model_loss
        device = _device_of(model)

        def loss(batch):
            return loss_fn(model, batch)

        return ProbeTarget(
            model=model,
            loss=loss,
            to_device=lambda batch: _to_device(batch, device),
            sharded=_is_fsdp(model),
        )

    def _act(self, outcome: GateOutcome, args, state, control, saved: Path) -> None:
        rank_zero = state.is_world_process_zero
        if outcome.error is not None:
            self.error = outcome.error
            if self.fail_closed:
                raise GateError(outcome.error, outcome.error_rank)
            if rank_zero:
                warnings.warn(
                    f"collapse-gate could not gate this run (rank {outcome.error_rank}): "
                    f"{outcome.error}; training continues (fail_closed=False)",
                    stacklevel=2,
                )
            return
        report = outcome.report
        self.report = report
        aborts = report.collapsed and self.on_collapse in ("raise", "stop")
        if rank_zero:
            print(report.render(), flush=True)
            if args.output_dir:
                saved.parent.mkdir(parents=True, exist_ok=True)
                saved.write_text(report.to_json())
            if self.log_to_wandb:
                log_report(None, self.gate, report, aborted=aborts, step=state.global_step)
        if not report.collapsed:
            return
        if self.on_collapse == "raise":
            raise CollapseDetected(report)
        if self.on_collapse == "stop":
            control.should_training_stop = True
            if rank_zero:
                warnings.warn(
                    "collapse-gate: collapse risk, stopping (the Trainer still runs one "
                    "optimizer step before it reads the flag; on_collapse='raise' runs none)",
                    stacklevel=2,
                )
            return
        if rank_zero:
            warnings.warn(
                f"collapse-gate: collapse risk, training anyway: {report.reasons[:1]}",
                stacklevel=2,
            )


def _model_loss(model, batch):
    """What ``Trainer.compute_loss`` does by default: the model computes its own loss
    from the ``labels`` in the batch."""
    outputs = model(**batch) if isinstance(batch, Mapping) else model(*batch)
    loss = outputs["loss"] if isinstance(outputs, Mapping) else getattr(outputs, "loss", None)
    if loss is None:
        raise ValueError(
            "the model returned no loss for a probe batch (no 'labels' in the batch?); "
            "pass loss_fn=(model, batch) -> loss"
        )
    return loss


def _device_of(model):
    for parameter in model.parameters():
        return parameter.device
    return None


def _to_device(batch, device):
    """Reference batches come from a loader accelerate did not prepare: move them."""
    import torch

    if device is None:
        return batch
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, Mapping):
        return type(batch)({k: _to_device(v, device) for k, v in batch.items()})
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(v, device) for v in batch)
    return batch


def _is_fsdp(model) -> bool:
    try:
        from torch.distributed.fsdp import FSDPModule, FullyShardedDataParallel
    except ImportError:
        return False
    return isinstance(model, (FSDPModule, FullyShardedDataParallel))
