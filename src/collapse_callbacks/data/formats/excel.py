"""Excel workbooks (.xlsx): the first sheet or a named one; the first row is the header."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator

import pyarrow as pa

from collapse_callbacks.data.formats.rows import RowBatcher, check_unique_names
from collapse_callbacks.data.location import FileRef
from collapse_callbacks.errors import (
    CorruptFileError,
    DataError,
    EmptyDataError,
    MissingDependencyError,
    RaggedRowsError,
)


def read_excel(ref: FileRef, *, batch_rows: int, sheet: str | None) -> Iterator[pa.RecordBatch]:
    try:
        import openpyxl
        from openpyxl.utils.exceptions import InvalidFileException
    except ImportError as exc:
        raise MissingDependencyError("reading Excel workbooks", "openpyxl", "excel") from exc
    handle = ref.fs.open(ref.path, "rb")
    try:
        try:
            workbook = openpyxl.load_workbook(handle, read_only=True, data_only=True)
        except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as exc:
            raise CorruptFileError(
                f"not a readable .xlsx workbook: {exc}", path=ref.display
            ) from None
        try:
            if sheet is None:
                worksheet = workbook.worksheets[0]
            elif sheet in workbook.sheetnames:
                worksheet = workbook[sheet]
            else:
                raise DataError(
                    f"no sheet {sheet!r}; sheets: {', '.join(workbook.sheetnames)}",
                    path=ref.display,
                )
            yield from _sheet_batches(worksheet, ref.display, batch_rows)
        finally:
            workbook.close()
    finally:
        handle.close()


def _sheet_batches(worksheet, display: str, batch_rows: int) -> Iterator[pa.RecordBatch]:
    rows = worksheet.iter_rows(values_only=True)
    header = next(rows, None)
    while header is not None and all(v is None for v in header):
        header = next(rows, None)
    if header is None:
        raise EmptyDataError("the sheet is empty", path=display)
    width = len(header)
    while width and header[width - 1] is None:
        width -= 1
    names = [str(v) if v is not None else f"column_{i}" for i, v in enumerate(header[:width])]
    check_unique_names(names, display)
    batcher = RowBatcher(display)
    columns: list[list] = [[] for _ in names]
    start = row = 0
    for values in rows:
        if len(values) > width and any(v is not None for v in values[width:]):
            raise RaggedRowsError(
                f"has values beyond the {width} header columns", path=display, rows=(row, row + 1)
            )
        if all(v is None for v in values[:width]):
            continue  # blank spreadsheet rows are layout, not data
        for i in range(width):
            columns[i].append(values[i] if i < len(values) else None)
        row += 1
        if row - start == batch_rows:
            yield batcher.to_batch(dict(zip(names, columns)), start)
            columns = [[] for _ in names]
            start = row
    if row > start:
        yield batcher.to_batch(dict(zip(names, columns)), start)
    if row == 0:
        raise EmptyDataError("the sheet has a header but no data rows", path=display)
