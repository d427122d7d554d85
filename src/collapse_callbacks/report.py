"""GateReport: the verdict, every dimension, and a rendering a person reads in seconds."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

from collapse_callbacks.dimensions.base import DimensionResult, Status


@dataclass(frozen=True)
class Sizes:
    reference_rows: int | None
    candidate_rows: int
    reference_sample: int | None
    candidate_sample: int
    matched_rows: int | None


@dataclass(frozen=True)
class GateReport:
    score: float
    collapsed: bool
    shift: bool
    dimensions: dict[str, DimensionResult]
    diversity: DimensionResult
    sizes: Sizes
    alpha: float
    seed: int
    seconds: float
    version: str
    reasons: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    reference_free: bool = False
    lineage: dict[str, object] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.collapsed

    def to_dict(self) -> dict:
        return {
            "score": _finite(self.score),
            "collapsed": self.collapsed,
            "shift": self.shift,
            "reference_free": self.reference_free,
            "reasons": list(self.reasons),
            "notes": list(self.notes),
            "dimensions": {name: result.to_dict() for name, result in self.dimensions.items()},
            "diversity": self.diversity.to_dict(),
            "sizes": dict(self.sizes.__dict__),
            "alpha": self.alpha,
            "seed": self.seed,
            "seconds": self.seconds,
            "version": self.version,
            "lineage": dict(self.lineage),
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: dict) -> GateReport:
        return cls(
            score=data["score"],
            collapsed=data["collapsed"],
            shift=data["shift"],
            dimensions={k: DimensionResult.from_dict(v) for k, v in data["dimensions"].items()},
            diversity=DimensionResult.from_dict(data["diversity"]),
            sizes=Sizes(**data["sizes"]),
            alpha=data["alpha"],
            seed=data["seed"],
            seconds=data["seconds"],
            version=data["version"],
            reasons=tuple(data["reasons"]),
            notes=tuple(data["notes"]),
            reference_free=data["reference_free"],
            lineage=dict(data.get("lineage", {})),
        )

    @classmethod
    def from_json(cls, text: str) -> GateReport:
        return cls.from_dict(json.loads(text))

    def render(self, max_reasons: int = 8) -> str:
        """Plain text: the verdict first, then one line per dimension, then the reasons."""
        if self.collapsed:
            verdict = "COLLAPSE RISK: do not train on this candidate as it is"
        elif self.shift:
            verdict = "PASS with shift: no collapse signal, but the distribution moved"
        else:
            verdict = "PASS: no sign of collapse"
        if self.reference_free:
            verdict += " (reference-free checks only)"
        s = self.sizes
        reference = (
            "no reference" if s.reference_rows is None else f"reference {s.reference_rows:,} rows"
        )
        lines = [
            f"collapse-gate  score {self.score:5.1f}/100  {verdict}",
            f"{reference}, candidate {s.candidate_rows:,} rows; alpha {self.alpha} family-wise; "
            f"seed {self.seed}; {self.seconds:.1f} s",
            "",
        ]
        width = max(len(n) for n in [*self.dimensions, "diversity"])
        for result in [*self.dimensions.values(), self.diversity]:
            if result.status is Status.NOT_RUN:
                lines.append(f"  {result.name:<{width}}  not run   {result.reason}")
                continue
            mark = "FAIL" if result.status is Status.FAIL else "pass"
            drivers = f"  ({', '.join(result.drivers[:4])})" if result.drivers else ""
            lines.append(f"  {result.name:<{width}}  {mark}  {result.score:5.1f}{drivers}")
        if self.reasons:
            lines += ["", "Why:"]
            lines += [f"  - {reason}" for reason in self.reasons[:max_reasons]]
            if len(self.reasons) > max_reasons:
                lines.append(f"  ... and {len(self.reasons) - max_reasons} more (see --json)")
        if self.notes:
            lines += ["", "Notes:"] + [f"  - {note}" for note in self.notes]
        return "\n".join(lines) + "\n"


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
