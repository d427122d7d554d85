"""Column roles: what kind of statistics a column gets.

Rules, applied to the Arrow type and, for strings, to the first rows of the source
(the *inference sample*, ``infer_rows`` rows):

========================================  ==========================================
Arrow type                                role
========================================  ==========================================
bool                                      ``boolean``
integer, float, decimal, date, time,      ``numeric`` (temporal values count as
timestamp, duration                       numbers: days, seconds, ...)
dictionary-encoded strings                ``categorical``
strings                                   ``text`` when the sampled values average at
                                          least 3 words *and* more than half of them
                                          are distinct; otherwise ``categorical``
list / fixed-size list of integers        ``tokens`` (a token sequence)
list / fixed-size list of floats,         ``vector`` (embeddings, images, any tensor)
fixed-shape tensor, nested numeric lists
========================================  ==========================================

A column whose sampled values are all different is an *identifier* (a key, a UUID, a
row number) when it holds strings of one token each (no whitespace), or integers (also
as float64, as CSV gives them) spanning at most twice as many values as it holds
(:func:`identifier_columns`). The gate leaves identifiers out, and says so: their
values are never shared between two datasets, and rows copied under fresh ids would
hide as distinct rows. A role given for the column keeps it in.

A user override (``roles={"col": "categorical"}``) wins where it fits the type: numbers
may be ``categorical`` or ``boolean``, booleans ``categorical`` or ``numeric``, strings
``categorical`` or ``text``, integer lists ``vector``. Anything else is a
:class:`~collapse_callbacks.errors.DataError` naming the column.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import Enum

import pyarrow as pa
import pyarrow.compute as pc

from collapse_callbacks.errors import AllNullColumnError, DataError

TEXT_MIN_MEAN_WORDS = 3.0
TEXT_MIN_DISTINCT_FRACTION = 0.5
# An identifier needs this many sampled values, all different: 100 draws of a column
# with a few thousand categories repeat one with probability near 1.
IDENTIFIER_MIN_VALUES = 100
# Integer keys are dense: max - min + 1 within this multiple of the sampled count.
IDENTIFIER_MAX_SPAN = 2.0


class ColumnRole(str, Enum):
    NUMERIC = "numeric"
    BOOLEAN = "boolean"
    CATEGORICAL = "categorical"
    TEXT = "text"
    TOKENS = "tokens"
    VECTOR = "vector"

    def __str__(self) -> str:
        return self.value


# The storage kinds a role may be computed from; used for overrides and to check that
# every later batch still fits the role inferred from the first ones.
_KIND_ROLES: dict[str, frozenset[ColumnRole]] = {
    "bool": frozenset({ColumnRole.BOOLEAN, ColumnRole.CATEGORICAL, ColumnRole.NUMERIC}),
    "number": frozenset({ColumnRole.NUMERIC, ColumnRole.CATEGORICAL, ColumnRole.BOOLEAN}),
    "string": frozenset({ColumnRole.CATEGORICAL, ColumnRole.TEXT}),
    "int_list": frozenset({ColumnRole.TOKENS, ColumnRole.VECTOR}),
    "float_list": frozenset({ColumnRole.VECTOR}),
    "null": frozenset(ColumnRole),
}


def storage_kind(dtype: pa.DataType) -> str | None:
    """The coarse kind of an Arrow type, or None when no role can use it."""
    if isinstance(dtype, pa.BaseExtensionType):
        if isinstance(dtype, pa.FixedShapeTensorType):
            return "int_list" if pa.types.is_integer(dtype.value_type) else "float_list"
        dtype = dtype.storage_type
    if pa.types.is_null(dtype):
        return "null"
    if pa.types.is_boolean(dtype):
        return "bool"
    if (
        pa.types.is_integer(dtype)
        or pa.types.is_floating(dtype)
        or pa.types.is_decimal(dtype)
        or pa.types.is_temporal(dtype)
    ):
        return "number"
    if pa.types.is_dictionary(dtype):
        return storage_kind(dtype.value_type)
    if (
        pa.types.is_string(dtype)
        or pa.types.is_large_string(dtype)
        or pa.types.is_string_view(dtype)
    ):
        return "string"
    if _is_list(dtype):
        leaf = dtype.value_type
        while _is_list(leaf):
            leaf = leaf.value_type
        if pa.types.is_integer(leaf) and not _is_list(dtype.value_type):
            return "int_list"
        if pa.types.is_integer(leaf) or pa.types.is_floating(leaf) or pa.types.is_boolean(leaf):
            return "float_list"
    return None


def _is_list(dtype: pa.DataType) -> bool:
    return (
        pa.types.is_list(dtype)
        or pa.types.is_large_list(dtype)
        or pa.types.is_fixed_size_list(dtype)
        or pa.types.is_list_view(dtype)
    )


def role_fits(dtype: pa.DataType, role: ColumnRole) -> bool:
    kind = storage_kind(dtype)
    return kind is not None and role in _KIND_ROLES[kind]


def parse_role(value: ColumnRole | str, column: str) -> ColumnRole:
    try:
        return ColumnRole(value)
    except ValueError:
        names = ", ".join(r.value for r in ColumnRole)
        raise DataError(f"unknown role {value!r}; roles are: {names}", column=column) from None


def infer_roles(
    schema: pa.Schema,
    sample: Iterable[pa.RecordBatch],
    overrides: Mapping[str, ColumnRole | str] | None = None,
    *,
    path: str | None = None,
) -> dict[str, ColumnRole]:
    """Give every column of ``schema`` a role from its type and the sample's values."""
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(schema.names))
    if unknown:
        raise DataError(
            f"roles given for columns the source does not have: {', '.join(unknown)}; "
            f"its columns are: {', '.join(schema.names)}",
            path=path,
        )
    sample = list(sample)
    roles: dict[str, ColumnRole] = {}
    for field in schema:
        kind = storage_kind(field.type)
        if kind is None:
            raise DataError(
                f"type {field.type} has no role; exclude the column or convert it",
                path=path,
                column=field.name,
            )
        if field.name in overrides:
            role = parse_role(overrides[field.name], field.name)
            if role not in _KIND_ROLES[kind]:
                raise DataError(
                    f"cannot treat a {field.type} column as {role.value}",
                    path=path,
                    column=field.name,
                )
            roles[field.name] = role
            continue
        if kind == "null":
            raise AllNullColumnError(
                "every value is null, so it has no type or role; exclude it or give it a role",
                path=path,
                column=field.name,
            )
        roles[field.name] = _infer_one(field, kind, sample)
    return roles


