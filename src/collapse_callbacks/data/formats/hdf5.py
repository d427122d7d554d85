"""HDF5 groups as tables.

The datasets directly inside a group (the root unless ``key=`` names another) are the
columns: a 1-D dataset is one column, a 2-D dataset ``[rows, d]`` is one vector column,
a 1-D compound dataset gives one column per field. All must have the same number of
rows. Byte strings are decoded as UTF-8. HDF5 has no missing values: NaN stays NaN.
Rows are read in slices, so a file larger than memory streams.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa

from collapse_callbacks.data.location import FileRef
from collapse_callbacks.errors import (
    CorruptFileError,
    DataError,
    InvalidEncodingError,
    MissingDependencyError,
    NoColumnsError,
)


def read_hdf5(ref: FileRef, *, batch_rows: int, key: str | None) -> Iterator[pa.RecordBatch]:
    try:
        import h5py
    except ImportError as exc:
        raise MissingDependencyError("reading HDF5", "h5py", "hdf5") from exc
    handle = ref.path if ref.is_local else ref.fs.open(ref.path, "rb")
    try:
        try:
            h5 = h5py.File(handle, "r")
        except (OSError, ValueError) as exc:
            raise CorruptFileError(
                f"not a readable HDF5 file (corrupt or truncated?): {exc}", path=ref.display
            ) from None
        with h5:
            yield from _group_batches(h5, ref.display, batch_rows, key, h5py)
    finally:
        if not ref.is_local:
            handle.close()


def _group_batches(h5, display: str, batch_rows: int, key: str | None, h5py):
    group = _group(h5, key, display, h5py)
    columns = _columns(group, display, h5py)
    rows = {name: len(ds) for name, (ds, _) in columns.items()}
    if len(set(rows.values())) > 1:
        sizes = ", ".join(f"{name}: {n}" for name, n in rows.items())
        raise DataError(f"datasets in the group have different lengths ({sizes})", path=display)
    total = next(iter(rows.values()))
    for start in range(0, total, batch_rows):
        stop = min(start + batch_rows, total)
        arrays, names = [], []
        for name, (dataset, field) in columns.items():
            try:
                values = dataset[start:stop] if field is None else dataset.fields(field)[start:stop]
            except (OSError, RuntimeError) as exc:
                raise CorruptFileError(
                    f"cannot read dataset: {exc}", path=display, column=name, rows=(start, stop)
                ) from None
            except (TypeError, ValueError) as exc:
                raise DataError(
                    f"cannot read dataset of type {dataset.dtype}: {exc}",
                    path=display,
                    column=name,
                ) from None
            arrays.append(_to_arrow(values, name, display, start))
            names.append(name)
        yield pa.RecordBatch.from_arrays(arrays, names=names)


def _group(h5, key: str | None, display: str, h5py):
    if key is None:
        return h5
    if key not in h5:
        raise DataError(f"no group {key!r}; top-level names: {', '.join(h5.keys())}", path=display)
    group = h5[key]
    if not isinstance(group, h5py.Group):
        raise DataError(
            f"{key!r} is a dataset, not a group of columns; pass its parent", path=display
        )
    return group


def _columns(group, display: str, h5py) -> dict:
    columns: dict = {}
    for name, item in group.items():
        if not isinstance(item, h5py.Dataset):
            continue
        if item.dtype.names:
            if item.ndim != 1:
                raise DataError("compound datasets must be 1-D", path=display, column=name)
            for field in item.dtype.names:
                column = field if field not in columns else f"{name}.{field}"
                columns[column] = (item, field)
        elif item.ndim in (1, 2):
            columns[name] = (item, None)
        else:
            raise DataError(
                f"{item.ndim}-D datasets are not columns; store [rows] or [rows, d]",
                path=display,
                column=name,
            )
    if not columns:
        subgroups = [n for n, i in group.items() if isinstance(i, h5py.Group)]
        hint = f"; pass key= one of: {', '.join(subgroups)}" if subgroups else ""
        raise NoColumnsError(f"the group holds no datasets{hint}", path=display)
    return columns


def _to_arrow(values: np.ndarray, name: str, display: str, start: int) -> pa.Array:
    if values.dtype.kind in "SOU":
        if values.ndim != 1:
            raise DataError(
                "a 2-D dataset of strings is not a column; store one string per row",
                path=display,
                column=name,
            )
        return _strings(values, name, display, start)
    try:
        if values.ndim == 2:
            # Floats keep their width (float64 stays exact); other numbers become float64.
            dtype = values.dtype if values.dtype.kind == "f" else np.float64
            flat = np.ascontiguousarray(values, dtype=dtype).reshape(-1)
            return pa.FixedSizeListArray.from_arrays(pa.array(flat), values.shape[1])
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, TypeError) as exc:
        raise DataError(
            f"HDF5 type {values.dtype} has no column type: {exc}", path=display, column=name
        ) from None


def _strings(values: np.ndarray, name: str, display: str, start: int) -> pa.Array:
    out = []
    for i, value in enumerate(values.tolist()):
        if isinstance(value, bytes):
            try:
                value = value.decode("utf8")
            except UnicodeDecodeError:
                raise InvalidEncodingError(
                    "is not valid UTF-8", path=display, column=name, rows=(start + i, start + i + 1)
                ) from None
        out.append(value)
    return pa.array(out, type=pa.string())
