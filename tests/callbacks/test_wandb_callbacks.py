"""The callbacks log to the W&B run the user already has: Lightning's WandbLogger and
the HF Trainer's report_to="wandb", both offline, read back from the run file."""

from __future__ import annotations

import pytest

wandb = pytest.importorskip("wandb")
pytest.importorskip("lightning")
pytest.importorskip("transformers")

from collapse_callbacks import CollapseDetected  # noqa: E402
from tracking.wandb_offline import only_wandb_031, read_offline_run  # noqa: E402


def assert_gate_logged(offline, report, *, aborted: bool) -> None:
    (row,) = [h for h in offline.history if "collapse_gate/score" in h]
    assert row["collapse_gate/score"] == pytest.approx(report.score)
    assert row["collapse_gate/collapsed"] == int(report.collapsed)
    for name, result in report.dimensions.items():
        if result.score is not None:
            assert row[f"collapse_gate/{name}"] == pytest.approx(result.score)
    # The model dimensions ran inside training: they are logged, not "not run".
    assert "collapse_gate/gradient_health" in row and "collapse_gate/loss_landscape" in row
    assert row["collapse_gate/failing_columns"]["_type"] == "table-file"
    assert offline.summary["collapse_gate/verdict"] == (
        "collapsed" if report.collapsed else ("shift" if report.shift else "pass")
    )
    assert any(a.type == "collapse-gate-report" for a in offline.artifacts)
    assert len(offline.alerts) == int(aborted)


@only_wandb_031
def test_lightning_wandb_logger_receives_the_gate_and_the_alert(offline_wandb):
    from lightning.pytorch.loggers import WandbLogger

    from collapse_callbacks.lightning import CollapseGateCallback
    from lightning_task import PenguinModule, trainer
    from training_task import loaders

    reference, _, collapsed = loaders()
    logger = WandbLogger(project="t", save_dir=str(offline_wandb), offline=True)
    callback = CollapseGateCallback(reference)
    run = trainer(callbacks=[callback], logger=logger)
    with pytest.raises(CollapseDetected):
        run.fit(PenguinModule(), train_dataloaders=collapsed)
    logger.experiment.finish()  # WandbLogger never finishes its run itself
    assert_gate_logged(read_offline_run(offline_wandb), callback.report, aborted=True)


@only_wandb_031
def test_hf_report_to_wandb_receives_the_gate(offline_wandb):
    from transformers import Trainer

    from collapse_callbacks.hf import CollapseGateTrainerCallback
    from hf_task import PenguinModel, datasets, reference_loader, training_args

    reference, real, _ = datasets()
    callback = CollapseGateTrainerCallback(reference_loader(reference))
    trainer = Trainer(
        model=PenguinModel(),
        args=training_args(offline_wandb / "out", report_to="wandb", run_name="gate"),
        train_dataset=real,
        callbacks=[callback],
    )
    trainer.train()
    wandb.finish()
    assert_gate_logged(read_offline_run(offline_wandb), callback.report, aborted=False)
