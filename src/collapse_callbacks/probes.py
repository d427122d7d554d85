"""Model probes: gradient health and loss landscape on reference and candidate batches.

The probes run the user's model as the framework wrapped it (``ProbeTarget.model``,
with the run's precision context) on a few reference batches and a few candidate
batches, and leave everything as they found it:

* parameters: the loss-landscape perturbations write into the parameters in place; the
  original values are copied first and copied back, so they are restored bit for bit
  (adding and subtracting a step would not be);
* ``.grad``: each parameter's gradient object is put aside and put back; the probes'
  gradients never reach it after the probe, and no optimizer step is taken, so the
  optimizer state is untouched;
* buffers (BatchNorm running statistics, step counters) are copied and restored;
* random state: torch CPU and CUDA generators are forked, so dropout during the probe
  does not shift the run's random stream.

Under DDP the probe calls ``no_sync`` so no gradient is all-reduced (each rank probes its
own batches). Under FSDP every forward and backward is a collective: every rank must run
the same number of probe batches, which the caller guarantees, and the statistics are
of each rank's shard (``sharded``), summed across ranks afterwards.

Memory: two gradient-sized buffers (the mean reference and candidate gradients, for
their cosine) and one parameter copy during the landscape probe.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

# Landscape step along each filter-normalized direction (Li et al. 2018, "Visualizing
# the loss landscape of neural nets"): small enough that the loss is locally quadratic.
LANDSCAPE_STEP = 0.05
LANDSCAPE_DIRECTIONS = 2


@dataclass
class ProbeTarget:
    """What the probes need from a training framework."""

    model: Any  # torch.nn.Module, wrapped as the framework wrapped it
    loss: Callable[[Any], Any]  # batch (already on device) -> scalar loss tensor
    to_device: Callable[[Any], Any] = lambda batch: batch
    forward_context: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext
    sharded: bool = False  # FSDP: parameters and gradients are this rank's shard


@dataclass
class SideMeasurements:
    """One side's (reference or candidate) measurements on one rank."""

    losses: list[float] = field(default_factory=list)  # per batch
    grad_norms: list[float] = field(default_factory=list)  # per batch, total L2
    layer_sq_norms: dict[str, float] = field(default_factory=dict)  # summed over batches
    nonfinite_layers: list[str] = field(default_factory=list)
    nonfinite_losses: int = 0
    sharpness: list[float] = field(default_factory=list)  # per direction


@dataclass
class ProbeMeasurements:
    """One rank's probe results; ``to_bytes`` for gathering across ranks."""

    reference: SideMeasurements
    candidate: SideMeasurements
    # Dot products of the summed reference and candidate gradients (this rank's shard).
    dot: float = 0.0
    reference_sq: float = 0.0
    candidate_sq: float = 0.0
    sharded: bool = False

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), allow_nan=True).encode()

    @classmethod
    def from_bytes(cls, payload: bytes) -> ProbeMeasurements:
        data = json.loads(payload)
        return cls(
            reference=SideMeasurements(**data["reference"]),
            candidate=SideMeasurements(**data["candidate"]),
            dot=data["dot"],
            reference_sq=data["reference_sq"],
            candidate_sq=data["candidate_sq"],
            sharded=data["sharded"],
        )


def missing_sides(measurements: Sequence[ProbeMeasurements]) -> str | None:
    """Why the model dimensions cannot compare the sides, or None when they can."""
    if not measurements or not measurements[0].candidate.losses:
        return "no probe batches reached the model"
    if not measurements[0].reference.losses:
        return "no reference batches in the model's input format to compare with"
    return None


def run_probes(
    target: ProbeTarget,
    reference_batches: Sequence[Any],
    candidate_batches: Sequence[Any],
    *,
    seed: int = 0,
) -> ProbeMeasurements:
    """Measure both sides; restore parameters, gradients, buffers and random state."""
    import torch

    model = target.model
    parameters = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    with (
        _gradients_put_aside(parameters),
        _buffers_restored(model),
        torch.random.fork_rng(devices=devices),
        _no_sync(model),
    ):
        torch.manual_seed(seed)
        reference, reference_sum = _gradient_side(target, parameters, reference_batches)
        candidate, candidate_sum = _gradient_side(target, parameters, candidate_batches)
        dot = ref_sq = cand_sq = 0.0
        for r, c in zip(reference_sum, candidate_sum):
            if r is None or c is None:
                continue
            dot += float((r * c).sum())
            ref_sq += float((r * r).sum())
            cand_sq += float((c * c).sum())
        del reference_sum, candidate_sum
        directions_seed = seed + 1
        reference.sharpness = _sharpness(target, parameters, reference_batches, directions_seed)
        candidate.sharpness = _sharpness(target, parameters, candidate_batches, directions_seed)
    return ProbeMeasurements(reference, candidate, dot, ref_sq, cand_sq, target.sharded)


