"""What every dimension returns: signals with calibrated p-values, and a scored result.

A *signal* is one statistic about one column (or the whole row): its value for the
candidate and for the reference, a signed *effect* oriented so that larger is worse,
the practical *tolerance* on that effect, the effect's *noise* (its spread when the
candidate is just more real data), and a calibrated p-value. Its *kind* says how the
verdict reads it:

* ``narrowing``: the candidate is poorer (thinner tails, less variance or entropy, more
  duplicates, less coverage). Tested one-sided: a richer candidate is not collapsing.
* ``structure``: dependence changed (correlations smoothed or invented, rows a
  classifier tells apart). Tested two-sided.
* ``shift``: location or mix changed. Reported as shift; alone it does not fail the gate.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from enum import Enum


class SignalKind(str, Enum):
    NARROWING = "narrowing"
    STRUCTURE = "structure"
    SHIFT = "shift"


class Status(str, Enum):
    PASS = "pass"
    FAIL = "fail"
    NOT_RUN = "not run"


_FLOAT_FIELDS = {"value", "effect", "tolerance", "noise", "p_value"}


@dataclass(frozen=True)
class Signal:
    name: str
    kind: SignalKind
    column: str | None
    value: float
    reference_value: float | None
    effect: float
    tolerance: float
    noise: float
    p_value: float
    sentence: str
    # True for a reading of another signal's test (the same p-value, not a test of its
    # own): the multiple-testing correction does not count it (detector.holm).
    restates: bool = False
    # Other signals (``name`` or ``name:column``) this one accounts for: a selection of
    # real rows that also reproduces them (dimensions/selection_effects.py).
    explains: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return self.name if self.column is None else f"{self.name}:{self.column}"

    def score(self) -> float:
        """100 when the effect is within noise, 50 at the tolerance beyond noise, -> 0."""
        excess = max(0.0, self.effect - 2.0 * self.noise)
        if not math.isfinite(excess) or self.tolerance <= 0:
            return 100.0 if excess == 0 else 0.0
        return 100.0 / (1.0 + (excess / self.tolerance) ** 2)

    def fires(self, threshold: float) -> bool:
        """Significant at ``threshold`` and larger than the practical tolerance."""
        return self.p_value < threshold and self.effect > self.tolerance

    def to_dict(self) -> dict:
        data = asdict(self)
        data["kind"] = self.kind.value
        return {k: _json_number(v) for k, v in data.items()}

    @classmethod
    def from_dict(cls, data: dict) -> Signal:
        values = {k: (math.nan if v is None and k in _FLOAT_FIELDS else v) for k, v in data.items()}
        values["kind"] = SignalKind(values["kind"])
        values["explains"] = tuple(values.get("explains", ()))
        return cls(**values)


@dataclass(frozen=True)
class DimensionResult:
    name: str
    status: Status
    score: float | None
    p_value: float | None
    signals: tuple[Signal, ...] = ()
    fired: tuple[int, ...] = ()  # indices of the signals that fired, worst first
    reason: str | None = None  # why a dimension did not run
    statistics: dict[str, float] = field(default_factory=dict)

    @classmethod
    def not_run(cls, name: str, reason: str) -> DimensionResult:
        return cls(name=name, status=Status.NOT_RUN, score=None, p_value=None, reason=reason)

    @property
    def firing(self) -> tuple[Signal, ...]:
        return tuple(self.signals[i] for i in self.fired)

    @property
    def sentences(self) -> tuple[str, ...]:
        return tuple(s.sentence for s in self.firing)

    @property
    def drivers(self) -> tuple[str, ...]:
        """The columns behind the firing signals, worst first."""
        return tuple(dict.fromkeys(s.column for s in self.firing if s.column is not None))

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "status": self.status.value,
            "score": _json_number(self.score),
            "p_value": _json_number(self.p_value),
            "sentences": list(self.sentences),
            "drivers": list(self.drivers),
            "reason": self.reason,
            "statistics": {k: _json_number(v) for k, v in self.statistics.items()},
            "fired": list(self.fired),
            "signals": [s.to_dict() for s in self.signals],
        }

    @classmethod
    def from_dict(cls, data: dict) -> DimensionResult:
        return cls(
            name=data["name"],
            status=Status(data["status"]),
            score=data["score"],
            p_value=data["p_value"],
            signals=tuple(Signal.from_dict(s) for s in data["signals"]),
            fired=tuple(data["fired"]),
            reason=data["reason"],
            statistics={k: (math.nan if v is None else v) for k, v in data["statistics"].items()},
        )


def _json_number(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass(frozen=True)
class DimensionEvidence:
    """What a dimension module computes; the detector turns it into a DimensionResult
    (status and p-value depend on how many dimensions share the false-alarm budget)."""

    name: str
    signals: tuple[Signal, ...] = ()
    statistics: dict[str, float] = field(default_factory=dict)
    not_run: str | None = None  # the reason, when the dimension could not run

    def scaled(self, scale: float) -> DimensionEvidence:
        """The same evidence with every signal's tolerance times ``scale`` (lineage)."""
        signals = tuple(replace(s, tolerance=s.tolerance * scale) for s in self.signals)
        return replace(self, signals=signals)
