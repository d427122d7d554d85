"""Delimited text (CSV, TSV), JSON Lines and JSON arrays of records, streamed.

Types are inferred from the first block of the file and then fixed, with integers read
as float64 and empty first-block columns read as strings, so that a later ``1.5`` in a
column of whole numbers is not a conversion error. Errors name the column and the
0-based data row; finding the row re-reads the file, which only happens on the error
path.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json

from collapse_callbacks.data.formats.rows import RowBatcher, first_mismatch
from collapse_callbacks.data.location import FileRef
from collapse_callbacks.errors import (
    CorruptFileError,
    DataError,
    EmptyDataError,
    InvalidEncodingError,
    MixedTypeError,
    RaggedRowsError,
)

BLOCK_BYTES = 4 << 20

_CSV_CONVERSION = re.compile(
    r"In CSV column #(\d+): .*CSV conversion error to (\w+): invalid value '(.*)'", re.S
)
_CSV_RAGGED = re.compile(r"Expected (\d+) columns, got (\d+)")
_JSON_CHANGED = re.compile(r"Column\((/[^)]*)\) changed from (\w+) to (\w+)")


def read_delimited(
    ref: FileRef, *, delimiter: str, encoding: str | None
) -> Iterator[pa.RecordBatch]:
    read_options = pa_csv.ReadOptions(block_size=BLOCK_BYTES, encoding=encoding or "utf8")
    parse_options = pa_csv.ParseOptions(delimiter=delimiter, newlines_in_values=True)
    probe = _open_csv(ref, read_options, parse_options, pa_csv.ConvertOptions())
    schema = probe.schema
    probe.close()
    column_types = {}
    for field in schema:
        if pa.types.is_binary(field.type) or pa.types.is_large_binary(field.type):
            raise _invalid_utf8(ref, delimiter, schema.names.index(field.name), field.name)
        if pa.types.is_integer(field.type):
            column_types[field.name] = pa.float64()
        elif pa.types.is_null(field.type):
            column_types[field.name] = pa.string()
    convert = pa_csv.ConvertOptions(column_types=column_types, strings_can_be_null=True)
    reader = _open_csv(ref, read_options, parse_options, convert)
    rows = 0
    try:
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                break
            except pa.ArrowInvalid as exc:
                raise _csv_error(exc, ref, delimiter, schema.names, rows) from None
            except OSError as exc:
                raise CorruptFileError(
                    f"cannot read: {exc}", path=ref.display, rows=(rows, None)
                ) from None
            rows += batch.num_rows
            yield batch
    finally:
        reader.close()
    if rows == 0:
        raise EmptyDataError("the file has column names but no data rows", path=ref.display)


def _open_csv(ref, read_options, parse_options, convert_options):
    try:
        return pa_csv.open_csv(
            ref.open(),
            read_options=read_options,
            parse_options=parse_options,
            convert_options=convert_options,
        )
    except pa.ArrowInvalid as exc:
        text = str(exc)
        if "Empty CSV file" in text:
            raise EmptyDataError("the file is empty", path=ref.display) from None
        if _CSV_RAGGED.search(text) or _CSV_CONVERSION.search(text):
            raise _csv_error(exc, ref, parse_options.delimiter, None, 0) from None
        raise CorruptFileError(
            f"not readable as delimited text: {text}", path=ref.display
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CorruptFileError(f"cannot read: {exc}", path=ref.display) from None


def _text_rows(ref: FileRef, delimiter: str, encoding: str = "utf8", errors: str = "strict"):
    """The file's rows as lists of strings, header first (used to locate an error)."""
    binary = io.BytesIO(ref.open().read())
    text = io.TextIOWrapper(binary, encoding=encoding, errors=errors, newline="")
    return csv.reader(text, delimiter=delimiter)