def _gradient_side(target: ProbeTarget, parameters, batches) -> tuple[SideMeasurements, list]:
    side = SideMeasurements()
    total: list[Any] = [None] * len(parameters)
    for batch in batches:
        for _, p in parameters:
            p.grad = None
        with target.forward_context():
            loss = target.loss(target.to_device(batch))
        loss = _scalar(loss)
        value = float(loss.detach().float())
        side.losses.append(value)
        if not math.isfinite(value):
            side.nonfinite_losses += 1
        loss.backward()
        squares = 0.0
        for i, (name, p) in enumerate(parameters):
            if p.grad is None:
                continue
            grad = _local(p.grad).detach().float()
            sq = float((grad * grad).sum())
            if not math.isfinite(sq):
                if name not in side.nonfinite_layers:
                    side.nonfinite_layers.append(name)
                continue
            squares += sq
            side.layer_sq_norms[name] = side.layer_sq_norms.get(name, 0.0) + sq
            total[i] = grad.clone() if total[i] is None else total[i].add_(grad)
        side.grad_norms.append(math.sqrt(squares))
        for _, p in parameters:
            p.grad = None
    return side, total


def _sharpness(target: ProbeTarget, parameters, batches, seed: int) -> list[float]:
    """Curvature of the mean loss along filter-normalized random directions:
    (L(w + e d) + L(w - e d) - 2 L(w)) / e^2, one value per direction."""
    import torch

    if not batches:
        return []
    originals = [_local(p.data).clone() for _, p in parameters]
    generator = torch.Generator(device="cpu").manual_seed(seed)
    out = []
    try:
        with torch.no_grad():
            base = _mean_loss(target, batches)
            for _ in range(LANDSCAPE_DIRECTIONS):
                directions = [
                    _filter_normalized(original, generator, target.sharded)
                    for original in originals
                ]
                values = []
                for sign in (1.0, -1.0):
                    for (_, p), original, d in zip(parameters, originals, directions):
                        _local(p.data).copy_(original + sign * LANDSCAPE_STEP * d)
                    values.append(_mean_loss(target, batches))
                out.append((values[0] + values[1] - 2 * base) / LANDSCAPE_STEP**2)
    finally:
        with torch.no_grad():
            for (_, p), original in zip(parameters, originals):
                _local(p.data).copy_(original)
    return out


def _filter_normalized(weight, generator, sharded: bool):
    """A random direction scaled filter by filter to the weight's own filter norms; zero
    for biases and norms (1-D), except that a sharded flat parameter is scaled whole."""
    import torch

    noise = torch.randn(weight.shape, generator=generator, dtype=torch.float32).to(
        device=weight.device, dtype=weight.dtype
    )
    if weight.dim() >= 2:
        dims = tuple(range(1, weight.dim()))
        scale = weight.norm(dim=dims, keepdim=True) / (noise.norm(dim=dims, keepdim=True) + 1e-12)
        return noise * scale
    if sharded and weight.numel() > 0:
        return noise * (weight.norm() / (noise.norm() + 1e-12))
    return torch.zeros_like(weight)


def _mean_loss(target: ProbeTarget, batches) -> float:
    values = []
    for batch in batches:
        with target.forward_context():
            values.append(float(_scalar(target.loss(target.to_device(batch))).float()))
    return sum(values) / len(values)


def _scalar(loss):
    import torch

    if isinstance(loss, dict):
        loss = loss.get("loss")
    elif hasattr(loss, "loss") and not isinstance(loss, torch.Tensor):
        loss = loss.loss
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        raise TypeError(
            "the probe's loss function must return a scalar tensor (or a dict / model "
            f"output with a 'loss'), got {type(loss).__name__}"
        )
    return loss.reshape(())


def _local(tensor):
    """The local shard of a DTensor (FSDP2), else the tensor itself."""
    to_local = getattr(tensor, "to_local", None)
    return to_local() if callable(to_local) else tensor


@contextlib.contextmanager
def _gradients_put_aside(parameters) -> Iterator[None]:
    saved = [p.grad for _, p in parameters]
    try:
        yield
    finally:
        for (_, p), grad in zip(parameters, saved):
            p.grad = grad


@contextlib.contextmanager
def _buffers_restored(model) -> Iterator[None]:
    import torch

    saved = [(b, b.detach().clone()) for b in model.buffers()]
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, copy in saved:
                buffer.copy_(copy)


def _no_sync(model) -> contextlib.AbstractContextManager:
    from torch.nn.parallel import DistributedDataParallel

    if isinstance(model, DistributedDataParallel):
        return model.no_sync()
    return contextlib.nullcontext()
