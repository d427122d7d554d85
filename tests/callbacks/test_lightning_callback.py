"""The Lightning callback in one process: verdicts, actions, the untouched DataLoader,
resume, failures. The 2-process DDP run is in test_lightning_ddp.py."""

from __future__ import annotations

import warnings

import pytest
import torch

pytest.importorskip("lightning")

from collapse_callbacks import CollapseDetected, GateError
from collapse_callbacks.lightning import CollapseGateCallback
from lightning_task import PenguinModule, trainer
from training_task import loaders, same, snapshot


@pytest.fixture
def data():
    # Fresh loaders per test: each carries its own shuffle generator, which a run advances.
    return loaders()


def fit(callback, loader, **options):
    torch.manual_seed(0)
    module = PenguinModule()
    before = snapshot(module)
    run = trainer(callbacks=[callback] if callback else [], **options)
    return run, module, before, lambda: run.fit(module, train_dataloaders=loader)


def test_collapsed_candidate_raises_before_any_step(data):
    reference, _, collapsed = data
    callback = CollapseGateCallback(reference)
    run, module, before, go = fit(callback, collapsed)
    with pytest.raises(CollapseDetected) as caught:
        go()
    report = caught.value.report
    assert report.collapsed and report is callback.report
    assert run.global_step == 0 and module.seen_batches == []
    assert same(before, snapshot(module))  # no optimizer step: weights bit for bit
    # The model dimensions ran on the real model with the reference's batches.
    assert report.dimensions["gradient_health"].status.value != "not run"
    assert report.dimensions["loss_landscape"].status.value != "not run"


def test_real_candidate_trains_to_the_end_on_every_batch(data):
    reference, real, _ = data
    callback = CollapseGateCallback(reference)
    run, module, _, go = fit(callback, real)
    go()
    assert callback.report is not None and not callback.report.collapsed
    assert run.global_step == 2 * len(real)
    # The same batches, in the same order, as a run without the gate.
    _plain_run, plain, _, plain_go = fit(None, loaders()[1])
    plain_go()
    assert len(module.seen_batches) == len(plain.seen_batches) == 2 * len(real)
    assert all(torch.equal(a, b) for a, b in zip(module.seen_batches, plain.seen_batches))
    assert same(snapshot(module), snapshot(plain))  # the probes left no trace on training


def test_stop_returns_after_zero_steps_and_keeps_the_report(data):
    reference, _, collapsed = data
    callback = CollapseGateCallback(reference, on_collapse="stop")
    run, module, before, go = fit(callback, collapsed)
    with pytest.warns(UserWarning, match="stopping before the first step"):
        go()
    assert run.global_step == 0 and callback.report.collapsed
    assert same(before, snapshot(module))


def test_warn_trains_anyway(data):
    reference, _, collapsed = data
    callback = CollapseGateCallback(reference, on_collapse="warn")
    run, _, _, go = fit(callback, collapsed)
    with pytest.warns(UserWarning, match="training anyway"):
        go()
    assert callback.report.collapsed and run.global_step == 2 * len(collapsed)


def test_report_survives_a_checkpoint_and_is_not_regated(data):
    reference, real, _ = data
    first = CollapseGateCallback(reference)
    _, _, _, go = fit(first, real, max_epochs=1)
    go()
    resumed = CollapseGateCallback(reference)
    resumed.load_state_dict(first.state_dict())
    assert resumed.report == first.report
    calls = []
    resumed.gate.run = lambda *a, **k: calls.append(a)  # must not be reached
    _, _, _, go = fit(resumed, real, max_epochs=1)
    go()
    assert calls == []


class _BadBatches(torch.utils.data.Dataset):
    """Batches of Python objects the data layer cannot read as columns."""

    def __len__(self):
        return 8

    def __getitem__(self, index):
        return {"x": torch.ones(2), "meta": object()}


def _collate(items):
    return {"x": torch.stack([i["x"] for i in items]), "meta": [i["meta"] for i in items]}


def test_gating_error_warns_and_trains_unless_fail_closed(data):
    reference = data[0]
    bad = torch.utils.data.DataLoader(_BadBatches(), batch_size=4, collate_fn=_collate)

    class Tolerant(PenguinModule):
        def on_train_batch_start(self, batch, batch_idx):
            pass

        def training_step(self, batch, batch_idx):
            return (self.net(batch["x"].repeat(1, 2)) ** 2).mean()

    callback = CollapseGateCallback(reference)
    run = trainer(callbacks=[callback], max_epochs=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run.fit(Tolerant(), train_dataloaders=bad)
    assert any("could not gate this run" in str(w.message) for w in caught)
    assert callback.report is None and "UnsupportedBatchError" in callback.error
    assert run.global_step == 2

    closed = CollapseGateCallback(reference, fail_closed=True)
    run = trainer(callbacks=[closed], max_epochs=1)
    with pytest.raises(GateError, match="UnsupportedBatchError"):
        run.fit(Tolerant(), train_dataloaders=bad)
    assert run.global_step == 0


def test_bad_options_fail_at_construction(data):
    with pytest.raises(ValueError, match="on_collapse"):
        CollapseGateCallback(data[0], on_collapse="explode")
    with pytest.raises(ValueError, match="reference"):
        CollapseGateCallback(None)
    with pytest.raises(ValueError, match="max_seconds"):
        CollapseGateCallback(data[0], max_seconds=0)


def test_time_budget_bounds_gating_and_says_so(data):
    reference, real, _ = data
    # A budget spent after the first batch: the pass stops there, the probes are skipped.
    callback = CollapseGateCallback(reference, max_seconds=1e-6)
    run, _, _, go = fit(callback, real, max_epochs=1)
    go()
    report = callback.report
    assert report.sizes.candidate_rows == 32  # one batch
    assert any("time budget" in note for note in report.notes)
    assert "time budget" in report.dimensions["gradient_health"].reason
    assert run.global_step == len(real)


def test_max_rows_bounds_the_rows_profiled(data):
    reference, real, _ = data
    callback = CollapseGateCallback(reference, max_rows=100)
    _, _, _, go = fit(callback, real, max_epochs=1)
    go()
    assert callback.report.sizes.candidate_rows == 100
