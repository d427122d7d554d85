"""The GPU check of the training integrations: bf16 autocast and FSDP on a real GPU.

CI has no GPU, so this script is run by hand on a GPU machine (one GPU is enough):

    PYTHONPATH=src python benchmarks/gpu_check.py

Each part runs on its own and prints PASS or FAIL with the reason, so one run shows
everything:

1. ``CollapseGate.check`` with the classifier two-sample test on CUDA under bf16
   autocast (real penguins vs generation 5 of the demo's recursive generator).
2. Lightning, ``strategy="fsdp"``, ``precision="bf16-mixed"``: the callback probes the
   FSDP-wrapped model (every forward a collective), raises ``CollapseDetected`` before
   any step on the collapsed candidate, and trains on the real one.
3. Lightning, single GPU, ``bf16-mixed`` without FSDP: the same two cases.
4. Hugging Face ``Trainer`` with ``bf16=True`` on the GPU: the same two cases.

Data: the Palmer penguins shipped by ``palmerpenguins``.
"""

from __future__ import annotations

import sys
import time
import traceback
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

# The penguin task of the callback tests (real halves, generation 5 of the demo's
# recursive generator, standardized tensors): one definition for both.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from training_task import tables, tensors

RESULTS: list[tuple[str, bool, str]] = []
# --cpu: a dry run of this script itself on a machine without a GPU (FSDP is skipped:
# Lightning refuses it on CPU).
CPU = "--cpu" in sys.argv


def part(name):
    def wrap(fn):
        def run():
            started = time.perf_counter()
            try:
                detail = fn()
                RESULTS.append((name, True, detail))
            except Exception as exc:
                RESULTS.append((name, False, f"{type(exc).__name__}: {exc}"))
                traceback.print_exc()
            print(f"[{time.perf_counter() - started:6.1f}s] {name}: {RESULTS[-1][1]}", flush=True)

        return run

    return wrap


def loaders():
    reference, real, collapsed = tables()
    return tuple(
        DataLoader(tensors(t, reference), batch_size=32, shuffle=True)
        for t in (reference, real, collapsed)
    )


def net():
    return torch.nn.Sequential(
        torch.nn.Linear(4, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64), torch.nn.ReLU(),
        torch.nn.Linear(64, 3),
    )  # fmt: skip


@part("1. CollapseGate.check: classifier two-sample test on CUDA, bf16 autocast")
def engine_on_gpu():
    from collapse_callbacks import CollapseGate

    reference, real, collapsed = tables()
    gate = CollapseGate(reference)
    if not CPU:
        torch.cuda.reset_peak_memory_stats()
    passed, failed = gate.check(real), gate.check(collapsed)
    used = 0 if CPU else torch.cuda.max_memory_allocated()
    assert CPU or used > 0, "nothing was allocated on the GPU: the classifier ran on the CPU"
    assert not passed.collapsed and failed.collapsed, (passed.score, failed.score)
    auc = failed.dimensions["generalization_gap"].statistics["auc"]
    return (
        f"real {passed.score:.1f} pass, generation 5 {failed.score:.1f} collapsed "
        f"(AUC {auc:.3f}); peak GPU memory {used / 2**20:.1f} MiB"
    )


