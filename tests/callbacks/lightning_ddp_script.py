"""Run by test_lightning_ddp.py: 2-process DDP on CPU (gloo); each rank writes what it saw.

Usage: python lightning_ddp_script.py OUT_DIR {collapsed|real|rank1_fails}

``rank1_fails``: profiling raises on rank 1 only, with ``fail_closed=True``: both ranks
must raise GateError (no rank left waiting in a collective).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

from collapse_callbacks import CollapseDetected, GateError
from collapse_callbacks.lightning import CollapseGateCallback
from lightning_task import PenguinModule, trainer
from training_task import loaders, same, snapshot


def main(out: Path, case: str) -> None:
    reference, real, collapsed = loaders()
    candidate = collapsed if case == "collapsed" else real
    torch.manual_seed(0)
    module = PenguinModule()
    before = snapshot(module)
    callback = CollapseGateCallback(reference, fail_closed=case == "rank1_fails")
    if case == "rank1_fails":
        profile = callback.gate.gate.profile_candidate

        def failing_on_rank_1(*args, **kwargs):
            if os.environ.get("LOCAL_RANK") == "1":
                raise RuntimeError("rank 1 cannot read its shard")
            return profile(*args, **kwargs)

        callback.gate.gate.profile_candidate = failing_on_rank_1
    run = trainer(devices=2, strategy="ddp", callbacks=[callback], max_epochs=1)
    raised = None
    message = None
    try:
        run.fit(module, train_dataloaders=candidate)
    except (CollapseDetected, GateError) as exc:
        raised, message = type(exc).__name__, str(exc)
    rank = run.global_rank
    report = callback.report
    if report is None:
        (out / f"rank{rank}.json").write_text(
            json.dumps({"rank": rank, "raised": raised, "message": message,
                        "global_step": run.global_step})
        )  # fmt: skip
        return
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
