"""The Hugging Face TrainerCallback in one process. The 2-process run (torchrun) is in
test_hf_ddp.py."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("transformers")
pytest.importorskip("accelerate")

from transformers import Trainer

from collapse_callbacks import CollapseDetected
from collapse_callbacks.hf import REPORT_FILE, CollapseGateTrainerCallback
from hf_task import PenguinModel, datasets, reference_loader, training_args
from training_task import same, snapshot


@pytest.fixture(scope="module")
def data():
    return datasets()


def make_trainer(tmp_path, callback, dataset, **options):
    torch.manual_seed(0)
    model = PenguinModel()
    trainer = Trainer(
        model=model,
        args=training_args(tmp_path, **options),
        train_dataset=dataset,
        callbacks=[callback],
    )
    return trainer, model, snapshot(model)


def test_collapsed_candidate_raises_with_no_optimizer_step(tmp_path, data):
    reference, _, collapsed = data
    callback = CollapseGateTrainerCallback(reference_loader(reference), reference_batches=None)
    trainer, model, before = make_trainer(tmp_path, callback, collapsed)
    with pytest.raises(CollapseDetected) as caught:
        trainer.train()
    assert caught.value.report.collapsed
    assert trainer.state.global_step == 0
    assert same(before, snapshot(model))
    # The optimizer exists (the Trainer builds it before on_train_begin) and never stepped.
    assert trainer.optimizer is not None and len(trainer.optimizer.state) == 0
    health = caught.value.report.dimensions["gradient_health"]
    assert health.status.value != "not run", health.reason
    assert (tmp_path / REPORT_FILE).exists()


def test_real_candidate_trains(tmp_path, data):
    reference, real, _ = data
    callback = CollapseGateTrainerCallback(reference_loader(reference))
    trainer, model, before = make_trainer(tmp_path, callback, real)
    trainer.train()
    assert not callback.report.collapsed
    assert trainer.state.global_step == len(trainer.get_train_dataloader()) > 0
    assert not same(before, snapshot(model))


def test_stop_still_takes_one_step_as_documented(tmp_path, data):
    reference, _, collapsed = data
    callback = CollapseGateTrainerCallback(reference_loader(reference), on_collapse="stop")
    trainer, _, _ = make_trainer(tmp_path, callback, collapsed)
    with pytest.warns(UserWarning, match="one\\s+optimizer step"):
        trainer.train()
    assert callback.report.collapsed and trainer.state.global_step == 1


def test_warn_trains_anyway(tmp_path, data):
    reference, _, collapsed = data
    callback = CollapseGateTrainerCallback(reference_loader(reference), on_collapse="warn")
    trainer, _, _ = make_trainer(tmp_path, callback, collapsed)
    with pytest.warns(UserWarning, match="training anyway"):
        trainer.train()
    assert trainer.state.global_step == len(trainer.get_train_dataloader())


def test_probes_without_labels_warn_and_train_unless_fail_closed(tmp_path, data):
    from collapse_callbacks import GateError

    reference, real, _ = data

    def no_loss(model, batch):
        return model(**{k: v for k, v in batch.items() if k != "labels"})

    callback = CollapseGateTrainerCallback(reference_loader(reference), loss_fn=no_loss)
    trainer, _, _ = make_trainer(tmp_path, callback, real)
    with pytest.warns(UserWarning, match="could not gate this run"):
        trainer.train()
    assert callback.report is None and "model probe" in callback.error
    closed = CollapseGateTrainerCallback(
        reference_loader(reference), loss_fn=no_loss, fail_closed=True
    )
    trainer, _, _ = make_trainer(tmp_path, closed, real)
    with pytest.raises(GateError, match="model probe"):
        trainer.train()
    assert trainer.state.global_step == 0
