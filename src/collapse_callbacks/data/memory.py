"""In-memory sources: Arrow tables, pandas/polars frames, numpy arrays, torch tensors,
Hugging Face datasets. Each becomes a function that yields RecordBatches on demand, so
that a frame is converted a slice at a time rather than copied whole.

Arrays follow the DataLoader rules of :mod:`collapse_callbacks.data.tensors`: one array
is the field ``x`` (a 2-D float array ``[n, d]`` becomes columns ``x_0`` ... ``x_{d-1}``),
a dict of arrays gives one field per key, a numpy structured array one column per field.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa

from collapse_callbacks.errors import (
    DataError,
    MixedTypeError,
    NoColumnsError,
    UnsupportedBatchError,
)

Opener = Callable[[], Iterator[pa.RecordBatch]]


def _module(obj: Any) -> str:
    return type(obj).__module__.split(".", 1)[0]


def in_memory_opener(source: Any, *, batch_rows: int) -> tuple[Opener, str, bool] | None:
    """(opener, display name, one-shot?) for an in-memory source, or None if it is not one."""
    if isinstance(source, pa.Table):
        return (lambda: iter(source.to_batches(max_chunksize=batch_rows)), "arrow table", False)
    if isinstance(source, pa.RecordBatch):
        return (lambda: iter([source]), "arrow record batch", False)
    if isinstance(source, pa.RecordBatchReader):
        return (lambda: iter(source), "arrow record batch reader", True)
    if (
        isinstance(source, (list, tuple))
        and source
        and all(isinstance(b, pa.RecordBatch) for b in source)
    ):
        return (lambda: iter(source), "list of arrow record batches", False)
    module = _module(source)
    kind = type(source).__name__
    if module == "pandas" and kind == "DataFrame":
        return (lambda: _pandas_batches(source, batch_rows), "pandas DataFrame", False)
    if module == "polars" and kind in {"DataFrame", "LazyFrame"}:
        return (lambda: _polars_batches(source, batch_rows), f"polars {kind}", False)
    if module == "datasets":
        return _hf_opener(source, kind, batch_rows)
    if _is_dataloader(source):
        from collapse_callbacks.data.dataloader import iter_dataloader

        return (lambda: iter_dataloader(source), "torch DataLoader", False)
    if isinstance(source, np.ndarray) or (module == "torch" and kind == "Tensor"):
        return (lambda: _array_batches({"x": source}, batch_rows), f"{module} array", False)
    if isinstance(source, dict) and source and all(_is_array_like(v) for v in source.values()):
        return (lambda: _array_batches(source, batch_rows), "dict of arrays", False)
    return None


def _is_dataloader(source: Any) -> bool:
    import sys

    if "torch" not in sys.modules:
        return False
    from torch.utils.data import DataLoader

    return isinstance(source, DataLoader)


def _is_array_like(value: Any) -> bool:
    return isinstance(value, (np.ndarray, list)) or (
        _module(value) == "torch" and type(value).__name__ == "Tensor"
    )


def _pandas_batches(frame, batch_rows: int) -> Iterator[pa.RecordBatch]:
    if frame.shape[1] == 0:
        if len(frame):
            raise NoColumnsError(f"the pandas DataFrame has {len(frame)} rows but no columns")
        return
    for start in range(0, len(frame), batch_rows):
        part = frame.iloc[start : start + batch_rows]
        try:
            table = pa.Table.from_pandas(part, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:
            column = _pandas_bad_column(part, str(exc))
            raise MixedTypeError(
                f"cannot convert to one type: {exc}", column=column, rows=(start, start + len(part))
            ) from None
        yield from table.to_batches()


def _pandas_bad_column(frame, message: str) -> str | None:
    for name in frame.columns:
        if f"column {name}" in message:
            return str(name)
    return None


def _polars_batches(frame, batch_rows: int) -> Iterator[pa.RecordBatch]:
    if type(frame).__name__ == "LazyFrame":
        frame = frame.collect()
    for start in range(0, frame.height, batch_rows):
        yield from frame.slice(start, batch_rows).to_arrow().to_batches()


def _array_batches(fields: dict, batch_rows: int) -> Iterator[pa.RecordBatch]:
    # Slices of in-memory arrays are converted exactly like DataLoader batches (masks too).
    from collapse_callbacks.data.dataloader import batch_to_record_batch

    first = next(iter(fields.values()))
    if isinstance(first, np.ndarray) and first.dtype.names:
        if len(fields) != 1:
            raise UnsupportedBatchError("a structured array must be the only field")
        fields = {name: first[name] for name in first.dtype.names}
    rows = {name: len(value) for name, value in fields.items()}
    if len(set(rows.values())) != 1:
        raise DataError(f"arrays have different numbers of rows: {rows}")
    total = next(iter(rows.values()))
    for start in range(0, total, batch_rows):
        part = {name: value[start : start + batch_rows] for name, value in fields.items()}
        where = f"rows {start}-{min(start + batch_rows, total) - 1}"
        yield batch_to_record_batch(part, where=where)


def _hf_opener(source, kind: str, batch_rows: int):
    if kind == "Dataset":

        def batches() -> Iterator[pa.RecordBatch]:
            # The arrow format honours an indices mapping left by shuffle() or select().
            for table in source.with_format("arrow").iter(batch_size=batch_rows):
                yield from table.to_batches()

        return batches, "Hugging Face Dataset", False
    if kind == "IterableDataset":

        def stream() -> Iterator[pa.RecordBatch]:
            schema = source.features.arrow_schema if source.features is not None else None
            for rows in source.iter(batch_size=batch_rows):
                yield pa.RecordBatch.from_pydict(rows, schema=schema)

        return stream, "Hugging Face IterableDataset", False
    if kind in {"DatasetDict", "IterableDatasetDict"}:
        raise DataError(
            f"a {kind} holds several splits ({', '.join(source)}); pass one, e.g. ds['train']"
        )
    return None
