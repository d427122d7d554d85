"""Profile: the mergeable summary of a whole dataset, one state per column."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import pyarrow as pa

from collapse_callbacks.data.roles import ColumnRole
from collapse_callbacks.errors import AllNullColumnError, DataError
from collapse_callbacks.profile.columns import STATE_FOR_ROLE, ColumnSummary, TokenState
from collapse_callbacks.profile.rows import CoMoments, DuplicateState, RowSample, row_hash_pair


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


DEFAULT_SAMPLE_ROWS = 20_000
NEAR_DUPLICATE_DIGITS = 3


class Profile:
    """Streaming state of a dataset: ``update`` per batch, ``merge`` across shards or
    ranks, ``result`` at the end. Profiling two halves and merging equals profiling the
    whole (the row sample is then a uniform sample of the whole, not the same rows).

    Besides one state per column it keeps row-level state: exact and near-duplicate
    row hashes (numbers rounded to ``NEAR_DUPLICATE_DIGITS`` significant digits), a
    uniform sample of ``sample_rows`` rows, and the co-moments of the numeric columns.
    ``sample_rows=0`` keeps only the column states (what ``collapse-gate profile`` needs).
    ``truncated`` says that the pass stopped early (a time budget) before the data's end.
    ``ignore_tokens`` are token ids that are not content (a tokenizer's special and
    padding tokens): token columns leave them out of their vocabulary statistics.
    """

    truncated = False  # class defaults: profiles stored before the fields existed
    ignore_tokens: tuple[int, ...] = ()

    def __init__(
        self,
        roles: Mapping[str, ColumnRole],
        *,
        source: str | None = None,
        sample_rows: int = 0,
        seed: int = 0,
        ignore_tokens: frozenset[int] = frozenset(),
    ) -> None:
        self.roles = dict(roles)
        self.source = source
        self.rows = 0
        self.ignore_tokens = sorted(ignore_tokens)
        self.states = {
            name: TokenState(frozenset(ignore_tokens))
            if role is ColumnRole.TOKENS
            else STATE_FOR_ROLE[role]()
            for name, role in self.roles.items()
        }
        self.sample_rows = sample_rows
        self.row_level = sample_rows > 0
        if self.row_level:
            numeric = [n for n, r in self.roles.items() if r is ColumnRole.NUMERIC]
            self.duplicates = DuplicateState()
            self.near_duplicates = DuplicateState()
            self.sample = RowSample(sample_rows, seed)
            self.comoments = CoMoments(numeric)

    def update(self, batch: pa.RecordBatch) -> None:
        for name, state in self.states.items():
            state.update(batch.column(name))
        if self.row_level:
            exact, near = row_hash_pair(batch, self.roles, NEAR_DUPLICATE_DIGITS)
            self.duplicates.update(exact)
            self.near_duplicates.update(near)
            self.sample.update(batch)
            self.comoments.update(batch)
        self.rows += batch.num_rows

    def merge(self, other: Profile) -> Profile:
        if other.roles != self.roles:
            raise DataError("cannot merge profiles of datasets with different columns or roles")
        if other.row_level != self.row_level:
            raise DataError("cannot merge a profile with row-level state and one without")
        if list(other.ignore_tokens) != list(self.ignore_tokens):
            raise DataError("cannot merge profiles that ignore different token ids")
        merged = Profile(
            self.roles,
            source=self.source,
            sample_rows=self.sample_rows,
            ignore_tokens=frozenset(self.ignore_tokens),
        )
        merged.rows = self.rows + other.rows
        merged.truncated = self.truncated or other.truncated
        merged.states = {
            name: state.merge(other.states[name]) for name, state in self.states.items()
        }
        if self.row_level:
            merged.duplicates = self.duplicates.merge(other.duplicates)
            merged.near_duplicates = self.near_duplicates.merge(other.near_duplicates)
            merged.sample = self.sample.merge(other.sample)
            merged.comoments = self.comoments.merge(other.comoments)
        return merged

    def to_bytes(self) -> bytes:
        """The whole state, to send to another process or store (no pickle involved)."""
        from collapse_callbacks.profile.serialize import profile_to_bytes

        return profile_to_bytes(self)

    @classmethod
    def from_bytes(cls, data: bytes) -> Profile:
        from collapse_callbacks.profile.serialize import profile_from_bytes

        return profile_from_bytes(data)

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
    batches: Iterable[pa.RecordBatch],
    roles: Mapping[str, ColumnRole],
    *,
    source: str | None = None,
    sample_rows: int = 0,
    seed: int = 0,
    ignore_tokens: frozenset[int] = frozenset(),
) -> Profile:
    profile = Profile(
        roles, source=source, sample_rows=sample_rows, seed=seed, ignore_tokens=ignore_tokens
    )
    for batch in batches:
        profile.update(batch)
    return profile
