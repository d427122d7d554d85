"""Parquet (file, directory, hive-partitioned dataset), Arrow IPC (file, stream), Feather."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa

from collapse_callbacks.data.location import FileRef
from collapse_callbacks.errors import CorruptFileError

_ARROW_FAILURES = (pa.ArrowInvalid, pa.ArrowIOError, pa.ArrowNotImplementedError, OSError, EOFError)


def _corrupt(
    kind: str, display: str, exc: Exception, rows_before: int | None = None
) -> CorruptFileError:
    rows = (rows_before, None) if rows_before else None
    return CorruptFileError(
        f"not a readable {kind} file (corrupt or truncated?): {exc}", path=display, rows=rows
    )


def _guarded(
    batches: Iterator[pa.RecordBatch], kind: str, display: str
) -> Iterator[pa.RecordBatch]:
    """Re-raise a failure half-way through a file with the rows already read."""
    rows = 0
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except _ARROW_FAILURES as exc:
            raise _corrupt(kind, display, exc, rows) from None
        rows += batch.num_rows
        yield batch


def read_parquet_file(ref: FileRef, *, batch_rows: int) -> Iterator[pa.RecordBatch]:
    import pyarrow.parquet as pq

    handle = ref.fs.open(ref.path, "rb")
    try:
        try:
            # pre_buffer would cache every row group read until the file closes: RSS
            # then grows with the file (apache/arrow#39808).
            parquet = pq.ParquetFile(handle, pre_buffer=False)
        except _ARROW_FAILURES as exc:
            raise _corrupt("Parquet", ref.display, exc) from None
        yield from _guarded(
            iter(parquet.iter_batches(batch_size=batch_rows)), "Parquet", ref.display
        )
    finally:
        handle.close()


def read_parquet_dataset(
    fs, directory: str, display: str, *, batch_rows: int
) -> Iterator[pa.RecordBatch]:
    """A directory of Parquet files; ``key=value`` folders become columns (hive partitioning)."""
    import pyarrow.dataset as ds

    try:
        dataset = ds.dataset(directory, filesystem=fs, format="parquet", partitioning="hive")
        # Bounded read-ahead and no pre-buffering keep memory flat as the dataset grows.
        batches = dataset.to_batches(
            batch_size=batch_rows,
            fragment_scan_options=ds.ParquetFragmentScanOptions(pre_buffer=False),
            batch_readahead=2,
            fragment_readahead=1,
        )
    except _ARROW_FAILURES as exc:
        raise _corrupt("Parquet", display, exc) from None
    yield from _guarded(iter(batches), "Parquet", display)


def read_arrow(ref: FileRef, *, stream: bool) -> Iterator[pa.RecordBatch]:
    kind = "Arrow IPC stream" if stream else "Arrow IPC"
    source = pa.memory_map(ref.path) if ref.is_local else ref.open()
    try:
        try:
            reader = pa.ipc.open_stream(source) if stream else pa.ipc.open_file(source)
        except _ARROW_FAILURES as exc:
            raise _corrupt(kind, ref.display, exc) from None
        if stream:
            yield from _guarded(iter(reader), kind, ref.display)
        else:
            yield from _guarded(
                (reader.get_batch(i) for i in range(reader.num_record_batches)), kind, ref.display
            )
    finally:
        source.close()


def read_feather(ref: FileRef) -> Iterator[pa.RecordBatch]:
    """Feather v2 is the Arrow IPC file format; v1 (pre-2020) is read whole."""
    with ref.fs.open(ref.path, "rb") as f:
        magic = f.read(6)
    if magic.startswith(b"ARROW1"):
        yield from read_arrow(ref, stream=False)
        return
    import pyarrow.feather as feather

    try:
        with ref.fs.open(ref.path, "rb") as f:
            table = feather.read_table(f)
    except _ARROW_FAILURES as exc:
        raise _corrupt("Feather", ref.display, exc) from None
    yield from table.to_batches()
