"""The recipes under recipes/ run as a user runs them: as scripts, in fresh processes.

Each recipe trains on the real half of the penguins (the gate passes, exit 0) and on
generation-5 synthetic data (the gate aborts, exit 1, nothing trained). One more launch
runs the accelerate loop in 2 processes, as `accelerate launch` with the repository's
CPU config starts them, and checks that both ranks stop.

Most of each run is importing torch and its framework, so all launches start together
when the module's first test asks for them and overlap on the cores; each test then
waits for its own.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ROOT / "recipes"
CPU_2PROC = ROOT / "integrations" / "accelerate" / "cpu-2proc.yaml"
TIMEOUT = 240

# What each recipe needs beyond the package itself (palmerpenguins: the data).
NEEDS = {
    "hf_trainer_accelerate.py": ("palmerpenguins", "transformers", "accelerate"),
    "lightning_gate.py": ("palmerpenguins", "lightning"),
    "accelerate_loop.py": ("palmerpenguins", "accelerate"),
}
TWO_PROCESSES = ("accelerate_loop.py", "2 processes")


def _env(**extra: str) -> dict[str, str]:
    # Nothing inherited from a launcher around pytest or a developer's shell, and no
    # tracking service. The package is installed (editable) in the venv: no PYTHONPATH.
    launcher = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in launcher and not key.startswith(("ACCELERATE_", "WANDB_"))
    }
    env.update(
        OMP_NUM_THREADS="1",  # several processes on 2 cores: no thread oversubscription
        HF_HUB_OFFLINE="1",  # the recipes need no network; make sure they use none
        WANDB_MODE="disabled",
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


@dataclass
class Launch:
    process: subprocess.Popen
    cwd: Path
    result: tuple[int, str] | None = None

    def wait(self) -> tuple[int, str]:
        """(exit code, stdout and stderr together)."""
        if self.result is None:
            try:
                output, _ = self.process.communicate(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                output, _ = self.process.communicate()
                pytest.fail(f"timed out after {TIMEOUT} s:\n{output[-4000:]}")
            self.result = (self.process.returncode, output)
        return self.result


def _start(command: list[str], cwd: Path, env: dict[str, str]) -> Launch:
    cwd.mkdir(parents=True)
    process = subprocess.Popen(
        command,
        cwd=cwd,  # where a recipe writes (the Trainer's output_dir, wandb/) is the test's
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # Lightning prints the report through logging (stderr)
        text=True,
    )
    return Launch(process, cwd)


def _installed(recipe: str) -> bool:
    return all(importlib.util.find_spec(module) is not None for module in NEEDS[recipe])


@pytest.fixture(scope="module")
def launches(tmp_path_factory):
    root = tmp_path_factory.mktemp("recipes")
    started: dict[tuple[str, str], Launch] = {}
    for recipe in NEEDS:
        if not _installed(recipe):
            continue
        for case, flags in (("real", []), ("collapsed", ["--collapsed"])):
            cwd = root / f"{recipe[:-3]}-{case}"
            command = [sys.executable, str(RECIPES / recipe), *flags]
            started[recipe, case] = _start(command, cwd, _env())
    if _installed("accelerate_loop.py"):
        # The documented CPU launch: the config starts 2 workers through torchrun, and
        # ACCELERATE_USE_CPU=1 makes them one gloo job instead of two 1-process runs.
        command = [
            sys.executable, "-m", "accelerate.commands.launch",
            "--config_file", str(CPU_2PROC),
            str(RECIPES / "accelerate_loop.py"), "--collapsed",
        ]  # fmt: skip
        cwd = root / "accelerate_loop-2proc"
        started[TWO_PROCESSES] = _start(command, cwd, _env(ACCELERATE_USE_CPU="1"))
    yield started
    for launch in started.values():  # a test that failed early left its run going
        if launch.process.poll() is None:
            launch.process.kill()
            launch.process.communicate()


def _launch(launches, key) -> Launch:
    if key not in launches:
        pytest.skip(f"{key[0]} needs {', '.join(NEEDS[key[0]])}")
    return launches[key]


@pytest.mark.parametrize("recipe", list(NEEDS))
def test_real_data_passes_the_gate_and_trains(launches, recipe):
    code, output = _launch(launches, (recipe, "real")).wait()
    assert code == 0, output[-4000:]
    assert "PASS" in output and "COLLAPSE RISK" not in output, output[-4000:]
    assert "rank 0: trained " in output and "NOT TRAINED" not in output, output[-4000:]
    assert "rank 1:" not in output  # one process: one rank


@pytest.mark.parametrize("recipe", list(NEEDS))
def test_collapsed_data_stops_the_run_with_exit_code_1(launches, recipe):
    launch = _launch(launches, (recipe, "collapsed"))
    code, output = launch.wait()
    assert code == 1, output[-4000:]
    assert "COLLAPSE RISK: do not train on this candidate" in output, output[-4000:]
    assert "rank 0: NOT TRAINED (exit 1): collapse risk, gate score" in output
    assert "rank 0: trained" not in output
    assert "Traceback" not in output, output[-4000:]  # caught: a message, not a crash
    if recipe == "hf_trainer_accelerate.py":
        # The Trainer callback's rank 0 keeps the report in the run's output_dir.
        saved = launch.cwd / "recipe-output" / "hf-trainer" / "collapse_gate_report.json"
        assert saved.is_file()


def test_two_processes_both_ranks_stop_on_collapsed_data(launches):
    code, output = _launch(launches, TWO_PROCESSES).wait()
    assert code != 0, output[-4000:]
    # Each rank printed its own exit decision (the recipe waits for the other rank
    # before exiting, so the launcher cannot stop one before it has printed).
    lines = [line for line in output.splitlines() if line.startswith("rank ")]
    for rank in (0, 1):
        mine = [line for line in lines if line.startswith(f"rank {rank}: ")]
        assert len(mine) == 1, output[-4000:]
        assert mine[0].startswith(f"rank {rank}: NOT TRAINED (exit 1): collapse risk")
    # One verdict for the job: both ranks report the same score, and the report says it
    # merged two shards (a lone rank would have profiled only its own).
    assert len({line.rsplit("gate score", 1)[1] for line in lines}) == 1
    assert "candidate profiled on 2 ranks" in output, output[-4000:]
    assert output.count("COLLAPSE RISK: do not train") == 1  # printed by rank 0 only