def lightning_case(strategy, precision):
    import lightning.pytorch as pl

    from collapse_callbacks import CollapseDetected
    from collapse_callbacks.lightning import CollapseGateCallback

    class Module(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = net()

        def training_step(self, batch, batch_idx):
            x, y = batch
            return torch.nn.functional.cross_entropy(self.net(x), y)

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=1e-2)

    out = []
    for case in ("collapsed", "real"):
        reference, real, collapsed = loaders()
        torch.manual_seed(0)
        module = Module()
        callback = CollapseGateCallback(reference)
        trainer = pl.Trainer(
            accelerator="cpu" if CPU else "gpu", devices=1, strategy=strategy, precision=precision,
            callbacks=[callback], max_epochs=1, logger=False, enable_progress_bar=False,
            enable_model_summary=False, enable_checkpointing=False,
        )  # fmt: skip
        raised = False
        try:
            trainer.fit(module, train_dataloaders=collapsed if case == "collapsed" else real)
        except CollapseDetected:
            raised = True
        report = callback.report
        health = report.dimensions["gradient_health"]
        landscape = report.dimensions["loss_landscape"]
        assert health.status.value != "not run", health.reason
        assert landscape.status.value != "not run", landscape.reason
        if case == "collapsed":
            assert raised and trainer.global_step == 0, (raised, trainer.global_step)
        else:
            assert not raised and trainer.global_step > 0, (raised, report.reasons[:2])
        out.append(
            f"{case}: score {report.score:.1f}, raised {raised}, steps {trainer.global_step}, "
            f"gradient norm ratio {health.statistics.get('gradient_norm_ratio', float('nan')):.2f}, "
            f"loss ratio {landscape.statistics.get('loss_ratio', float('nan')):.2f}"
        )
    return "; ".join(out)


@part("2. Lightning FSDP + bf16-mixed: probes through the FSDP-wrapped model")
def lightning_fsdp():
    return lightning_case("fsdp", "bf16-mixed")


@part("3. Lightning single GPU + bf16-mixed")
def lightning_bf16():
    return lightning_case("auto", "bf16-mixed")


class Rows(Dataset):
    def __init__(self, data):
        self.data = data

    def __len__(self):
        return len(self.data)

    def __getitem__(self, index):
        x, y = self.data[index]
        return {"features": x, "labels": y}


class HFModel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = net()

    def forward(self, features, labels=None):
        logits = self.net(features)
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = torch.nn.functional.cross_entropy(logits.float(), labels)
        return out


@part("4. Hugging Face Trainer, bf16=True on the GPU")
def hf_bf16():
    import tempfile

    from transformers import Trainer, TrainingArguments, default_data_collator

    from collapse_callbacks import CollapseDetected
    from collapse_callbacks.hf import CollapseGateTrainerCallback

    reference, real, collapsed = tables()
    sets = {
        name: Rows(tensors(t, reference))
        for name, t in zip(("reference", "real", "collapsed"), (reference, real, collapsed))
    }
    out = []
    for case in ("collapsed", "real"):
        torch.manual_seed(0)
        model = HFModel()
        callback = CollapseGateTrainerCallback(
            DataLoader(sets["reference"], batch_size=32, collate_fn=default_data_collator)
        )
        args = TrainingArguments(
            output_dir=tempfile.mkdtemp(), per_device_train_batch_size=32, num_train_epochs=1,
            bf16=True, use_cpu=CPU, report_to="none", save_strategy="no", logging_strategy="no",
            disable_tqdm=True,
        )  # fmt: skip
        trainer = Trainer(model=model, args=args, train_dataset=sets[case], callbacks=[callback])
        raised = False
        try:
            trainer.train()
        except CollapseDetected:
            raised = True
        report = callback.report
        assert report.dimensions["gradient_health"].status.value != "not run"
        assert raised == (case == "collapsed"), (case, raised, report.score)
        if raised:
            assert trainer.state.global_step == 0
        out.append(
            f"{case}: score {report.score:.1f}, raised {raised}, steps {trainer.state.global_step}"
        )
    return "; ".join(out)


def main() -> int:
    if not CPU and not torch.cuda.is_available():
        print("no CUDA device: this check needs a GPU (--cpu for a dry run)", file=sys.stderr)
        return 2
    device = "CPU dry run" if CPU else torch.cuda.get_device_name(0)
    print(f"torch {torch.__version__}, {device}", flush=True)
    checks = (
        [engine_on_gpu, lightning_bf16, hf_bf16]
        if CPU
        else [engine_on_gpu, lightning_fsdp, lightning_bf16, hf_bf16]
    )
    for check in checks:
        check()
    print()
    for name, ok, detail in RESULTS:
        print(f"{'PASS' if ok else 'FAIL'}  {name}\n      {detail}")
    return 0 if all(ok for _, ok, _ in RESULTS) else 1


if __name__ == "__main__":
    raise SystemExit(main())