def _csv_error(exc: Exception, ref: FileRef, delimiter: str, names, rows_before: int) -> DataError:
    text = str(exc)
    ragged = _CSV_RAGGED.search(text)
    if ragged:
        expected = int(ragged.group(1))
        for index, row in enumerate(_text_rows(ref, delimiter, errors="replace")):
            if index and row and len(row) != expected:
                return RaggedRowsError(
                    f"has {len(row)} fields where the header has {expected}",
                    path=ref.display,
                    rows=(index - 1, index),
                )
        return RaggedRowsError(text, path=ref.display, rows=(rows_before, None))
    conversion = _CSV_CONVERSION.search(text)
    if conversion:
        position, target, value = int(conversion.group(1)), conversion.group(2), conversion.group(3)
        reader = _text_rows(ref, delimiter, errors="replace")
        header = next(reader, [])
        column = (
            names[position] if names else (header[position] if position < len(header) else None)
        )
        kind = "numbers" if target in {"double", "int64", "float"} else f"{target} values"
        for index, row in enumerate(reader):
            if position < len(row) and row[position] == value:
                return MixedTypeError(
                    f"holds {kind} and also {value!r}",
                    path=ref.display,
                    column=column,
                    rows=(index, index + 1),
                )
        return MixedTypeError(f"holds {kind} and also {value!r}", path=ref.display, column=column)
    if "UTF8" in text or "UTF-8" in text:
        return InvalidEncodingError(
            f"is not valid UTF-8; pass encoding= ({text})",
            path=ref.display,
            rows=(rows_before, None),
        )
    return CorruptFileError(
        f"not readable as delimited text: {text}", path=ref.display, rows=(rows_before, None)
    )


def _invalid_utf8(ref: FileRef, delimiter: str, position: int, column: str) -> InvalidEncodingError:
    for index, row in enumerate(
        _text_rows(ref, delimiter, encoding="utf8", errors="surrogateescape")
    ):
        if index and position < len(row):
            try:
                row[position].encode("utf8")
            except UnicodeEncodeError:
                return InvalidEncodingError(
                    "is not valid UTF-8; pass encoding= (e.g. 'latin-1') if the file uses another",
                    path=ref.display,
                    column=column,
                    rows=(index - 1, index),
                )
    return InvalidEncodingError("is not valid UTF-8", path=ref.display, column=column)


def read_json_lines(ref: FileRef, *, encoding: str | None) -> Iterator[pa.RecordBatch]:
    read_options = pa_json.ReadOptions(block_size=BLOCK_BYTES)
    probe = _open_json(ref, read_options, pa_json.ParseOptions())
    schema = probe.schema
    probe.close()
    fields = []
    for field in schema:
        if pa.types.is_integer(field.type):
            field = field.with_type(pa.float64())
        elif pa.types.is_null(field.type):
            field = field.with_type(pa.string())
        fields.append(field)
    parse = pa_json.ParseOptions(
        explicit_schema=pa.schema(fields), unexpected_field_behavior="infer"
    )
    reader = _open_json(ref, read_options, parse)
    rows = 0
    try:
        while True:
            try:
                batch = reader.read_next_batch()
                batch.validate(full=True)
            except StopIteration:
                break
            except pa.ArrowInvalid as exc:
                raise _json_lines_error(exc, ref, rows) from None
            except OSError as exc:
                raise CorruptFileError(
                    f"cannot read: {exc}", path=ref.display, rows=(rows, None)
                ) from None
            rows += batch.num_rows
            yield batch
    finally:
        reader.close()


def _open_json(ref, read_options, parse_options):
    if ref.compression is None and _starts_with_bom(ref):
        raise DataError(
            "JSON Lines with a byte-order mark are not supported; remove it", path=ref.display
        )
    try:
        return pa_json.open_json(ref.open(), read_options=read_options, parse_options=parse_options)
    except pa.ArrowInvalid as exc:
        if "Empty JSON" in str(exc):
            raise EmptyDataError("the file is empty", path=ref.display) from None
        raise _json_lines_error(exc, ref, 0) from None
    except OSError as exc:
        raise CorruptFileError(f"cannot read: {exc}", path=ref.display) from None


def _starts_with_bom(ref: FileRef) -> bool:
    with ref.fs.open(ref.path, "rb") as f:
        return f.read(3) == codecs.BOM_UTF8