def _infer_one(field: pa.Field, kind: str, sample: list[pa.RecordBatch]) -> ColumnRole:
    if kind == "bool":
        return ColumnRole.BOOLEAN
    if kind == "number":
        return ColumnRole.NUMERIC
    if kind == "int_list":
        return ColumnRole.TOKENS
    if kind == "float_list":
        return ColumnRole.VECTOR
    if pa.types.is_dictionary(field.type):
        return ColumnRole.CATEGORICAL
    values = [b.column(field.name) for b in sample if b.num_rows]
    if not values:
        return ColumnRole.CATEGORICAL
    column = pa.chunked_array(values, type=field.type).drop_null()
    if len(column) == 0:
        return ColumnRole.CATEGORICAL
    words = pc.list_value_length(pc.utf8_split_whitespace(column))
    mean_words = pc.mean(words).as_py() or 0.0
    distinct_fraction = len(pc.unique(column)) / len(column)
    if mean_words >= TEXT_MIN_MEAN_WORDS and distinct_fraction > TEXT_MIN_DISTINCT_FRACTION:
        return ColumnRole.TEXT
    return ColumnRole.CATEGORICAL


def identifier_columns(
    roles: Mapping[str, ColumnRole],
    sample: Iterable[pa.RecordBatch],
    overrides: Mapping[str, ColumnRole | str] | None = None,
) -> tuple[str, ...]:
    """The columns the sample shows to be identifiers (see the module docstring); never
    one the user gave a role."""
    overrides = overrides or {}
    sample = [b for b in sample if b.num_rows]
    found = []
    for name, role in roles.items():
        if name in overrides or role not in (ColumnRole.CATEGORICAL, ColumnRole.NUMERIC):
            continue
        values = pa.chunked_array([b.column(name) for b in sample]).drop_null() if sample else None
        if values is None or len(values) < IDENTIFIER_MIN_VALUES:
            continue
        if pa.types.is_dictionary(values.type):
            values = values.cast(values.type.value_type)
        if role is ColumnRole.CATEGORICAL:
            is_key = storage_kind(values.type) == "string" and _single_tokens(values)
        else:
            is_key = _dense_integers(values)
        if is_key and len(pc.unique(values)) == len(values):
            found.append(name)
    return tuple(found)


def _single_tokens(values: pa.ChunkedArray) -> bool:
    """No value holds whitespace: keys and codes do; names and titles, whose repetition
    is collapse to be seen, do not."""
    return not pc.any(pc.match_substring_regex(values, r"\s")).as_py()


def _dense_integers(values: pa.ChunkedArray) -> bool:
    if pa.types.is_integer(values.type):
        numbers = values.cast(pa.float64(), safe=False)
    elif pa.types.is_floating(values.type):
        numbers = values.cast(pa.float64())
        if not pc.all(pc.equal(numbers, pc.round(numbers))).as_py():
            return False
    else:
        return False  # decimals, dates and times are measurements, not keys
    low, high = pc.min(numbers).as_py(), pc.max(numbers).as_py()
    return high - low + 1 <= IDENTIFIER_MAX_SPAN * len(values)
