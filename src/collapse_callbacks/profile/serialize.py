"""Profiles as bytes: to send between processes (ranks) and to store.

Layout: ``MAGIC``, then three length-prefixed parts: a JSON document describing the
state, an ``.npz`` archive of its numpy arrays (loaded with ``allow_pickle=False``), and
an Arrow IPC stream of the row sample. Nothing is unpickled and only the state classes
listed in ``_TYPES`` can be rebuilt, so bytes from elsewhere cannot run code.
"""

from __future__ import annotations

import io
import json
import struct
from collections import Counter

import numpy as np
import pyarrow as pa

from collapse_callbacks.data.roles import ColumnRole
from collapse_callbacks.errors import DataError
from collapse_callbacks.profile import columns, minhash, moments, rows, sequences, sketch, table

MAGIC = b"CCPROF1\n"

_TYPES = {
    cls.__name__: cls
    for cls in (
        table.Profile,
        columns.NumericState,
        columns.BooleanState,
        columns.CategoricalState,
        columns.TextState,
        columns.TokenState,
        columns.VectorState,
        columns._DistinctValues,
        minhash.DocumentDuplicates,
        moments.Moments,
        sketch.QuantileSketch,
        rows.DuplicateState,
        rows.RowSample,
        rows.CoMoments,
        sequences.SequenceState,
        sequences.VocabularyCounts,
    )
}


class _Encoder:
    def __init__(self) -> None:
        self.arrays: list[np.ndarray] = []
        self.tables: list[pa.Table] = []

    def encode(self, value):
        if isinstance(value, np.ndarray):
            self.arrays.append(value)
            return {"__array__": len(self.arrays) - 1}
        if isinstance(value, pa.Table):
            self.tables.append(value)
            return {"__table__": len(self.tables) - 1}
        if isinstance(value, ColumnRole):
            return {"__role__": value.value}
        if isinstance(value, Counter):
            return {"__counter__": [[k, n] for k, n in value.items()]}
        if isinstance(value, np.random.Generator):
            return {"__rng__": value.bit_generator.state}
        if isinstance(value, np.generic):
            return value.item()
        if type(value).__name__ in _TYPES and isinstance(value, _TYPES[type(value).__name__]):
            return {"__type__": type(value).__name__, "fields": self.encode(vars(value))}
        if isinstance(value, dict):
            return {"__dict__": [[k, self.encode(v)] for k, v in value.items()]}
        if isinstance(value, (list, tuple)):
            return [self.encode(v) for v in value]
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        raise TypeError(f"cannot serialize a {type(value).__name__} in a profile")


def _decode(value, arrays, tables):
    if isinstance(value, list):
        return [_decode(v, arrays, tables) for v in value]
    if not isinstance(value, dict):
        return value
    if "__array__" in value:
        return arrays[f"a{value['__array__']}"]
    if "__table__" in value:
        return tables[value["__table__"]]
    if "__role__" in value:
        return ColumnRole(value["__role__"])
    if "__counter__" in value:
        return Counter(
            {(tuple(k) if isinstance(k, list) else k): n for k, n in value["__counter__"]}
        )
    if "__rng__" in value:
        generator = np.random.default_rng()
        generator.bit_generator.state = value["__rng__"]
        return generator
    if "__dict__" in value:
        return {k: _decode(v, arrays, tables) for k, v in value["__dict__"]}
    if "__type__" in value:
        cls = _TYPES.get(value["__type__"])
        if cls is None:
            raise DataError(f"not a profile: unknown state type {value['__type__']!r}")
        obj = cls.__new__(cls)
        vars(obj).update(_decode(value["fields"], arrays, tables))
        return obj
    raise DataError("not a profile: unrecognized entry")


def profile_to_bytes(profile: table.Profile) -> bytes:
    encoder = _Encoder()
    document = json.dumps(encoder.encode(profile)).encode()
    arrays = io.BytesIO()
    np.savez(arrays, **{f"a{i}": a for i, a in enumerate(encoder.arrays)})
    sample = io.BytesIO()
    for part in encoder.tables:
        with pa.ipc.new_stream(sample, part.schema) as writer:
            writer.write_table(part)
    parts = [document, arrays.getvalue(), sample.getvalue()]
    return MAGIC + b"".join(struct.pack("<Q", len(p)) + p for p in parts)


def profile_from_bytes(data: bytes) -> table.Profile:
    if not data.startswith(MAGIC):
        raise DataError("not a collapse-callbacks profile (bad header)")
    parts, offset = [], len(MAGIC)
    try:
        for _ in range(3):
            (size,) = struct.unpack_from("<Q", data, offset)
            offset += 8
            parts.append(data[offset : offset + size])
            offset += size
        arrays = np.load(io.BytesIO(parts[1]), allow_pickle=False)
        tables, reader = [], pa.BufferReader(parts[2])
        while reader.tell() < len(parts[2]):
            tables.append(pa.ipc.open_stream(reader).read_all())
        profile = _decode(json.loads(parts[0]), arrays, tables)
    except (struct.error, ValueError, OSError, pa.ArrowException, KeyError) as exc:
        raise DataError(f"not a readable profile (truncated or corrupt): {exc}") from None
    if not isinstance(profile, table.Profile):
        raise DataError("not a profile")
    return profile
