"""The gate inside a training job: every rank profiles its shard of the train DataLoader,
the profiles meet on rank 0, the model is probed on every rank, and one report reaches
every rank before anyone acts on it.

The framework callbacks (:mod:`collapse_callbacks.lightning`, :mod:`collapse_callbacks.hf`,
sharing :mod:`collapse_callbacks.callback_core`) only adapt this to their hooks; a plain training loop calls
:meth:`TrainingGate.run` itself (see ``recipes/accelerate_loop.py``).

Every rank makes the same collective calls in the same order whatever happens locally:
a rank whose profiling raised still joins the gather (with its error instead of its
profile), so an exception on one rank reaches all of them instead of leaving the others
waiting in a collective. Decisions (run the probes? how many batches?) are taken from
gathered information only, so they are identical on every rank.
"""

from __future__ import annotations

import functools
import json
import math
import time
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from collapse_callbacks.distributed import Collective, SingleProcess
from collapse_callbacks.report import GateReport

ON_COLLAPSE = ("raise", "stop", "warn")


@dataclass(frozen=True)
class GateOutcome:
    """What every rank knows after gating: a report, or why gating failed."""

    report: GateReport | None
    error: str | None = None
    error_rank: int | None = None


class TrainingGate:
    """Configuration and the collective gating procedure shared by the callbacks.

    ``reference``: anything the data layer reads (file, URL, frame, DataLoader).
    ``reference_batches``: batches in the model's own input format for the model probes
    (a DataLoader or any iterable); when ``reference`` is itself a DataLoader its
    batches serve. Without either, the two model dimensions say "not run".
    ``max_rows``: rows profiled in total across ranks. ``max_seconds``: time budget of
    the profiling pass on each rank (the probes are skipped once it is spent).
    ``probe_batches``: batches of each side the model probes run on (per rank).
    Further keyword arguments go to :class:`~collapse_callbacks.CollapseGate`.
    """

    def __init__(
        self,
        reference: Any,
        *,
        alpha: float = 0.01,
        seed: int = 0,
        max_rows: int | None = None,
        max_seconds: float | None = None,
        probe_batches: int = 4,
        reference_batches: Iterable | None = None,
        **gate_options: Any,
    ) -> None:
        from collapse_callbacks.gate import CollapseGate

        if reference is None:
            raise ValueError("a training gate needs a reference (real data to compare with)")
        if max_seconds is not None and not max_seconds > 0:
            raise ValueError(f"max_seconds must be > 0, got {max_seconds}")
        if isinstance(probe_batches, bool) or not isinstance(probe_batches, int):
            raise TypeError(f"probe_batches must be an int, got {type(probe_batches).__name__}")
        if probe_batches < 0:
            raise ValueError(f"probe_batches must be >= 0, got {probe_batches}")
        self.gate = CollapseGate(
            reference, alpha=alpha, seed=seed, max_rows=max_rows, **gate_options
        )
        self.max_rows = max_rows
        self.max_seconds = max_seconds
        self.probe_batches = probe_batches
        self.reference_batches = reference_batches
        self.last_comparison = None  # rank 0, after run(): the profiles behind the report
        self._no_probe: str | None = None

    def run(
        self,
        loader: Any,
        collective: Collective | None = None,
        probe: Any = None,
        no_probe_reason: str | None = None,
    ) -> GateOutcome:
        """Gate ``loader`` (this rank's shard) on every rank of ``collective``.

        ``probe`` is a :class:`~collapse_callbacks.probes.ProbeTarget`, or None with
        ``no_probe_reason`` saying why the model cannot be probed.
        """
        self._no_probe = no_probe_reason
        collective = collective or SingleProcess()
        started = time.perf_counter()
        deadline = None if self.max_seconds is None else time.monotonic() + self.max_seconds

        local = _Local()
        try:
            local.measure(self, loader, collective, deadline, probe)
        except Exception as exc:  # reaches every rank through the gather below
            local.error = describe(exc)
        shards = [_Shard.decode(p) for p in collective.all_gather_bytes(local.shard().encode())]
        failed = [(rank, s.error) for rank, s in enumerate(shards) if s.error]
        if failed:
            rank, message = failed[0]
            return GateOutcome(None, message, rank)

        probe_error, measurements = self._probe(local, shards, collective, probe)
        if probe_error is not None:
            return GateOutcome(None, probe_error[1], probe_error[0])

        payload = None
        if collective.rank == 0:
            payload = self._judge(local, shards, measurements, collective, started)
        answer = json.loads(collective.broadcast_bytes(payload, src=0))
        if "error" in answer:
            return GateOutcome(None, answer["error"], 0)
        return GateOutcome(GateReport.from_dict(answer["report"]))

    # -- steps ------------------------------------------------------------------------

    def _probe(self, local, shards, collective, probe):
        """Probe on every rank with the same batch counts; (error, measurements)."""
        from collapse_callbacks.probes import ProbeMeasurements, run_probes

        candidate = min(s.candidate_batches for s in shards)
        reference = min(s.reference_batches for s in shards)
        if probe is None or candidate == 0 or not all(s.time_left for s in shards):
            return None, []
        payload = b""
        try:
            measured = run_probes(
                probe,
                local.reference_batches[:reference],
                local.candidate_batches[:candidate],
                seed=self.gate.seed,
            )
            payload = b"M" + measured.to_bytes()
        except Exception as exc:
            payload = b"E" + describe(exc).encode()
        gathered = collective.all_gather_bytes(payload)
        for rank, item in enumerate(gathered):
            if item[:1] == b"E":
                return (rank, "model probe: " + item[1:].decode()), []
        return None, [ProbeMeasurements.from_bytes(item[1:]) for item in gathered]

    def _judge(self, local, shards, measurements, collective, started) -> bytes:
        from collapse_callbacks.dimensions import gradients, landscape
        from collapse_callbacks.dimensions.base import DimensionEvidence
        from collapse_callbacks.profile.table import Profile

        try:
            profiles = [Profile.from_bytes(s.profile) for s in shards]
            merged = functools.reduce(Profile.merge, profiles)
            comparison = self.gate.comparison(merged, local.alignment)
            if measurements:
                extra = [gradients.run(measurements), landscape.run(measurements)]
            else:
                reason = self._no_probe_reason(shards)
                extra = [
                    DimensionEvidence(gradients.NAME, not_run=reason),
                    DimensionEvidence(landscape.NAME, not_run=reason),
                ]
            notes = []
            if collective.world_size > 1:
                notes.append(
                    f"candidate profiled on {collective.world_size} ranks, one shard each "
                    f"({', '.join(f'{p.rows:,}' for p in profiles)} rows), merged on rank 0"
                )
            report = self.gate.judge(
                comparison, local.alignment, extra_evidence=extra, notes=notes, started=started
            )
            self.last_comparison = comparison
            return json.dumps({"report": report.to_dict()}).encode()
        except Exception as exc:
            return json.dumps({"error": describe(exc)}).encode()

    def _no_probe_reason(self, shards) -> str:
        if not all(s.time_left for s in shards):
            return "skipped: the time budget (max_seconds) was spent profiling"
        if not any(s.has_model for s in shards):
            return self._no_probe or "needs a model: no model was given to the gate"
        if min(s.candidate_batches for s in shards) == 0:
            return "no candidate batches on some rank"
        if self.probe_batches == 0:
            return "disabled (probe_batches=0)"
        return "no reference batches in the model's input format (pass reference_batches=)"


