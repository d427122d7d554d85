"""The HF TrainerCallback with 2 real processes: torchrun on CPU (gloo). A plain
``accelerate launch --cpu --num_processes 2`` would start one process and test nothing
distributed (../shared/INTEGRATION-NOTES.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("transformers")
pytest.importorskip("accelerate")

HERE = Path(__file__).resolve().parent


def launch(tmp_path: Path, case: str) -> list[dict]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": "1",
    }
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        str(HERE / "hf_ddp_script.py"), str(tmp_path), case,
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    files = sorted(tmp_path.glob("rank*.json"))
    assert len(files) == 2, done.stdout[-3000:] + done.stderr[-3000:]
    return [json.loads(f.read_text()) for f in files]


def test_collapsed_candidate_raises_on_both_ranks_before_any_step(tmp_path):
    ranks = launch(tmp_path, "collapsed")
    assert [r["rank"] for r in ranks] == [0, 1]
    for r in ranks:
        assert r["world_size"] == 2 and r["raised"] == "CollapseDetected"
        assert r["global_step"] == 0 and r["optimizer_state"] == 0
        assert r["weights_unchanged"] is True
        assert r["gradient_health"] != "not run"
    assert ranks[0]["score"] == ranks[1]["score"]
    assert ranks[0]["candidate_rows"] >= 167  # both shards


def test_real_candidate_trains_on_both_ranks(tmp_path):
    ranks = launch(tmp_path, "real")
    for r in ranks:
        assert r["raised"] is None and not r["collapsed"] and r["global_step"] > 0
    assert ranks[0]["score"] == ranks[1]["score"]
