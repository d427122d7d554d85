"""Delimited text (CSV, TSV), JSON Lines and JSON arrays of records, streamed.

Types are inferred from the first block of the file and then fixed, with integers read
as float64 and empty first-block columns read as strings, so that a later ``1.5`` in a
column of whole numbers is not a conversion error. A column whose first value is a
number is a numeric column wherever a word turns up in it, in the first block or a later
one (a :class:`MixedTypeError`). A column that has held only nulls so far is yielded as
Arrow's null type, so that one empty everywhere is an ``AllNullColumnError``, not an
empty categorical column. Errors name the column and the 0-based data row (blank lines
are not rows); finding the row re-reads the file, which only happens on the error path.
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

from collapse_callbacks.data.formats.rows import RowBatcher, check_unique_names, value_kind
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
_CSV_COLUMN = re.compile(r"In CSV column #(\d+)")
_JSON_CHANGED = re.compile(r"Column\((/[^)]*)\) changed from (\w+) to (\w+)")


def read_delimited(
    ref: FileRef, *, delimiter: str | None, default: str, encoding: str | None
) -> Iterator[pa.RecordBatch]:
    encoding = _encoding(encoding, ref)
    if delimiter is None:
        delimiter = sniff_delimiter(_header_line(ref, encoding), default)
    elif len(delimiter) != 1 or delimiter in '\r\n"':
        raise DataError(
            f"the delimiter must be one character other than a quote or a line break, "
            f"got {delimiter!r}",
            path=ref.display,
        )
    read_options = pa_csv.ReadOptions(
        block_size=BLOCK_BYTES, encoding="utf8" if encoding == "utf-8" else encoding
    )
    parse_options = pa_csv.ParseOptions(delimiter=delimiter, newlines_in_values=True)
    probe_convert = pa_csv.ConvertOptions(strings_can_be_null=True)
    probe = _open_csv(ref, read_options, parse_options, probe_convert)
    try:
        schema = probe.schema
        check_unique_names(schema.names, ref.display)
        try:
            first = probe.read_next_batch()
        except StopIteration:
            first = None
        except pa.ArrowInvalid as exc:
            raise _csv_error(exc, ref, delimiter, schema.names, 0, read_options.encoding) from None
        except OSError as exc:
            raise CorruptFileError(f"cannot read: {exc}", path=ref.display) from None
    finally:
        probe.close()
    column_types = {}
    empty = set()
    for field in schema:
        if pa.types.is_binary(field.type) or pa.types.is_large_binary(field.type):
            raise _invalid_utf8(ref, delimiter, schema.names.index(field.name), field.name)
        if pa.types.is_integer(field.type):
            column_types[field.name] = pa.float64()
        elif pa.types.is_null(field.type):
            column_types[field.name] = pa.string()
            empty.add(field.name)
        elif first is not None and _starts_with_number(first.column(field.name)):
            # Numbers first, then a word in the same block: Arrow would call the whole
            # column text. Read it as numbers so the word is reported like a later one.
            column_types[field.name] = pa.float64()
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
                raise _csv_error(
                    exc, ref, delimiter, schema.names, rows, read_options.encoding
                ) from None
            except OSError as exc:
                raise CorruptFileError(
                    f"cannot read: {exc}", path=ref.display, rows=(rows, None)
                ) from None
            rows += batch.num_rows
            yield _nulls_while_empty(batch, empty)
    finally:
        reader.close()
    if rows == 0:
        raise EmptyDataError("the file has column names but no data rows", path=ref.display)


def _starts_with_number(column: pa.Array) -> bool:
    """Whether a string column's first non-null value reads as a number."""
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        return False
    values = column.drop_null()
    if len(values) == 0:
        return False
    try:
        values.slice(0, 1).cast(pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False
    return True


def _nulls_while_empty(batch: pa.RecordBatch, empty: set[str]) -> pa.RecordBatch:
    """Yield still-empty columns as Arrow nulls; ``empty`` loses a column at its first value."""
    for name in list(empty):
        index = batch.schema.get_field_index(name)
        column = batch.column(index)
        if column.null_count < len(column):
            empty.discard(name)
            continue
        batch = batch.set_column(index, pa.field(name, pa.null()), pa.nulls(len(column)))
    return batch


class _RawReader(io.RawIOBase):
    """A pyarrow input stream as a Python raw stream, so the error path reads line by line."""

    def __init__(self, native) -> None:
        self._native = native

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._native.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._native.close()
        super().close()


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
            raise _csv_error(
                exc, ref, parse_options.delimiter, None, 0, read_options.encoding
            ) from None
        raise CorruptFileError(
            f"not readable as delimited text: {text}", path=ref.display
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CorruptFileError(f"cannot read: {exc}", path=ref.display) from None


def _text_rows(
    ref: FileRef, delimiter: str, encoding: str = "utf8", errors: str = "strict"
) -> Iterator[list[str]]:
    """The file's rows as lists of strings, header first (used to locate an error).

    Blank lines are skipped, as Arrow skips them, so index ``i > 0`` is data row ``i - 1``.
    """
    with io.TextIOWrapper(
        io.BufferedReader(_RawReader(ref.open()), 1 << 20),
        encoding=encoding,
        errors=errors,
        newline="",
    ) as text:
        for row in csv.reader(text, delimiter=delimiter):
            if row:
                yield row


def _csv_error(
    exc: Exception,
    ref: FileRef,
    delimiter: str,
    names,
    rows_before: int,
    encoding: str = "utf8",
) -> DataError:
    text = str(exc)
    ragged = _CSV_RAGGED.search(text)
    if ragged:
        expected = int(ragged.group(1))
        for index, row in enumerate(_text_rows(ref, delimiter, encoding, errors="replace")):
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
        reader = _text_rows(ref, delimiter, encoding, errors="replace")
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
        position = _CSV_COLUMN.search(text)
        if position is not None:
            index = int(position.group(1))
            column = names[index] if names and index < len(names) else None
            return _invalid_utf8(ref, delimiter, index, column)
        return InvalidEncodingError(
            f"is not valid UTF-8; pass encoding= ({text})",
            path=ref.display,
            rows=(rows_before, None),
        )
    return CorruptFileError(
        f"not readable as delimited text: {text}", path=ref.display, rows=(rows_before, None)
    )


def _invalid_utf8(
    ref: FileRef, delimiter: str, position: int, column: str | None
) -> InvalidEncodingError:
    rows = _text_rows(ref, delimiter, encoding="utf8", errors="surrogateescape")
    for index, row in enumerate(rows):
        if index == 0 and column is None and position < len(row):
            column = (
                row[position]
                .encode("utf8", errors="surrogateescape")
                .decode("utf8", errors="replace")
            )
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
    encoding = _encoding(encoding, ref)
    read_options = pa_json.ReadOptions(block_size=BLOCK_BYTES)
    probe = _open_json(ref, read_options, pa_json.ParseOptions(), encoding)
    schema = probe.schema
    probe.close()
    fields = []
    empty = set()
    for field in schema:
        if pa.types.is_integer(field.type):
            field = field.with_type(pa.float64())
        elif pa.types.is_null(field.type):
            field = field.with_type(pa.string())
            empty.add(field.name)
        fields.append(field)
    parse = pa_json.ParseOptions(
        explicit_schema=pa.schema(fields), unexpected_field_behavior="infer"
    )
    reader = _open_json(ref, read_options, parse, encoding)
    rows = 0
    try:
        while True:
            try:
                batch = reader.read_next_batch()
                batch.validate(full=True)
            except StopIteration:
                break
            except pa.ArrowInvalid as exc:
                raise _json_lines_error(exc, ref, rows, encoding) from None
            except OSError as exc:
                raise CorruptFileError(
                    f"cannot read: {exc}", path=ref.display, rows=(rows, None)
                ) from None
            rows += batch.num_rows
            yield _nulls_while_empty(batch, empty)
    finally:
        reader.close()


# Field separators tried when the header line holds none of the format's own: Excel
# writes ";" where the decimal mark is a comma, and "|" is common in database exports.
OTHER_DELIMITERS = (";", "|", "\t")


def sniff_delimiter(header: str, default: str) -> str:
    """``default`` if the header line uses it (outside quotes) or uses none of
    ``OTHER_DELIMITERS``; otherwise the one of those it uses most."""
    unquoted = "".join(part for i, part in enumerate(header.split('"')) if i % 2 == 0)
    if default in unquoted:
        return default
    counts = {d: unquoted.count(d) for d in OTHER_DELIMITERS if d != default}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 0 else default


def _header_line(ref: FileRef, encoding: str, limit: int = 1 << 16) -> str:
    """The file's first line (its first ``limit`` bytes at most), decoded."""
    stream = _open_text(ref, encoding)
    try:
        head = stream.read(limit)
    finally:
        stream.close()
    return bytes(head).decode("utf-8", errors="replace").lstrip("\ufeff").split("\n", 1)[0]


def _encoding(encoding: str | None, ref: FileRef) -> str:
    """The codec name of ``encoding`` (UTF-8 when not given); an unknown name is a DataError."""
    try:
        return codecs.lookup(encoding or "utf8").name
    except LookupError:
        raise DataError(f"unknown text encoding {encoding!r}", path=ref.display) from None


def _open_text(ref: FileRef, encoding: str):
    """The file as a UTF-8 pyarrow stream: transcoded from another ``encoding``, or with a
    UTF-8 byte-order mark (which Arrow's JSON parser rejects) skipped."""
    stream = ref.open()
    if encoding != "utf-8":
        return pa.transcoding_input_stream(stream, encoding, "utf8")
    if ref.compression is None and _starts_with_bom(ref):
        stream.read(len(codecs.BOM_UTF8))
    return stream


def _open_json(ref, read_options, parse_options, encoding: str = "utf-8"):
    try:
        return pa_json.open_json(
            _open_text(ref, encoding), read_options=read_options, parse_options=parse_options
        )
    except pa.ArrowInvalid as exc:
        if "Empty JSON" in str(exc):
            raise EmptyDataError("the file is empty", path=ref.display) from None
        raise _json_lines_error(exc, ref, 0, encoding) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CorruptFileError(f"cannot read: {exc}", path=ref.display) from None


def _starts_with_bom(ref: FileRef) -> bool:
    with ref.fs.open(ref.path, "rb") as f:
        return f.read(3) == codecs.BOM_UTF8


def _json_lines_error(
    exc: Exception, ref: FileRef, rows_before: int, encoding: str = "utf-8"
) -> DataError:
    """Re-read the file line by line to name the row (and column) Arrow could not read."""
    text = str(exc)
    kinds: dict[str, str] = {}
    row = -1
    with io.BufferedReader(_RawReader(ref.open()), 1 << 20) as lines:
        for raw in lines:
            if not raw.strip():
                continue
            row += 1
            if row == 0:
                raw = raw.removeprefix(codecs.BOM_UTF8)
            try:
                line = raw.decode(encoding)
            except UnicodeDecodeError as bad:
                return InvalidEncodingError(
                    f"is not valid {encoding} ({bad.reason}); pass encoding=",
                    path=ref.display,
                    rows=(row, row + 1),
                )
            try:
                record = json.loads(line)
            except json.JSONDecodeError as bad:
                return CorruptFileError(
                    f"invalid JSON ({bad.msg})", path=ref.display, rows=(row, row + 1)
                )
            if not isinstance(record, dict):
                return DataError(
                    "each line must be a JSON object (a record)",
                    path=ref.display,
                    rows=(row, row + 1),
                )
            for key, value in record.items():
                if value is None:
                    continue
                kind = value_kind(value)
                expected = kinds.setdefault(key, kind)
                if kind != expected:
                    return MixedTypeError(
                        f"holds {expected} values and also a {kind} value",
                        path=ref.display,
                        column=key,
                        rows=(row, row + 1),
                    )
    if "UTF8" in text or "UTF-8" in text:
        return InvalidEncodingError(
            f"is not valid UTF-8 ({text})", path=ref.display, rows=(rows_before, None)
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
    for record in _json_records(ref, _encoding(encoding, ref)):
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


def _complete_records(parser: json.JSONDecoder, text: str) -> int:
    """How many whole array elements ``text`` (a piece of a JSON array) holds."""
    count, pos = 0, 0
    while True:
        while pos < len(text) and text[pos] in " \t\r\n\ufeff,[":
            pos += 1
        try:
            _, pos = parser.raw_decode(text, pos)
        except json.JSONDecodeError:
            return count
        count += 1


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
            # The records complete before the bad byte say which row holds it.
            good = exc.object[: exc.start].decode(encoding, errors="replace")
            bad = row + _complete_records(parser, buffer[pos:] + good)
            raise InvalidEncodingError(
                f"is not valid {encoding} ({exc.reason}); pass encoding=",
                path=ref.display,
                rows=(bad, bad + 1),
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