class _Local:
    """What this rank measured before the first collective."""

    def __init__(self) -> None:
        self.error: str | None = None
        self.alignment = None
        self.profile: bytes = b""
        self.candidate_batches: list = []
        self.reference_batches: list = []
        self.time_left = True
        self.has_model = False

    def measure(self, gate: TrainingGate, loader, collective, deadline, probe) -> None:
        from collapse_callbacks.data.dataloader import iter_raw_batches

        engine = gate.gate
        self.alignment = engine.align(engine._open(loader, columns=engine.columns))
        per_rank = None
        if gate.max_rows is not None:
            per_rank = max(1, math.ceil(gate.max_rows / collective.world_size))
        real_rows = unpadded_rows(loader)
        if real_rows is not None:
            per_rank = real_rows if per_rank is None else min(per_rank, real_rows)
        profile = engine.profile_candidate(
            loader, self.alignment, deadline=deadline, max_rows=per_rank
        )
        self.profile = profile.to_bytes()
        self.time_left = deadline is None or time.monotonic() < deadline
        self.has_model = probe is not None
        if probe is None or gate.probe_batches == 0 or not self.time_left:
            return
        self.candidate_batches = list(iter_raw_batches(loader, max_batches=gate.probe_batches))
        self.reference_batches = _reference_batches(gate, gate.probe_batches)

    def shard(self) -> _Shard:
        return _Shard(
            error=self.error,
            profile=self.profile if self.error is None else b"",
            candidate_batches=len(self.candidate_batches),
            reference_batches=len(self.reference_batches),
            time_left=self.time_left,
            has_model=self.has_model,
        )


