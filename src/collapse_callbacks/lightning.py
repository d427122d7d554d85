"""The gate as a Lightning callback: check the train DataLoader before the first step.

::

    from collapse_callbacks.lightning import CollapseGateCallback

    trainer = Trainer(callbacks=[CollapseGateCallback(reference="real.parquet")])

The gate runs in ``on_train_start``, the first hook where ``trainer.train_dataloader``
exists (already sharded by the ``DistributedSampler`` under DDP) and the model is
already wrapped, before the first ``training_step``. Each rank reads its own shard
through a fresh iterator (the run's own iteration and random state are unchanged), the
profiles meet on rank 0 through the strategy's collectives, the model is probed on every
rank through ``strategy.training_step`` (so DDP / FSDP wrapping and the precision
plugin's autocast apply), and one report reaches every rank before any rank acts.

``on_collapse``:

* ``"raise"`` (default): every rank raises :class:`collapse_callbacks.CollapseDetected`
  carrying the report; Lightning tears the run down; no optimizer step was taken.
* ``"stop"``: sets ``trainer.should_stop``; ``fit`` returns after 0 steps. Lightning
  ignores ``should_stop`` while ``min_epochs`` / ``min_steps`` are not reached, so with
  those set the run trains anyway. The report stays on ``callback.report``.
* ``"warn"``: logs the report and trains.

``fail_closed``: when gating itself fails (unreadable batches, a probe that raised), the
default logs a warning on every rank and trains; ``fail_closed=True`` raises
:class:`collapse_callbacks.GateError` on every rank instead.

The report is saved in the callback's ``state_dict``: a run resumed from a checkpoint
does not gate again unless ``regate_on_resume=True``.
"""

from __future__ import annotations

import contextlib
from typing import Any

from lightning.pytorch.callbacks import Callback

from collapse_callbacks.callback_core import GateCallbackCore, log_report
from collapse_callbacks.report import GateReport
from collapse_callbacks.training import GateOutcome, TrainingGate


class CollapseGateCallback(GateCallbackCore, Callback):
    """Options: see :class:`~collapse_callbacks.callback_core.GateCallbackCore` and the README."""

    # -- hooks ----------------------------------------------------------------------

    def on_train_start(self, trainer, pl_module) -> None:
        if self.report is not None and not self.regate_on_resume:
            return  # resumed: this run's data was gated before the checkpoint
        from collapse_callbacks.distributed import LightningCollective

        loader = _train_loader(trainer.train_dataloader)
        probe, reason = self._probe_target(trainer, pl_module)
        outcome = self.gate.run(loader, LightningCollective(trainer.strategy), probe, reason)
        self._act(outcome, trainer)

    def state_dict(self) -> dict[str, Any]:
        return {"report": None if self.report is None else self.report.to_json(indent=None)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        saved = state_dict.get("report")
        self.report = None if saved is None else GateReport.from_json(saved)

    # -- steps ----------------------------------------------------------------------

    def _probe_target(self, trainer, pl_module):
        from lightning.pytorch.strategies import FSDPStrategy

        from collapse_callbacks.probes import ProbeTarget

        strategy = trainer.strategy
        if self.loss_fn is not None:
            loss_fn = self.loss_fn

            def loss(batch):
                return loss_fn(pl_module, batch)

            context = trainer.precision_plugin.forward_context
        elif not pl_module.automatic_optimization:
            return None, (
                "not probed: with manual optimization training_step steps the optimizer "
                "itself; pass loss_fn=(module, batch) -> loss to probe the model"
            )
        else:

            def loss(batch):
                # strategy.training_step runs the wrapped model (DDP, FSDP) under the
                # precision plugin, as the fit loop does; self.log there is muted.
                with _muted_logging(pl_module):
                    return strategy.training_step(batch, 0)

            context = contextlib.nullcontext
        return (
            ProbeTarget(
                model=strategy.model,
                loss=loss,
                to_device=strategy.batch_to_device,
                forward_context=context,
                sharded=isinstance(strategy, FSDPStrategy),
            ),
            None,
        )

    def _act(self, outcome: GateOutcome, trainer) -> None:
        def stop() -> str:
            trainer.should_stop = True
            return (
                "collapse-gate: collapse risk, stopping before the first step "
                "(ignored by Lightning while min_epochs/min_steps are not reached)"
            )

        def log(report: GateReport, aborted: bool) -> None:
            _log_wandb(trainer, self.gate, report, aborted=aborted)

        self.act(outcome, rank_zero=trainer.is_global_zero, stop=stop, log=log)


def _train_loader(loader):
    """The DataLoader to gate. Lightning hands back what ``train_dataloader`` returned:
    one loader, or a list / dict of them (the first is gated)."""
    if isinstance(loader, dict) and loader:
        return next(iter(loader.values()))
    if isinstance(loader, (list, tuple)) and loader:
        return loader[0]
    return loader


@contextlib.contextmanager
def _muted_logging(module):
    def ignore(*args, **kwargs):
        return None

    module.log, module.log_dict = ignore, ignore
    try:
        yield
    finally:
        del module.log, module.log_dict


def _log_wandb(trainer, gate: TrainingGate, report: GateReport, *, aborted: bool) -> None:
    run = None
    for logger in trainer.loggers:
        if type(logger).__name__ == "WandbLogger":
            run = logger.experiment  # the live run; only rank 0 gets here
            break
    log_report(run, gate, report, aborted=aborted, step=trainer.global_step)
