"""DataStream: one source as a re-iterable stream of bounded Arrow batches with roles."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence

import pyarrow as pa

from collapse_callbacks.data.roles import ColumnRole, identifier_columns, infer_roles, role_fits
from collapse_callbacks.errors import (
    DataError,
    EmptyDataError,
    MixedTypeError,
    NoColumnsError,
)

DEFAULT_BATCH_ROWS = 65_536
DEFAULT_INFER_ROWS = 10_000


class DataStream:
    """Batches of at most ``batch_rows`` rows, at most ``max_rows`` in all.

    Iterating twice reads the source twice (a DataLoader gets a fresh iterator each
    time); a one-shot source such as a generator or a ``RecordBatchReader`` can be
    iterated once. Column types stay fixed across batches: a later batch whose column
    no longer fits the column's role is a :class:`MixedTypeError` naming its rows.
    """

    def __init__(
        self,
        open_batches: Callable[[], Iterator[pa.RecordBatch]],
        *,
        display: str,
        batch_rows: int = DEFAULT_BATCH_ROWS,
        max_rows: int | None = None,
        columns: Sequence[str] | None = None,
        exclude: Sequence[str] | None = None,
        roles: Mapping[str, ColumnRole | str] | None = None,
        infer_rows: int = DEFAULT_INFER_ROWS,
        one_shot: bool = False,
    ) -> None:
        if batch_rows < 1:
            raise ValueError(f"batch_rows must be >= 1, got {batch_rows}")
        if max_rows is not None and max_rows < 1:
            raise ValueError(f"max_rows must be >= 1, got {max_rows}")
        self.display = display
        self.batch_rows = batch_rows
        self.max_rows = max_rows
        self._open = open_batches
        self._columns = list(columns) if columns is not None else None
        self._exclude = set(exclude or ())
        self._role_overrides = dict(roles or {})
        self._infer_rows = infer_rows
        self._one_shot = one_shot
        self._opened = 0
        self._pending: tuple[list[pa.RecordBatch], Iterator[pa.RecordBatch]] | None = None
        self._schema: pa.Schema | None = None
        self._roles: dict[str, ColumnRole] | None = None
        self._identifiers: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"DataStream({self.display!r})"

    @property
    def schema(self) -> pa.Schema:
        self._peek()
        assert self._schema is not None
        return self._schema

    @property
    def roles(self) -> dict[str, ColumnRole]:
        self._peek()
        assert self._roles is not None
        return dict(self._roles)

    @property
    def identifiers(self) -> tuple[str, ...]:
        """Columns whose inference sample holds a different value in every row: keys,
        UUIDs, row numbers (``roles.identifier_columns``)."""
        self._peek()
        return self._identifiers

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        self._peek()
        if self._pending is not None:
            head, rest = self._pending
            self._pending = None
        else:
            head, rest = [], self._selected(self._reopen())
        return self._bounded(head, rest)

    # -- internals ---------------------------------------------------------------

    def _reopen(self) -> Iterator[pa.RecordBatch]:
        if self._one_shot and self._opened:
            raise DataError(
                "this source can be read only once (a generator or a reader)", path=self.display
            )
        self._opened += 1
        return iter(self._open())

    def _peek(self) -> None:
        """Read the first ``infer_rows`` rows to fix the schema and the roles."""
        if self._roles is not None:
            return
        batches = self._selected(self._reopen())
        head: list[pa.RecordBatch] = []
        rows = 0
        for batch in batches:
            head.append(batch)
            rows += batch.num_rows
            if rows >= self._infer_rows:
                break
        if not head:
            raise EmptyDataError("the source holds no rows", path=self.display)
        if rows == 0:
            raise EmptyDataError("the source has columns but no rows", path=self.display)
        schema = _unified_schema(head)
        repeated = sorted({n for n in schema.names if schema.names.count(n) > 1})
        if repeated:
            raise DataError(
                f"column names appear more than once: {', '.join(repeated)}; rename them",
                path=self.display,
            )
        self._roles = infer_roles(schema, head, self._role_overrides, path=self.display)
        self._identifiers = identifier_columns(self._roles, head, self._role_overrides)
        self._schema = schema
        self._pending = (head, batches)

    def _selected(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            names = batch.schema.names
            if self._columns is not None:
                missing = [c for c in self._columns if c not in names]
                if missing:
                    raise DataError(
                        f"no column {', '.join(map(repr, missing))}; columns are: {', '.join(names)}",
                        path=self.display,
                    )
                batch = batch.select(self._columns)
            if self._exclude:
                batch = batch.select([n for n in batch.schema.names if n not in self._exclude])
            if batch.num_columns == 0:
                raise NoColumnsError("no columns to read", path=self.display)
            yield batch

    def _bounded(self, head: list[pa.RecordBatch], rest) -> Iterator[pa.RecordBatch]:
        assert self._schema is not None and self._roles is not None
        rows = 0

        def source() -> Iterator[pa.RecordBatch]:
            yield from head
            yield from rest

        try:
            for batch in source():
                batch = self._conform(batch, rows)
                start = 0
                while start < batch.num_rows:
                    take = min(self.batch_rows, batch.num_rows - start)
                    if self.max_rows is not None:
                        take = min(take, self.max_rows - rows)
                    yield batch.slice(start, take)
                    start += take
                    rows += take
                    if self.max_rows is not None and rows >= self.max_rows:
                        return
        finally:
            rest.close()  # closes the file even when the caller stops early

    def _conform(self, batch: pa.RecordBatch, first_row: int) -> pa.RecordBatch:
        """Cast a batch to the stream's schema; every column must still fit its role."""
        schema = self._schema
        assert schema is not None and self._roles is not None
        if batch.schema.names != schema.names:
            extra = [n for n in batch.schema.names if n not in schema.names]
            missing = [n for n in schema.names if n not in batch.schema.names]
            raise DataError(
                "the columns change part-way through"
                + (f"; new: {', '.join(extra)}" if extra else "")
                + (f"; missing: {', '.join(missing)}" if missing else ""),
                path=self.display,
                rows=(first_row, first_row + batch.num_rows),
            )
        if batch.schema.equals(schema):
            return batch
        arrays = []
        for field, array in zip(schema, batch.columns):
            if array.type.equals(field.type):
                arrays.append(array)
                continue
            role = self._roles[field.name]
            if not role_fits(array.type, role):
                raise MixedTypeError(
                    f"was {role.value} ({field.type}) in earlier rows and is {array.type} here",
                    path=self.display,
                    column=field.name,
                    rows=(first_row, first_row + batch.num_rows),
                )
            try:
                arrays.append(array.cast(field.type))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                arrays.append(array)  # same role, different width: statistics cast per role
        return pa.RecordBatch.from_arrays(arrays, names=schema.names)


def _unified_schema(batches: list[pa.RecordBatch]) -> pa.Schema:
    """The first batch's schema, with null-typed columns taking a later batch's type."""
    schema = batches[0].schema
    for batch in batches[1:]:
        if batch.schema.names != schema.names:
            continue  # reported with rows by _conform
        for i, field in enumerate(schema):
            other = batch.schema.field(i).type
            if (pa.types.is_null(field.type) and not pa.types.is_null(other)) or (
                pa.types.is_integer(field.type) and pa.types.is_floating(other)
            ):
                schema = schema.set(i, field.with_type(other))
    return schema
