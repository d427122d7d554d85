"""Bad input gets a typed DataError that says where: the file, and the column and row
where the reader knows them. Broken copies of the real penguins table stand in for the
broken files users have.

Rows are 0-based data rows (a CSV header is not a row), so ``rows == (r, r + 1)`` names
the single row ``r``.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from collapse_callbacks.data.source import open_source
from collapse_callbacks.errors import (
    AllNullColumnError,
    CorruptFileError,
    DataError,
    EmptyDataError,
    InvalidEncodingError,
    MixedTypeError,
    NoColumnsError,
    RaggedRowsError,
    SourceNotFoundError,
    UnknownFormatError,
)

BLOCK_BYTES = 4 << 20  # the CSV / JSON Lines readers infer types from the first block


def read(source, **options) -> pa.Table:
    stream = open_source(source, **options)
    return pa.Table.from_batches(list(stream), schema=stream.schema)


def _csv_lines(penguins: pd.DataFrame) -> list[str]:
    return penguins.to_csv(index=False).splitlines()


def _set_field(lines: list[str], row: int, column: int, value: str) -> None:
    """Put ``value`` in data row ``row`` (line ``row + 1``) of CSV lines."""
    fields = lines[row + 1].split(",")
    fields[column] = value
    lines[row + 1] = ",".join(fields)


def _write_lines(path: Path, lines: list[str], encoding: str = "utf8") -> Path:
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


@pytest.fixture(scope="module")
def big_csv_lines(penguins) -> list[str]:
    """Penguins repeated to over 4 MiB of CSV: header + 96,320 rows."""
    lines = _csv_lines(penguins)
    return [lines[0], *lines[1:] * 280]


def _late_row(lines: list[str]) -> int:
    """A data row that lies beyond the first 4 MiB block."""
    row = len(lines) - 1 - 100
    assert sum(len(line) + 1 for line in lines[: row + 1]) > BLOCK_BYTES
    return row


def _jsonl(records: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def _records(penguins: pd.DataFrame) -> list[dict]:
    return json.loads(penguins.to_json(orient="records"))


# -- one table of cases: the error type, and where it says the problem is --------------


@dataclass
class Case:
    build: Callable  # (tmp_path, penguins, big_csv_lines) -> (source, options)
    error: type[DataError]
    column: str | None = None
    rows: tuple[int, int | None] | None = None
    names_file: bool = True


def _missing(tmp, penguins, big):
    return tmp / "no-such.csv", {}


def _glob_nothing(tmp, penguins, big):
    penguins.to_csv(tmp / "other.csv", index=False)
    return str(tmp / "shard-*.csv"), {}


def _unknown_blob(tmp, penguins, big):
    path = tmp / "weights.bin"
    path.write_bytes(np.random.default_rng(0).bytes(2048) + b"\x00")
    return path, {}


def _legacy_xls(tmp, penguins, big):
    path = tmp / "penguins.xls"
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504)
    return path, {}


def _random_parquet(tmp, penguins, big):
    path = tmp / "random.parquet"
    path.write_bytes(np.random.default_rng(1).bytes(5000))
    return path, {}


def _truncated_parquet(tmp, penguins, big):
    whole = tmp / "whole.parquet"
    pq.write_table(pa.Table.from_pandas(penguins, preserve_index=False), whole)
    data = whole.read_bytes()
    path = tmp / "truncated.parquet"
    path.write_bytes(data[: len(data) // 2])
    return path, {}


def _truncated_parquet_in_directory(tmp, penguins, big):
    table = pa.Table.from_pandas(penguins, preserve_index=False)
    folder = tmp / "shards"
    folder.mkdir()
    for i, start in enumerate(range(0, 344, 120)):
        pq.write_table(table.slice(start, 120), folder / f"part-{i}.parquet")
    data = (folder / "part-1.parquet").read_bytes()
    (folder / "part-1.parquet").write_bytes(data[: len(data) // 2])
    return folder, {}


def _ipc(penguins, tmp, stream: bool) -> tuple[bytes, list[int]]:
    """An Arrow IPC file or stream of 100-row batches, and its size after each batch."""
    table = pa.Table.from_pandas(penguins, preserve_index=False)
    sink = pa.BufferOutputStream()
    writer = (pa.ipc.new_stream if stream else pa.ipc.new_file)(sink, table.schema)
    ends = []
    for batch in table.to_batches(max_chunksize=100):
        writer.write_batch(batch)
        ends.append(sink.tell())
    writer.close()
    return sink.getvalue().to_pybytes(), ends


def _truncated_arrow_file(tmp, penguins, big):
    data, _ = _ipc(penguins, tmp, stream=False)
    path = tmp / "truncated.arrow"
    path.write_bytes(data[: len(data) // 2])
    return path, {}


def _truncated_arrow_stream(tmp, penguins, big):
    data, ends = _ipc(penguins, tmp, stream=True)
    path = tmp / "truncated.arrows"
    path.write_bytes(data[: (ends[1] + ends[2]) // 2])  # cut inside the third batch
    return path, {}


def _corrupt_hdf5(tmp, penguins, big):
    path = tmp / "corrupt.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + np.random.default_rng(2).bytes(4000))
    return path, {}


def _truncated_hdf5(tmp, penguins, big):
    whole = tmp / "whole.h5"
    with h5py.File(whole, "w") as h5:
        h5.create_dataset("body_mass_g", data=np.tile(penguins["body_mass_g"].to_numpy(), 50))
    data = whole.read_bytes()
    path = tmp / "truncated.h5"
    path.write_bytes(data[: len(data) // 2])
    return path, {}


def _hdf5_2d_strings(tmp, penguins, big):
    path = tmp / "strings.h5"
    pairs = penguins[["species", "island"]].to_numpy().astype("S")
    with h5py.File(path, "w") as h5:
        h5.create_dataset("places", data=pairs)
        h5.create_dataset("year", data=penguins["year"].to_numpy())
    return path, {}


def _truncated_gzip(tmp, penguins, big):
    data = gzip.compress("\n".join(big).encode())
    path = tmp / "truncated.csv.gz"
    path.write_bytes(data[: len(data) // 2])
    return path, {}


def _corrupt_xlsx(tmp, penguins, big):
    path = tmp / "corrupt.xlsx"
    path.write_bytes(b"PK\x03\x04" + np.random.default_rng(3).bytes(3000))
    return path, {}


def _empty(suffix):
    def build(tmp, penguins, big):
        path = tmp / f"empty{suffix}"
        path.write_bytes(b"")
        return path, {}

    return build


def _header_only(tmp, penguins, big):
    return _write_lines(tmp / "header.csv", _csv_lines(penguins)[:1]), {}


def _empty_json_array(tmp, penguins, big):
    path = tmp / "empty.json"
    path.write_text("[]\n")
    return path, {}


def _ragged_short(tmp, penguins, big):
    lines = _csv_lines(penguins)
    lines[201] = lines[201].rsplit(",", 1)[0]  # data row 200 loses its last field
    return _write_lines(tmp / "ragged.csv", lines), {}


def _ragged_long_after_blank_lines(tmp, penguins, big):
    lines = _csv_lines(penguins)
    lines[31] += ",extra"  # data row 30
    lines[11:11] = ["", ""]  # blank lines are not rows
    return _write_lines(tmp / "ragged.csv", lines), {}


def _mixed_csv_first_block(tmp, penguins, big):
    lines = _csv_lines(penguins)
    _set_field(lines, 10, 5, "heavy")  # body_mass_g
    return _write_lines(tmp / "mixed.csv", lines), {}


def _mixed_csv_later_block(tmp, penguins, big):
    lines = list(big)
    _set_field(lines, _late_row(lines), 5, "heavy")
    return _write_lines(tmp / "mixed-late.csv", lines), {}


def _mixed_jsonl(tmp, penguins, big):
    records = _records(penguins)
    records[42]["flipper_length_mm"] = "long"
    path = tmp / "mixed.jsonl"
    path.write_text(_jsonl(records))
    return path, {}


def _mixed_jsonl_later_block(tmp, penguins, big):
    records = _records(penguins) * 80  # 27,520 records, about 4.6 MB
    records = [dict(r) for r in records]
    records[27_000]["flipper_length_mm"] = "long"
    text = _jsonl(records)
    assert text.index('"long"') > BLOCK_BYTES
    path = tmp / "mixed-late.jsonl"
    path.write_text(text)
    return path, {}


def _mixed_json_array(tmp, penguins, big):
    records = _records(penguins)
    records[250]["bill_depth_mm"] = "deep"
    path = tmp / "mixed.json"
    path.write_text(json.dumps(records))
    return path, {"batch_rows": 100}


def _mixed_pandas(tmp, penguins, big):
    frame = penguins.astype({"body_mass_g": object})
    frame.loc[150, "body_mass_g"] = "heavy"
    return frame, {"batch_rows": 100}


def _all_null_csv(tmp, penguins, big):
    lines = _csv_lines(penguins)
    lines = [lines[0] + ",comment"] + [line + "," for line in lines[1:]]
    return _write_lines(tmp / "empty-column.csv", lines), {}


def _all_null_jsonl(tmp, penguins, big):
    records = [{**r, "comment": None} for r in _records(penguins)]
    path = tmp / "empty-column.jsonl"
    path.write_text(_jsonl(records))
    return path, {}


def _all_null_parquet(tmp, penguins, big):
    table = pa.Table.from_pandas(penguins, preserve_index=False)
    table = table.append_column("comment", pa.nulls(344))
    path = tmp / "null-column.parquet"
    pq.write_table(table, path)
    return path, {}


def _all_null_pandas(tmp, penguins, big):
    return penguins.assign(comment=pd.Series([None] * 344, dtype=object)), {}


def _latin1(penguins) -> pd.DataFrame:
    return penguins.assign(island=penguins["island"].where(penguins.index != 5, "Torgersen Ø"))


def _latin1_csv(tmp, penguins, big):
    path = tmp / "latin1.csv"
    path.write_bytes(_latin1(penguins).to_csv(index=False).encode("latin-1"))
    return path, {}


def _latin1_csv_later_block(tmp, penguins, big):
    lines = list(big)
    _set_field(lines, _late_row(lines), 1, "Torgersen Ø")
    return _write_lines(tmp / "latin1-late.csv", lines, encoding="latin-1"), {}


def _latin1_json(tmp, penguins, big):
    path = tmp / "latin1.json"
    text = json.dumps(_records(_latin1(penguins)), ensure_ascii=False)
    path.write_bytes(text.encode("latin-1"))
    return path, {}


def _latin1_jsonl(tmp, penguins, big):
    path = tmp / "latin1.jsonl"
    path.write_bytes(
        _latin1(penguins).to_json(orient="records", lines=True, force_ascii=False).encode("latin-1")
    )
    return path, {}


def _csv_header_twice(tmp, penguins, big):
    lines = _csv_lines(penguins)
    lines[0] = lines[0].replace("bill_depth_mm", "bill_length_mm")
    return _write_lines(tmp / "twice.csv", lines), {}


def _xlsx_header_twice(tmp, penguins, big):
    path = tmp / "twice.xlsx"
    penguins.rename(columns={"bill_depth_mm": "bill_length_mm"}).to_excel(path, index=False)
    return path, {}


def _no_columns_pandas(tmp, penguins, big):
    return pd.DataFrame(index=range(344)), {}


def _exclude_everything(tmp, penguins, big):
    path = tmp / "penguins.csv"
    penguins.to_csv(path, index=False)
    return path, {"exclude": list(penguins.columns)}


def _missing_column(tmp, penguins, big):
    path = tmp / "penguins.csv"
    penguins.to_csv(path, index=False)
    return path, {"columns": ["species", "wingspan_mm"]}


LATE = 96_320 - 100  # _late_row of the big CSV: 280 copies of 344 rows, minus 100

CASES: dict[str, Case] = {
    "missing path": Case(_missing, SourceNotFoundError),
    "glob matching nothing": Case(_glob_nothing, SourceNotFoundError),
    "binary blob, unknown extension": Case(_unknown_blob, UnknownFormatError),
    "legacy .xls": Case(_legacy_xls, UnknownFormatError),
    "random bytes named .parquet": Case(_random_parquet, CorruptFileError),
    "truncated parquet": Case(_truncated_parquet, CorruptFileError),
    "truncated parquet in a directory": Case(
        _truncated_parquet_in_directory, CorruptFileError, rows=(120, None)
    ),
    "truncated arrow ipc file": Case(_truncated_arrow_file, CorruptFileError),
    "truncated arrow ipc stream": Case(_truncated_arrow_stream, CorruptFileError, rows=(200, None)),
    "corrupt hdf5": Case(_corrupt_hdf5, CorruptFileError),
    "truncated hdf5": Case(_truncated_hdf5, CorruptFileError),
    "hdf5 2-d strings": Case(_hdf5_2d_strings, DataError, "places"),
    "truncated gzip csv": Case(_truncated_gzip, CorruptFileError),
    "corrupt xlsx": Case(_corrupt_xlsx, CorruptFileError),
    "empty csv": Case(_empty(".csv"), EmptyDataError),
    "empty parquet": Case(_empty(".parquet"), EmptyDataError),
    "empty file without extension": Case(_empty(""), EmptyDataError),
    "header-only csv": Case(_header_only, EmptyDataError),
    "empty json array": Case(_empty_json_array, EmptyDataError),
    "csv row missing a field": Case(_ragged_short, RaggedRowsError, rows=(200, 201)),
    "csv row with an extra field": Case(
        _ragged_long_after_blank_lines, RaggedRowsError, rows=(30, 31)
    ),
    "csv numbers then a word": Case(
        _mixed_csv_first_block, MixedTypeError, "body_mass_g", (10, 11)
    ),
    "csv numbers then a word after 4 MiB": Case(
        _mixed_csv_later_block, MixedTypeError, "body_mass_g", (LATE, LATE + 1)
    ),
    "jsonl numbers then a word": Case(_mixed_jsonl, MixedTypeError, "flipper_length_mm", (42, 43)),
    "jsonl numbers then a word after 4 MiB": Case(
        _mixed_jsonl_later_block, MixedTypeError, "flipper_length_mm", (27_000, 27_001)
    ),
    "json array numbers then a word": Case(
        _mixed_json_array, MixedTypeError, "bill_depth_mm", (250, 251)
    ),
    # pandas converts a slice of batch_rows at a time; that slice is what is known.
    "pandas object column numbers then a word": Case(
        _mixed_pandas, MixedTypeError, "body_mass_g", (100, 200), names_file=False
    ),
    "csv column empty everywhere": Case(_all_null_csv, AllNullColumnError, "comment"),
    "jsonl column null everywhere": Case(_all_null_jsonl, AllNullColumnError, "comment"),
    "parquet null-typed column": Case(_all_null_parquet, AllNullColumnError, "comment"),
    "pandas all-None object column": Case(
        _all_null_pandas, AllNullColumnError, "comment", names_file=False
    ),
    "latin-1 csv": Case(_latin1_csv, InvalidEncodingError, "island", (5, 6)),
    "latin-1 csv after 4 MiB": Case(
        _latin1_csv_later_block, InvalidEncodingError, "island", (LATE, LATE + 1)
    ),
    "latin-1 json array": Case(_latin1_json, InvalidEncodingError, rows=(5, 6)),
    "latin-1 json lines": Case(_latin1_jsonl, InvalidEncodingError, rows=(5, 6)),
    "csv header naming a column twice": Case(_csv_header_twice, DataError, "bill_length_mm"),
    "xlsx header naming a column twice": Case(_xlsx_header_twice, DataError, "bill_length_mm"),
    "pandas rows without columns": Case(_no_columns_pandas, NoColumnsError, names_file=False),
    "exclude= every column": Case(_exclude_everything, NoColumnsError),
    "columns= a missing column": Case(_missing_column, DataError),
}


def _raise(case: Case, tmp_path, penguins, big) -> tuple[DataError, object]:
    source, options = case.build(tmp_path, penguins, big)
    with pytest.raises(DataError) as info:
        read(source, **options)
    return info.value, source


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_gets_its_error_type_file_column_and_row(name, tmp_path, penguins, big_csv_lines):
    case = CASES[name]
    err, source = _raise(case, tmp_path, penguins, big_csv_lines)
    assert type(err) is case.error, f"{type(err).__name__}: {err}"
    if case.names_file:
        assert str(source) in str(err)
    assert err.column == case.column
    assert err.rows == case.rows


@pytest.mark.parametrize("name", list(CASES))
def test_no_raw_library_exception_escapes(name, tmp_path, penguins, big_csv_lines):
    """Whatever goes wrong, the caller sees one of ours, raised at the boundary."""
    case = CASES[name]
    source, options = case.build(tmp_path, penguins, big_csv_lines)
    try:
        read(source, **options)
    except Exception as exc:  # the point is to see what escapes
        assert isinstance(exc, DataError), f"{type(exc).__module__}.{type(exc).__name__}: {exc}"
        assert type(exc).__module__ == "collapse_callbacks.errors"
        assert not isinstance(exc, (pa.ArrowException, OSError)) or isinstance(
            exc, SourceNotFoundError
        )
        # Raised "from None" or outside any handler: no library traceback chained on.
        assert exc.__cause__ is None
        assert exc.__context__ is None or exc.__suppress_context__
    else:
        pytest.fail(f"{name}: no error")


# -- what the messages and types say beyond the table ---------------------------------


def test_missing_path_is_also_a_file_not_found_error(tmp_path):
    path = tmp_path / "nowhere" / "penguins.parquet"
    with pytest.raises(FileNotFoundError) as info:
        open_source(path).schema  # noqa: B018
    assert isinstance(info.value, SourceNotFoundError)
    assert info.value.path == str(path)
    assert str(info.value) == f"{path}: no such file or directory"


def test_a_bad_file_in_a_parquet_directory_is_named(tmp_path, penguins):
    err, folder = _raise(CASES["truncated parquet in a directory"], tmp_path, penguins, [])
    assert err.path == str(folder / "part-1.parquet")


def test_legacy_xls_says_what_to_do(tmp_path, penguins):
    err, _ = _raise(CASES["legacy .xls"], tmp_path, penguins, [])
    assert ".xlsx" in err.message


def test_missing_column_lists_the_real_columns(tmp_path, penguins):
    err, source = _raise(CASES["columns= a missing column"], tmp_path, penguins, [])
    assert err.path == str(source)
    assert "'wingspan_mm'" in err.message
    assert err.message.endswith("columns are: " + ", ".join(penguins.columns))


def test_mixed_csv_message_names_the_value(tmp_path, penguins):
    err, _ = _raise(CASES["csv numbers then a word"], tmp_path, penguins, [])
    assert str(err).endswith("column 'body_mass_g', row 10: holds numbers and also 'heavy'")


def test_a_text_column_whose_first_value_is_a_word_may_hold_numbers(tmp_path, penguins):
    """Only a column that starts with numbers is numeric: a word first makes it text."""
    frame = penguins.assign(sex=penguins["sex"].where(penguins.index != 40, "42"))
    path = tmp_path / "codes.csv"
    frame.to_csv(path, index=False)
    got = read(path)
    assert got.column("sex").to_pylist()[38:41] == ["female", "male", "42"]


def test_latin1_reads_with_the_right_encoding(tmp_path, penguins, big_csv_lines):
    expected = _latin1(penguins)["island"].tolist()
    for build in (_latin1_csv, _latin1_json, _latin1_jsonl):
        source, _ = build(tmp_path, penguins, big_csv_lines)
        got = read(source, encoding="latin-1")
        assert got.column("island").to_pylist() == expected, source
    late, _ = _latin1_csv_later_block(tmp_path, penguins, big_csv_lines)
    assert read(late, encoding="latin-1").column("island")[LATE].as_py() == "Torgersen Ø"


def test_an_unknown_encoding_is_a_data_error(tmp_path, penguins):
    path = tmp_path / "penguins.csv"
    penguins.to_csv(path, index=False)
    with pytest.raises(DataError, match="unknown text encoding 'klingon'"):
        read(path, encoding="klingon")


def test_nan_and_infinities_are_values_not_errors(tmp_path, penguins):
    lines = _csv_lines(penguins)
    for row, value in ((0, "inf"), (1, "-inf"), (2, "nan")):
        _set_field(lines, row, 5, value)
    csv_path = _write_lines(tmp_path / "extremes.csv", lines)
    table = pa.Table.from_pandas(penguins, preserve_index=False)
    mass = table.column("body_mass_g").to_numpy().copy()
    mass[:3] = [np.inf, -np.inf, np.nan]
    parquet_path = tmp_path / "extremes.parquet"
    pq.write_table(table.set_column(5, "body_mass_g", pa.array(mass)), parquet_path)
    for source in (csv_path, parquet_path, penguins.assign(body_mass_g=mass)):
        got = read(source).column("body_mass_g")
        head = got.slice(0, 3).to_pylist()
        assert head[:2] == [np.inf, -np.inf], source
        assert head[2] is None or np.isnan(head[2]), source  # "nan" is missing, as NaN is
        rest = pc.cast(got.slice(3), pa.float64()).to_numpy(zero_copy_only=False)
        np.testing.assert_array_equal(rest, penguins["body_mass_g"].to_numpy()[3:])


@pytest.mark.parametrize("separator", [";", "|", "\t"])
def test_a_csv_with_another_separator_is_read_from_its_header(tmp_path, penguins, separator):
    # Excel writes ";" where the decimal mark is a comma; database exports often use "|".
    path = tmp_path / "penguins.csv"
    penguins.to_csv(path, index=False, sep=separator)
    got = read(path)
    assert got.column_names == list(penguins.columns)
    assert got.column("island").to_pylist() == penguins["island"].tolist()
    gzipped = tmp_path / "penguins.csv.gz"
    penguins.to_csv(gzipped, index=False, sep=separator, compression="gzip")
    assert read(gzipped).column_names == list(penguins.columns)


def test_a_separator_inside_quotes_does_not_count(tmp_path):
    path = tmp_path / "notes.csv"
    path.write_text('id,"note; with semicolons"\n1,"a;b"\n2,"c;d"\n')
    assert read(path).column_names == ["id", "note; with semicolons"]


def test_an_explicit_delimiter_wins_and_must_be_one_character(tmp_path, penguins):
    path = tmp_path / "penguins.csv"
    penguins.to_csv(path, index=False, sep=";")
    assert read(path, delimiter=",").num_columns == 1
    with pytest.raises(DataError, match="the delimiter must be one character"):
        read(path, delimiter=";;")
