"""The Lightning callback under real 2-process DDP on CPU (gloo): one decision on every
rank, profiles merged across the shards, no step on a collapsed candidate."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("lightning")

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent


def launch(tmp_path: Path, case: str) -> list[dict]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": "1",
    }
    done = subprocess.run(
        [sys.executable, str(HERE / "lightning_ddp_script.py"), str(tmp_path), case],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    files = sorted(tmp_path.glob("rank*.json"))
    assert len(files) == 2, done.stdout[-3000:] + done.stderr[-3000:]
    return [json.loads(f.read_text()) for f in files]


def test_collapsed_candidate_raises_on_every_rank(tmp_path):
    ranks = launch(tmp_path, "collapsed")
    assert [r["rank"] for r in ranks] == [0, 1]
    for r in ranks:
        assert r["world_size"] == 2
        assert r["raised"] == "CollapseDetected"
        assert r["collapsed"] is True
        assert r["global_step"] == 0 and r["batches_trained"] == 0
        assert r["weights_unchanged"] is True
        assert r["gradient_health"] != "not run"
    # One report: identical on both ranks, built from both shards.
    assert ranks[0]["score"] == ranks[1]["score"]
    assert ranks[0]["candidate_rows"] >= 167  # both shards (DistributedSampler pads)
    assert any("on 2 ranks" in note for note in ranks[0]["notes"])


def test_real_candidate_trains_on_every_rank(tmp_path):
    ranks = launch(tmp_path, "real")
    for r in ranks:
        assert r["raised"] is None and r["collapsed"] is False
        assert r["batches_trained"] == r["batches_in_shard"] > 0
        assert r["global_step"] == r["batches_in_shard"]
    assert ranks[0]["score"] == ranks[1]["score"]


def test_an_error_on_one_rank_reaches_every_rank(tmp_path):
    ranks = launch(tmp_path, "rank1_fails")
    for r in ranks:
        assert r["raised"] == "GateError" and r["global_step"] == 0
        assert "on rank 1" in r["message"] and "cannot read its shard" in r["message"]
