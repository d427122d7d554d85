"""Profile: the mergeable summary of a whole dataset, one state per column."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import pyarrow as pa

from collapse_callbacks.data.roles import ColumnRole
from collapse_callbacks.errors import AllNullColumnError, DataError
from collapse_callbacks.profile.columns import STATE_FOR_ROLE, ColumnSummary


@dataclass(frozen=True)
class ProfileSummary:
    rows: int
    columns: dict[str, ColumnSummary] = field(default_factory=dict)
    source: str | None = None

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "rows": self.rows,
            "columns": {name: summary.to_dict() for name, summary in self.columns.items()},
        }


class Profile:
    """Streaming state of a dataset: ``update`` per batch, ``merge`` across shards or
    ranks, ``result`` at the end. Profiling two halves and merging equals profiling the
    whole."""

    def __init__(self, roles: Mapping[str, ColumnRole], *, source: str | None = None) -> None:
        self.roles = dict(roles)
        self.source = source
        self.rows = 0
        self.states = {name: STATE_FOR_ROLE[role]() for name, role in self.roles.items()}

    def update(self, batch: pa.RecordBatch) -> None:
        for name, state in self.states.items():
            state.update(batch.column(name))
        self.rows += batch.num_rows

    def merge(self, other: Profile) -> Profile:
        if other.roles != self.roles:
            raise DataError("cannot merge profiles of datasets with different columns or roles")
        merged = Profile(self.roles, source=self.source)
        merged.rows = self.rows + other.rows
        merged.states = {
            name: state.merge(other.states[name]) for name, state in self.states.items()
        }
        return merged

    def result(self) -> ProfileSummary:
        for name, state in self.states.items():
            if not state.has_values:
                raise AllNullColumnError(
                    f"none of its {self.rows} values is present (all null or NaN); "
                    "exclude the column",
                    path=self.source,
                    column=name,
                )
        return ProfileSummary(
            rows=self.rows,
            columns={name: state.result() for name, state in self.states.items()},
            source=self.source,
        )


def build_profile(
    batches: Iterable[pa.RecordBatch], roles: Mapping[str, ColumnRole], *, source=None
) -> Profile:
    profile = Profile(roles, source=source)
    for batch in batches:
        profile.update(batch)
    return profile