@dataclass(frozen=True)
class _Shard:
    """One rank's contribution to the first gather."""

    error: str | None
    profile: bytes
    candidate_batches: int
    reference_batches: int
    time_left: bool
    has_model: bool

    def encode(self) -> bytes:
        header = json.dumps(
            {
                "error": self.error,
                "candidate_batches": self.candidate_batches,
                "reference_batches": self.reference_batches,
                "time_left": self.time_left,
                "has_model": self.has_model,
            }
        ).encode()
        return len(header).to_bytes(8, "little") + header + self.profile

    @classmethod
    def decode(cls, payload: bytes) -> _Shard:
        size = int.from_bytes(payload[:8], "little")
        header = json.loads(payload[8 : 8 + size])
        return cls(profile=payload[8 + size :], **header)


def unpadded_rows(loader: Any) -> int | None:
    """How many of the rows this rank's loader yields are not padding, for the samplers
    that pad shards to equal length; None when nothing is padded or the sampler is not
    one of them.

    ``DistributedSampler`` (Lightning's DDP / FSDP) repeats the first indices of the
    shuffled order to fill the last round, and accelerate's ``BatchSamplerShard`` (the
    HF Trainer's prepared loader, ``even_batches``) completes the last round of batches
    with rows from the start of the epoch. Both put the repeats at the end of each rank's
    sequence, so the first ``unpadded_rows`` rows are the real ones. Profiled, the
    repeats would read as duplicated training rows: on a small dataset enough to call
    real data collapsed.
    """
    from torch.utils.data.distributed import DistributedSampler

    sampler = getattr(loader, "sampler", None)
    if isinstance(sampler, DistributedSampler):
        if sampler.drop_last:
            return None
        return len(range(sampler.rank, len(sampler.dataset), sampler.num_replicas))
    shard = getattr(loader, "batch_sampler", None)
    if type(shard).__name__ != "BatchSamplerShard":
        return None
    if shard.split_batches or not shard.even_batches or shard.drop_last or not shard.batch_size:
        return None
    try:
        total = len(shard.batch_sampler.sampler)
    except (AttributeError, TypeError):
        return None
    size, ranks, rank = shard.batch_size, shard.num_processes, shard.process_index
    batches = math.ceil(total / size)
    return sum(min(size, total - g * size) for g in range(rank, batches, ranks))


def _reference_batches(gate: TrainingGate, count: int) -> list:
    from torch.utils.data import DataLoader

    from collapse_callbacks.data.dataloader import iter_raw_batches

    source = gate.reference_batches
    if source is None and isinstance(gate.gate.reference, DataLoader):
        source = gate.gate.reference
    if source is None:
        return []
    if isinstance(source, DataLoader):
        return list(iter_raw_batches(source, max_batches=count))
    out = []
    for batch in source:
        if len(out) == count:
            break
        out.append(batch)
    return out


def describe(exc: BaseException) -> str:
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" ({last[0].filename.rsplit('/', 1)[-1]}:{last[0].lineno})" if last else ""
    return f"{type(exc).__name__}: {exc}{where}"
