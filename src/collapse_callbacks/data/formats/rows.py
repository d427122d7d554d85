"""Python values (rows of a JSON array or a spreadsheet) to Arrow batches of stable types.

Text formats carry no schema, so each column's type is taken from the values seen so
far. Integers are read as float64 from the start, as the CSV and JSON Lines readers do:
a column of whole numbers that later holds ``1.5`` is one numeric column, not a type
error half-way through a file.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

from collapse_callbacks.errors import DataError, MixedTypeError


def value_kind(value) -> str:
    """The JSON-ish kind of a Python value: boolean, number, string, list, object, ..."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _arrow_kind(dtype: pa.DataType | None) -> str | None:
    if dtype is None or pa.types.is_null(dtype):
        return None
    if pa.types.is_boolean(dtype):
        return "boolean"
    if pa.types.is_integer(dtype) or pa.types.is_floating(dtype):
        return "number"
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return "string"
    if pa.types.is_list(dtype) or pa.types.is_large_list(dtype):
        return "list"
    return str(dtype)


def first_mismatch(
    values: Sequence, start_row: int, expected: str | None = None
) -> tuple[int, str, str] | None:
    """(row, expected kind, found kind) of the first value whose kind differs.

    The expected kind is the given one, or else that of the first non-null value.
    """
    for i, value in enumerate(values):
        if value is None:
            continue
        kind = value_kind(value)
        if expected is None:
            expected = kind
        elif kind != expected:
            return start_row + i, expected, kind
    return None


def check_unique_names(names: Sequence[str], path: str) -> None:
    """A header that names a column twice would leave one of them unreachable by name."""
    seen: set[str] = set()
    twice = [name for name in names if name in seen or seen.add(name)]
    if twice:
        raise DataError(
            f"the header names {', '.join(map(repr, dict.fromkeys(twice)))} more than once; "
            "rename the columns",
            path=path,
            column=twice[0],
        )


def promote(dtype: pa.DataType) -> pa.DataType:
    """The type a text-format column is kept as: integers widen to float64."""
    if pa.types.is_integer(dtype):
        return pa.float64()
    return dtype


class RowBatcher:
    """Turns column-wise Python lists into RecordBatches whose types do not drift."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.types: dict[str, pa.DataType] = {}

    def to_batch(self, columns: dict[str, list], start_row: int) -> pa.RecordBatch:
        arrays = []
        for name, values in columns.items():
            arrays.append(self._array(name, values, start_row))
        return pa.RecordBatch.from_arrays(arrays, names=list(columns))

    def _array(self, name: str, values: list, start_row: int) -> pa.Array:
        known = self.types.get(name)
        try:
            array = pa.array(values, type=known if known and not pa.types.is_null(known) else None)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
            array = None
        if array is None or (known is not None and not _compatible(known, array.type)):
            raise self._mixed(name, values, start_row, known)
        array = array.cast(promote(array.type)) if pa.types.is_integer(array.type) else array
        if known is None or pa.types.is_null(known):
            self.types[name] = array.type
        return array

    def _mixed(self, name, values, start_row, known) -> MixedTypeError:
        found = first_mismatch(values, start_row, _arrow_kind(known))
        if found is not None:
            row, expected, kind = found
            return MixedTypeError(
                f"holds {expected} values and also a {kind} value",
                path=self.path,
                column=name,
                rows=(row, row + 1),
            )
        return MixedTypeError(
            f"values do not fit the column's type {known}"
            if known is not None
            else "values do not fit one column type (a number too large for 64 bits?)",
            path=self.path,
            column=name,
            rows=(start_row, start_row + len(values)),
        )


def _compatible(known: pa.DataType, found: pa.DataType) -> bool:
    if pa.types.is_null(known) or pa.types.is_null(found):
        return True
    return promote(known) == promote(found) or (
        pa.types.is_floating(known) and pa.types.is_integer(found)
    )
