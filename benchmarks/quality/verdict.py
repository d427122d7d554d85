"""What every detector returns, in-process or from a peer's JSON line."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Verdict:
    """One detector's answer for one case.

    ``collapsed``: the detector flags the candidate (for a plain two-sample test this is
    "the candidate differs from the reference"; only a collapse-aware detector can tell
    collapse from shift). ``shift``: ``None`` where the detector has no such notion.
    ``score``: 0-100, 100 = indistinguishable, ``None`` where the detector has none.
    ``seconds``: the detector's own compute time for the case. ``signals``: which parts
    (columns, dimensions, properties) fired. ``extras``: numbers worth keeping (p-value,
    AUC, distance) that the tables do not use.
    """

    collapsed: bool
    shift: bool | None
    score: float | None
    seconds: float
    signals: dict[str, bool] = field(default_factory=dict)
    extras: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Verdict:
        return cls(
            collapsed=bool(data["collapsed"]),
            shift=None if data.get("shift") is None else bool(data["shift"]),
            score=None if data.get("score") is None else float(data["score"]),
            seconds=float(data["seconds"]),
            signals={str(k): bool(v) for k, v in (data.get("signals") or {}).items()},
            extras={str(k): float(v) for k, v in (data.get("extras") or {}).items()},
        )
