"""Read back what an offline wandb run wrote, for the one test on real wandb.

An offline run (wandb 0.31) keeps everything in ``offline-run-*/run-<id>.wandb``: a
7-byte header (``:W&B``, a 2-byte magic, a version byte), then LevelDB-log framing in
32 KiB blocks. Each chunk has a 7-byte header (crc32 u32, length u16, type u8) and a
record may span blocks (FIRST, MIDDLE..., LAST). Each reassembled payload is a
``wandb_internal_pb2.Record``. It is an internal format, so the reader is strict: an
unknown chunk type or a bad checksum fails the test rather than skipping data.
"""

from __future__ import annotations

import json
import struct
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

HEADER = 7
BLOCK = 32 * 1024
CHUNK_HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def _payloads(data: bytes) -> Iterator[bytes]:
    """Reassembled record payloads of a whole ``.wandb`` file's bytes.

    The file header counts towards the first block, so block boundaries are at
    multiples of 32 KiB of the whole file: ``offset`` is kept in file coordinates.
    """
    offset = HEADER
    pending: list[bytes] | None = None
    while offset + CHUNK_HEADER <= len(data):
        left_in_block = BLOCK - offset % BLOCK
        if left_in_block < CHUNK_HEADER:  # a block's tail too short for a header is padding
            offset += left_in_block
            continue
        checksum, length, kind = struct.unpack_from("<IHB", data, offset)
        start = offset + CHUNK_HEADER
        chunk = data[start : start + length]
        offset = start + length
        if kind == 0 and length == 0:  # zero padding up to the end of a block
            continue
        # wandb's writer checksums the type byte followed by the payload (plain crc32).
        if zlib.crc32(bytes([kind]) + chunk) & 0xFFFFFFFF != checksum:
            raise ValueError(f"bad chunk checksum at byte {start - CHUNK_HEADER}")
        if kind == FULL:
            yield chunk
        elif kind == FIRST:
            pending = [chunk]
        elif kind == MIDDLE and pending is not None:
            pending.append(chunk)
        elif kind == LAST and pending is not None:
            yield b"".join([*pending, chunk])
            pending = None
        else:
            raise ValueError(f"unexpected chunk type {kind} at byte {start - CHUNK_HEADER}")


def read_records(path: Path) -> list:
    """Every protobuf Record of one ``run-<id>.wandb`` file, in write order."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path} does not start with the wandb header")
    records = []
    for payload in _payloads(data):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(payload)
        records.append(record)
    return records


def _put(target: dict, item) -> None:
    """Store one item: ``key`` directly, ``nested_key`` (a path) as nested dicts, so that
    a table logged as ``a/b`` reads back as ``{"a/b": {"path": ...}}``, not a guessed split."""
    path = [item.key] if item.key else list(item.nested_key)
    for part in path[:-1]:
        target = target.setdefault(part, {})
    target[path[-1]] = json.loads(item.value_json)


def _drop(target: dict, item) -> None:
    path = [item.key] if item.key else list(item.nested_key)
    for part in path[:-1]:
        target = target.get(part, {})
    target.pop(path[-1], None)


@dataclass
class OfflineRun:
    """What a test wants from the records: keys and values, grouped by record type."""

    directory: Path
    kinds: list[str] = field(default_factory=list)
    history: list[dict] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    alerts: list = field(default_factory=list)
    artifacts: list = field(default_factory=list)

    @property
    def files(self) -> Path:
        return self.directory / "files"


def read_finished_records(path: Path, timeout: float = 30.0) -> list:
    """The records once the run's ``exit`` record is on disk.

    ``run.finish()`` returns when wandb's core process has handled the exit, which is
    not always after its writer flushed the file: on a busy machine the file was seen
    with its header only. A half-written last chunk fails its checksum; read again.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            records = read_records(path)
        except ValueError:
            records = []
        if any(r.WhichOneof("record_type") == "exit" for r in records):
            return records
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} has no exit record after {timeout} s")
        time.sleep(0.1)


def read_offline_run(wandb_dir: Path) -> OfflineRun:
    """The single offline run under ``wandb_dir`` (the ``dir`` given to ``wandb.init``)."""
    (run_file,) = sorted(Path(wandb_dir).glob("wandb/offline-run-*/run-*.wandb"))
    run = OfflineRun(directory=run_file.parent)
    for record in read_finished_records(run_file):
        kind = record.WhichOneof("record_type")
        run.kinds.append(kind)
        if kind == "history":
            row: dict = {}
            for item in record.history.item:
                _put(row, item)
            run.history.append(row)
        elif kind == "summary":
            for item in record.summary.update:
                _put(run.summary, item)
            for item in record.summary.remove:
                _drop(run.summary, item)
        elif kind == "config":
            for item in record.config.update:
                _put(run.config, item)
        elif kind == "alert":
            run.alerts.append(record.alert)
        elif kind == "artifact":
            run.artifacts.append(record.artifact)
    return run


def _wandb_031() -> bool:
    try:
        import wandb
    except ImportError:
        return False
    return wandb.__version__.startswith("0.31.")


only_wandb_031 = pytest.mark.skipif(
    not _wandb_031(), reason="the offline file format was checked on wandb 0.31 only"
)


@pytest.fixture
def offline_wandb(tmp_path, monkeypatch):
    """Offline and silent, with every wandb folder (staging, cache, settings) in tmp_path."""
    for name, value in {
        "WANDB_SILENT": "true",
        "WANDB_MODE": "offline",
        "WANDB_DIR": str(tmp_path),
        "WANDB_DATA_DIR": str(tmp_path / "data"),
        "WANDB_CACHE_DIR": str(tmp_path / "cache"),
        "WANDB_CONFIG_DIR": str(tmp_path / "config"),
        "WANDB_ARTIFACT_DIR": str(tmp_path / "artifacts"),
    }.items():
        monkeypatch.setenv(name, value)
    yield tmp_path
    try:
        import wandb
    except ImportError:
        return
    wandb.teardown()
