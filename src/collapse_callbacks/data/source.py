"""open_source: the one entry point from anything a user has to a DataStream."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pyarrow as pa

from collapse_callbacks.data.examples import example_path, is_example
from collapse_callbacks.data.location import FileRef, Resolved, resolve
from collapse_callbacks.data.memory import in_memory_opener
from collapse_callbacks.data.roles import ColumnRole
from collapse_callbacks.data.stream import DEFAULT_BATCH_ROWS, DEFAULT_INFER_ROWS, DataStream
from collapse_callbacks.errors import DataError


def open_source(
    source: Any,
    *,
    format: str | None = None,
    columns: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    roles: Mapping[str, ColumnRole | str] | None = None,
    max_rows: int | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    infer_rows: int = DEFAULT_INFER_ROWS,
    sheet: str | None = None,
    key: str | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    storage_options: dict | None = None,
) -> DataStream:
    """Open ``source`` as a stream of Arrow record batches of at most ``batch_rows`` rows.

    ``source`` may be a local path, an fsspec URL (``s3://``, ``gs://``, ``memory://``,
    ``file://``), a glob over shards, a directory, ``example:penguins``, a pyarrow
    Table/RecordBatch/RecordBatchReader, a pandas or polars DataFrame, a numpy array or a
    dict of arrays, a torch tensor, a Hugging Face ``Dataset``/``IterableDataset``, a torch
    ``DataLoader``, or a ``DataStream`` (returned as is).

    Nothing is read until the stream's ``schema``/``roles`` are asked for or it is
    iterated. ``format`` forces a file format (see ``FORMATS``); ``sheet`` picks an Excel
    sheet, ``key`` an HDF5 group, ``encoding`` the text encoding of CSV/JSON, and
    ``delimiter`` the field separator of CSV/TSV (by default ``,`` or tab, unless the
    header line has none of it and one of ``;``, ``|`` or tab instead).
    """
    if isinstance(source, DataStream):
        return source
    options = dict(
        batch_rows=batch_rows,
        max_rows=max_rows,
        columns=columns,
        exclude=exclude,
        roles=roles,
        infer_rows=infer_rows,
    )
    if isinstance(source, (str, os.PathLike)):
        text = os.fspath(source)
        if is_example(text):
            text = example_path(text)
        resolved = resolve(text, format=format, storage_options=storage_options)

        def open_files() -> Iterator[pa.RecordBatch]:
            return _read_resolved(
                resolved,
                batch_rows=batch_rows,
                sheet=sheet,
                key=key,
                encoding=encoding,
                delimiter=delimiter,
            )

        return DataStream(open_files, display=os.fspath(source), **options)
    found = in_memory_opener(source, batch_rows=batch_rows)
    if found is None:
        raise DataError(
            f"cannot read a {type(source).__module__}.{type(source).__qualname__}; pass a path, "
            "URL, table, DataFrame, array, Hugging Face dataset or DataLoader"
        )
    opener, display, one_shot = found
    return DataStream(opener, display=display, one_shot=one_shot, **options)


def _read_resolved(resolved: Resolved, **options) -> Iterator[pa.RecordBatch]:
    if resolved.parquet_dir is not None:
        from collapse_callbacks.data.formats.columnar import read_parquet_dataset

        yield from read_parquet_dataset(
            resolved.fs, resolved.parquet_dir, resolved.display, batch_rows=options["batch_rows"]
        )
        return
    for ref in resolved.files:
        yield from read_file(ref, **options)


def read_file(
    ref: FileRef,
    *,
    batch_rows: int,
    sheet: str | None,
    key: str | None,
    encoding: str | None,
    delimiter: str | None = None,
) -> Iterator[pa.RecordBatch]:
    from collapse_callbacks.data.formats import columnar, text

    if ref.format in ("csv", "tsv"):
        return text.read_delimited(
            ref,
            delimiter=delimiter,
            default="," if ref.format == "csv" else "\t",
            encoding=encoding,
        )
    if ref.format == "jsonl":
        return text.read_json_lines(ref, encoding=encoding)
    if ref.format == "json":
        return text.read_json_array(ref, batch_rows=batch_rows, encoding=encoding)
    if ref.format == "parquet":
        return columnar.read_parquet_file(ref, batch_rows=batch_rows)
    if ref.format in ("arrow", "arrow_stream"):
        return columnar.read_arrow(ref, stream=ref.format == "arrow_stream")
    if ref.format == "feather":
        return columnar.read_feather(ref)
    if ref.format == "hdf5":
        from collapse_callbacks.data.formats.hdf5 import read_hdf5

        return read_hdf5(ref, batch_rows=batch_rows, key=key)
    if ref.format == "excel":
        from collapse_callbacks.data.formats.excel import read_excel

        return read_excel(ref, batch_rows=batch_rows, sheet=sheet)
    raise AssertionError(f"unhandled format {ref.format}")  # resolve() only returns FORMATS
