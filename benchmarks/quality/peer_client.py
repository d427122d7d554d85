"""Talk to a peer's runner script living in its own virtual environment.

Each peer pins versions the project venv cannot share (pandas<3, numpy<2), so it runs in
``_envs/.venv-<peer>`` as a separate process. One process per peer serves every case:
the harness writes the case as Parquet files to a temporary folder and sends the folder's
path on stdin; the runner answers one JSON line on stdout. Keeping the process alive
avoids paying the peer's import time (seconds for torch or evidently) on every case.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pandas as pd

from .datasets import categorical_columns, numeric_columns
from .verdict import Verdict

PEERS_DIR = Path(__file__).resolve().parent / "peers"
DEFAULT_ENVS_DIR = Path(__file__).resolve().parent / "_envs"


def peer_python(envs_dir: Path, peer: str) -> Path:
    return envs_dir / f".venv-{peer}" / "bin" / "python"


def write_case(
    folder: Path, reference: pd.DataFrame, candidate: pd.DataFrame, alpha: float, seed: int
) -> None:
    """The case format every peer runner reads."""
    folder.mkdir(parents=True, exist_ok=True)
    reference.to_parquet(folder / "reference.parquet", index=False)
    candidate.to_parquet(folder / "candidate.parquet", index=False)
    spec = {
        "alpha": alpha,
        "seed": seed,
        "numeric": numeric_columns(reference),
        "categorical": categorical_columns(reference),
    }
    (folder / "case.json").write_text(json.dumps(spec))


@dataclass
class PeerProcess:
    """A callable detector backed by ``peers/run_<peer>.py --stdin`` in the peer's venv."""

    peer: str
    envs_dir: Path
    timeout_s: float = 900.0
    log_path: Path | None = None
    _proc: subprocess.Popen | None = field(default=None, init=False, repr=False)
    _lines: queue.Queue | None = field(default=None, init=False, repr=False)
    _log: IO[str] | None = field(default=None, init=False, repr=False)

    def __call__(
        self, reference: pd.DataFrame, candidate: pd.DataFrame, alpha: float, seed: int
    ) -> Verdict:
        folder = Path(tempfile.mkdtemp(prefix=f"quality-{self.peer}-"))
        try:
            write_case(folder, reference, candidate, alpha, seed)
            answer = self._ask(str(folder))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        if "error" in answer:
            raise RuntimeError(f"{self.peer}: {answer['error']}")
        return Verdict.from_dict(answer)

    def _ask(self, line: str) -> dict:
        self._ensure_started()
        assert self._proc is not None and self._proc.stdin is not None and self._lines
        self._proc.stdin.write(line + "\n")
        self._proc.stdin.flush()
        try:
            reply = self._lines.get(timeout=self.timeout_s)
        except queue.Empty:
            self.close()  # a hung peer is restarted on the next case
            raise TimeoutError(f"{self.peer}: no answer within {self.timeout_s:.0f} s") from None
        if reply is None:
            self.close()
            raise RuntimeError(f"{self.peer}: runner exited; see {self.log_path}")
        return json.loads(reply)

    def _ensure_started(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            return
        python = peer_python(self.envs_dir, self.peer)
        script = PEERS_DIR / f"run_{self.peer}.py"
        if self.log_path is not None:
            self._log = self.log_path.open("a")
        # stderr goes to a file, never a pipe: a chatty library must not fill a pipe
        # buffer nobody reads and block the runner.
        # An idle peer waits between cases while the harness computes on the same cores;
        # with OpenMP's default spin-waiting its idle threads slowed the in-process
        # detectors up to 30x here. PASSIVE makes idle threads sleep.
        env = {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
        self._proc = subprocess.Popen(
            [str(python), str(script), "--stdin"],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log if self._log is not None else subprocess.DEVNULL,
            text=True,
            bufsize=1,
        )
        self._lines = queue.Queue()
        threading.Thread(target=_pump, args=(self._proc.stdout, self._lines), daemon=True).start()

    def close(self) -> None:
        if self._proc is not None:
            if self._proc.poll() is None:
                try:
                    self._proc.stdin.close()
                    self._proc.wait(timeout=10)
                except (OSError, subprocess.TimeoutExpired):
                    self._proc.kill()
                    self._proc.wait()
            self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None


def _pump(stream, lines: queue.Queue) -> None:
    """Forward the runner's stdout lines; ``None`` marks its end."""
    for line in stream:
        if line.strip():
            lines.put(line)
    lines.put(None)
