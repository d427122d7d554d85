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
    batches: Iterator[pa.RecordBatch], kind: str, display: str, rows: int = 0
) -> Iterator[pa.RecordBatch]:
    """Re-raise a failure half-way through a file with the rows already read."""
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
        # One row group at a time: a batch never spans row groups (iter_batches over the
        # whole file would fill batch_rows from as many row groups as it takes).
        batches = (
            batch
            for group in range(parquet.num_row_groups)
            for batch in parquet.iter_batches(batch_size=batch_rows, row_groups=[group])
        )
        yield from _guarded(batches, "Parquet", ref.display)
    finally:
        handle.close()


def read_parquet_dataset(
    fs, directory: str, display: str, *, batch_rows: int
) -> Iterator[pa.RecordBatch]:
    """A directory of Parquet files; ``key=value`` folders become columns (hive partitioning).

    Files are read one after another in path order, so an error names the file and the
    rows of the dataset read before it.
    """
    import pyarrow.dataset as ds

    try:
        dataset = ds.dataset(directory, filesystem=fs, format="parquet", partitioning="hive")
        fragments = sorted(dataset.get_fragments(), key=lambda fragment: fragment.path)
    except _ARROW_FAILURES as exc:
        raise _corrupt("Parquet", display, exc) from None
    protocol = display.split("://", 1)[0] + "://" if "://" in display else ""
    rows = 0
    for fragment in fragments:
        shown = protocol + fragment.path
        try:
            # The dataset schema brings the partition columns, filled from the folder names.
            # Bounded read-ahead and no pre-buffering keep memory flat as the dataset grows.
            batches = fragment.to_batches(
                schema=dataset.schema,
                batch_size=batch_rows,
                fragment_scan_options=ds.ParquetFragmentScanOptions(pre_buffer=False),
                batch_readahead=2,
            )
        except _ARROW_FAILURES as exc:
            raise _corrupt("Parquet", shown, exc, rows) from None
        for batch in _guarded(iter(batches), "Parquet", shown, rows):
            rows += batch.num_rows
            yield batch


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
