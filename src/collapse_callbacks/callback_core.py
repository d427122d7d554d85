"""What the Lightning and HF callbacks share: their options, what every rank does with
the gate's outcome, and logging the report to the W&B run."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from collapse_callbacks.errors import CollapseDetected, GateError
from collapse_callbacks.report import GateReport
from collapse_callbacks.training import ON_COLLAPSE, GateOutcome, TrainingGate, describe


class GateCallbackCore:
    """What the Lightning and HF callbacks share: their options, validated at once, and
    what every rank does with the gate's outcome. The frameworks differ only in their
    hooks, how a run is stopped, and where the W&B run is found."""

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

    def act(
        self,
        outcome: GateOutcome,
        *,
        rank_zero: bool,
        stop: Callable[[], str],
        log: Callable[[GateReport, bool], None],
    ) -> None:
        """Identical on every rank, since the outcome is: raise, stop, warn or go on.
        ``stop()`` stops the run the framework's way and returns the warning to show;
        ``log(report, aborted)`` runs on rank 0 only."""
        import warnings

        if outcome.error is not None:
            self.error = outcome.error
            if self.fail_closed:
                raise GateError(outcome.error, outcome.error_rank)
            if rank_zero:
                warnings.warn(
                    f"collapse-gate could not gate this run (rank {outcome.error_rank}): "
                    f"{outcome.error}; training continues (fail_closed=False)",
                    stacklevel=3,
                )
            return
        report = outcome.report
        self.report = report
        if rank_zero:
            print(report.render(), flush=True)
            if self.log_to_wandb:
                log(report, report.collapsed and self.on_collapse in ("raise", "stop"))
        if not report.collapsed:
            return
        if self.on_collapse == "raise":
            raise CollapseDetected(report)
        if self.on_collapse == "stop":
            message = stop()
            if rank_zero:
                warnings.warn(message, stacklevel=3)
            return
        if rank_zero:
            warnings.warn(
                f"collapse-gate: collapse risk, training anyway: {report.reasons[:1]}",
                stacklevel=3,
            )


def log_report(
    run: Any, gate: TrainingGate, report: GateReport, *, aborted: bool, step=None
) -> None:
    """Log ``report`` to ``run`` or else the active W&B run, if any (rank 0 only).
    Logging never breaks training: a failure is a warning."""
    import warnings

    try:
        from collapse_callbacks.tracking.histograms import worst_column_histograms
        from collapse_callbacks.tracking.sinks import WandbSink, find_wandb_run, log_gate

        run = find_wandb_run([run] if run is not None else ())
        if run is None:
            return
        comparison = gate.last_comparison
        histograms = (
            worst_column_histograms(report, comparison.reference, comparison.candidate)
            if comparison is not None
            else []
        )
        log_gate(WandbSink(run), report, histograms, aborted=aborted, step=step)
    except Exception as exc:
        warnings.warn(f"collapse-gate: could not log to W&B: {describe(exc)}", stacklevel=2)
