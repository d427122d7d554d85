"""Run by test_hf_ddp.py under torchrun (2 CPU processes, gloo): each rank writes what
it saw. Usage: torchrun --nproc_per_node 2 hf_ddp_script.py OUT_DIR {collapsed|real}"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch
from transformers import Trainer

from collapse_callbacks import CollapseDetected
from collapse_callbacks.hf import CollapseGateTrainerCallback
from hf_task import PenguinModel, datasets, reference_loader, training_args
from training_task import same, snapshot


def main(out: Path, case: str) -> None:
    reference, real, collapsed = datasets()
    torch.manual_seed(0)
    model = PenguinModel()
    before = snapshot(model)
    callback = CollapseGateTrainerCallback(reference_loader(reference))
    trainer = Trainer(
        model=model,
        args=training_args(out / "run"),
        train_dataset=collapsed if case == "collapsed" else real,
        callbacks=[callback],
    )
    raised = None
    try:
        trainer.train()
    except CollapseDetected as exc:
        raised = type(exc).__name__
    state = trainer.accelerator.state
    report = callback.report
    result = {
        "rank": state.process_index,
        "world_size": state.num_processes,
        "raised": raised,
        "global_step": trainer.state.global_step,
        "weights_unchanged": same(before, snapshot(model)),
        "optimizer_state": len(trainer.optimizer.state),
        "collapsed": report.collapsed,
        "score": report.score,
        "candidate_rows": report.sizes.candidate_rows,
        "gradient_health": report.dimensions["gradient_health"].status.value,
    }
    (out / f"rank{state.process_index}.json").write_text(json.dumps(result))
    # Leave without the interpreter's teardown: tearing the gloo process group down at
    # exit sometimes aborted a rank under load ("terminate called without an active
    # exception"), and destroying it explicitly sometimes hung; either way torchrun
    # lost a rank after both had written their results.
    os._exit(0)


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
