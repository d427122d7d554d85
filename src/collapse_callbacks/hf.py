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

from collections.abc import Mapping
from pathlib import Path

from transformers import TrainerCallback

from collapse_callbacks.callback_core import GateCallbackCore, log_report
from collapse_callbacks.errors import GateError
from collapse_callbacks.report import GateReport
from collapse_callbacks.training import GateOutcome

REPORT_FILE = "collapse_gate_report.json"


class CollapseGateTrainerCallback(GateCallbackCore, TrainerCallback):
    """Options: see :class:`~collapse_callbacks.callback_core.GateCallbackCore` and the README."""

    def on_train_begin(self, args, state, control, model=None, train_dataloader=None, **kwargs):
        saved = Path(args.output_dir or ".") / REPORT_FILE
        if state.global_step > 0 and not self.regate_on_resume:
            if saved.exists():
                self.report = GateReport.from_json(saved.read_text())
            return control
        if train_dataloader is None:
            raise GateError("the Trainer passed no train_dataloader to on_train_begin")
        from collapse_callbacks.distributed import AccelerateCollective

        self._adopt_tokenizer(kwargs.get("processing_class") or kwargs.get("tokenizer"))
        probe = None if model is None else self._probe_target(model)
        reason = None if model is not None else "needs a model: the Trainer passed none"
        outcome = self.gate.run(train_dataloader, AccelerateCollective(), probe, reason)
        self._act(outcome, args, state, control, saved)
        return control

    def _adopt_tokenizer(self, tokenizer) -> None:
        """The Trainer's tokenizer, unless one was given: its special and padding tokens
        never count as content, and reports name tokens as text."""
        gate = self.gate.gate
        if gate.tokenizer is None and hasattr(tokenizer, "all_special_ids"):
            gate.tokenizer = tokenizer

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
        def stop() -> str:
            control.should_training_stop = True
            return (
                "collapse-gate: collapse risk, stopping (the Trainer still runs one "
                "optimizer step before it reads the flag; on_collapse='raise' runs none)"
            )

        def log(report: GateReport, aborted: bool) -> None:
            log_report(None, self.gate, report, aborted=aborted, step=state.global_step)

        if outcome.report is not None and state.is_world_process_zero and args.output_dir:
            saved.parent.mkdir(parents=True, exist_ok=True)
            saved.write_text(outcome.report.to_json())
        self.act(outcome, rank_zero=state.is_world_process_zero, stop=stop, log=log)


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
