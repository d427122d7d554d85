"""Run by test_lightning_ddp.py: 2-process DDP on CPU (gloo); each rank writes what it saw.

Usage: python lightning_ddp_script.py OUT_DIR {collapsed|real}
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from collapse_callbacks import CollapseDetected
from collapse_callbacks.lightning import CollapseGateCallback
from lightning_task import PenguinModule, trainer
from training_task import loaders, same, snapshot


def main(out: Path, case: str) -> None:
    reference, real, collapsed = loaders()
    candidate = collapsed if case == "collapsed" else real
    torch.manual_seed(0)
    module = PenguinModule()
    before = snapshot(module)
    callback = CollapseGateCallback(reference)
    run = trainer(devices=2, strategy="ddp", callbacks=[callback], max_epochs=1)
    raised = None
    try:
        run.fit(module, train_dataloaders=candidate)
    except CollapseDetected as exc:
        raised = type(exc).__name__
        assert exc.report is callback.report
    rank = run.global_rank
    report = callback.report
    result = {
        "rank": rank,
        "world_size": run.world_size,
        "raised": raised,
        "global_step": run.global_step,
        "batches_trained": len(module.seen_batches),
        "batches_in_shard": len(run.train_dataloader),
        "weights_unchanged": same(before, snapshot(module)),
        "collapsed": report.collapsed,
        "score": report.score,
        "candidate_rows": report.sizes.candidate_rows,
        "notes": list(report.notes),
        "gradient_health": report.dimensions["gradient_health"].status.value,
    }
    (out / f"rank{rank}.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