def _json_lines_error(exc: Exception, ref: FileRef, rows_before: int) -> DataError:
    text = str(exc)
    if "UTF8" in text or "UTF-8" in text:
        return InvalidEncodingError(
            f"is not valid UTF-8 ({text})", path=ref.display, rows=(rows_before, None)
        )
    lines = ref.open().read().decode("utf8", errors="replace").splitlines()
    seen: dict[str, list] = {}
    row = -1
    for line in lines:
        if not line.strip():
            continue
        row += 1
        try:
            record = json.loads(line)
        except json.JSONDecodeError as bad:
            return CorruptFileError(
                f"invalid JSON ({bad.msg})", path=ref.display, rows=(row, row + 1)
            )
        if not isinstance(record, dict):
            return DataError(
                "each line must be a JSON object (a record)", path=ref.display, rows=(row, row + 1)
            )
        for key, value in record.items():
            seen.setdefault(key, []).append(value)
            found = first_mismatch(seen[key], 0)
            if found is not None:
                return MixedTypeError(
                    f"holds {found[1]} values and also a {found[2]} value",
                    path=ref.display,
                    column=key,
                    rows=(row, row + 1),
                )
    changed = _JSON_CHANGED.search(text)
    return (
        MixedTypeError(text, path=ref.display, column=changed.group(1)[1:] if changed else None)
        if (changed or "convert" in text)
        else CorruptFileError(f"invalid JSON Lines: {text}", path=ref.display)
    )


def read_json_array(
    ref: FileRef, *, batch_rows: int, encoding: str | None
) -> Iterator[pa.RecordBatch]:
    """Stream the records of ``[{...}, {...}, ...]`` without loading the whole array."""
    batcher = RowBatcher(ref.display)
    records: list[dict] = []
    row = 0
    for record in _json_records(ref, encoding or "utf8"):
        records.append(record)
        if len(records) == batch_rows:
            yield batcher.to_batch(_columns(records, batcher), row)
            row += len(records)
            records = []
    if records:
        yield batcher.to_batch(_columns(records, batcher), row)
        row += len(records)
    if row == 0:
        raise EmptyDataError("the JSON array holds no records", path=ref.display)


def _columns(records: list[dict], batcher: RowBatcher) -> dict[str, list]:
    names = list(batcher.types)
    known = set(names)
    for record in records:
        for key in record:
            if key not in known:
                known.add(key)
                names.append(key)
    return {name: [r.get(name) for r in records] for name in names}


def _json_records(ref: FileRef, encoding: str) -> Iterator[dict]:
    stream = ref.open()
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    parser = json.JSONDecoder()
    buffer, pos, row, eof = "", 0, 0, False

    def fill() -> bool:
        nonlocal buffer, pos, eof
        if eof:
            return False
        try:
            chunk = stream.read(1 << 20)
            text = decoder.decode(chunk, final=not chunk)
        except UnicodeDecodeError as exc:
            raise InvalidEncodingError(
                f"is not valid {encoding} ({exc.reason}); pass encoding=",
                path=ref.display,
                rows=(row, None),
            ) from None
        except OSError as exc:
            raise CorruptFileError(
                f"cannot read: {exc}", path=ref.display, rows=(row, None)
            ) from None
        eof = not chunk
        buffer = buffer[pos:] + text
        pos = 0
        return True

    def skip_space() -> str:
        nonlocal pos
        while True:
            while pos < len(buffer) and buffer[pos] in " \t\r\n\ufeff":
                pos += 1
            if pos < len(buffer):
                return buffer[pos]
            if not fill():
                return ""

    try:
        if skip_space() != "[":
            raise DataError(
                "a .json file must hold an array of records: [{...}, ...]", path=ref.display
            )
        pos += 1
        if skip_space() == "]":
            return
        while True:
            skip_space()
            while True:
                try:
                    record, end = parser.raw_decode(buffer, pos)
                    break
                except json.JSONDecodeError as exc:
                    if not fill():
                        raise CorruptFileError(
                            f"invalid or truncated JSON ({exc.msg})",
                            path=ref.display,
                            rows=(row, row + 1),
                        ) from None
            if not isinstance(record, dict):
                raise DataError(
                    "array elements must be JSON objects (records)",
                    path=ref.display,
                    rows=(row, row + 1),
                )
            pos = end
            row += 1
            yield record
            separator = skip_space()
            if separator == "]":
                return
            if separator != ",":
                raise CorruptFileError(
                    "invalid or truncated JSON: expected ',' or ']' after a record",
                    path=ref.display,
                    rows=(row, None),
                )
            pos += 1
    finally:
        stream.close()
