"""One small interface over the collectives the gate needs across ranks.

The gate exchanges bytes (serialized profiles, probe results, the report) and nothing
else, so every backend reduces to two operations: gather every rank's bytes on every
rank, and broadcast one rank's bytes to all. Implementations:

* ``SingleProcess``: one rank, no communication.
* ``TorchDistributed``: the default ``torch.distributed`` process group (a plain
  ``torchrun`` script, ``accelerate launch``, anything that initialized it).
* ``LightningCollective``: a Lightning ``Strategy``, through its own ``all_gather`` and
  ``broadcast``, so tensors land on the strategy's device (NCCL needs CUDA tensors).
* ``AccelerateCollective``: accelerate's ``PartialState``, the state a HF ``Trainer``
  uses, through ``accelerate.utils.gather_object`` and ``broadcast_object_list``.

Every call is a collective: all ranks must make the same calls in the same order, or
the job hangs. The gate is written so that they do, whatever each rank saw.
"""

from __future__ import annotations

from typing import Any, Protocol


class Collective(Protocol):
    rank: int
    world_size: int

    def all_gather_bytes(self, payload: bytes) -> list[bytes]:
        """Every rank's payload, in rank order, on every rank."""

    def broadcast_bytes(self, payload: bytes | None, src: int = 0) -> bytes:
        """``src``'s payload on every rank (the others pass None)."""


class SingleProcess:
    rank = 0
    world_size = 1

    def all_gather_bytes(self, payload: bytes) -> list[bytes]:
        return [payload]

    def broadcast_bytes(self, payload: bytes | None, src: int = 0) -> bytes:
        if payload is None:
            raise ValueError("a single process must broadcast its own payload")
        return payload


class TorchDistributed:
    """The default process group; objects travel pickled by torch, which is safe here:
    the payloads are bytes this package made on a rank of the same job."""

    def __init__(self) -> None:
        import torch.distributed as dist

        self._dist = dist
        self.rank = dist.get_rank()
        self.world_size = dist.get_world_size()

    def all_gather_bytes(self, payload: bytes) -> list[bytes]:
        out: list[Any] = [None] * self.world_size
        self._dist.all_gather_object(out, payload)
        return out

    def broadcast_bytes(self, payload: bytes | None, src: int = 0) -> bytes:
        box = [payload]
        self._dist.broadcast_object_list(box, src=src)
        return box[0]


class LightningCollective:
    def __init__(self, strategy: Any) -> None:
        self._strategy = strategy
        self.rank = int(strategy.global_rank)
        self.world_size = int(strategy.world_size)

    def all_gather_bytes(self, payload: bytes) -> list[bytes]:
        if self.world_size == 1:
            return [payload]
        import torch

        device = self._strategy.root_device
        # Two rounds: lengths first, so every rank pads to the same shape.
        length = torch.tensor([len(payload)], dtype=torch.int64, device=device)
        lengths = self._strategy.all_gather(length).reshape(-1).tolist()
        buffer = torch.zeros(max(lengths), dtype=torch.uint8, device=device)
        if payload:
            buffer[: len(payload)] = torch.frombuffer(bytearray(payload), dtype=torch.uint8)
        gathered = self._strategy.all_gather(buffer).reshape(self.world_size, -1).cpu()
        return [bytes(gathered[r, :n].numpy().tobytes()) for r, n in enumerate(lengths)]

    def broadcast_bytes(self, payload: bytes | None, src: int = 0) -> bytes:
        return self._strategy.broadcast(payload, src=src)


class AccelerateCollective:
    def __init__(self) -> None:
        from accelerate import PartialState

        self._state = PartialState()
        self.rank = int(self._state.process_index)
        self.world_size = int(self._state.num_processes)

    def all_gather_bytes(self, payload: bytes) -> list[bytes]:
        if self.world_size == 1:
            return [payload]
        from accelerate.utils import gather_object

        return list(gather_object([payload]))

    def broadcast_bytes(self, payload: bytes | None, src: int = 0) -> bytes:
        if self.world_size == 1:
            return SingleProcess().broadcast_bytes(payload, src)
        from accelerate.utils import broadcast_object_list

        box = [payload]
        broadcast_object_list(box, from_process=src)
        return box[0]


def detect_collective() -> Collective:
    """``TorchDistributed`` when a default process group exists, else ``SingleProcess``."""
    try:
        import torch.distributed as dist
    except ImportError:  # a torch build without distributed support
        return SingleProcess()
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return TorchDistributed()
    return SingleProcess()
