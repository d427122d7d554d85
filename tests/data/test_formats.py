"""One real table, every format: palmerpenguins written out and read back identically.

The table has 344 rows, three string columns (``sex`` missing in 11 rows) and five
numeric ones (two rows missing every measurement). Each source must give back the same
values and the same roles: species/island/sex categorical, the rest numeric. Text
formats read integers as float64 by design, so numbers are compared as floats, and a
null and a NaN are the same "missing".
"""

from __future__ import annotations

import gzip
import math
import shutil
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import fsspec
import h5py
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

from collapse_callbacks.data.roles import ColumnRole
from collapse_callbacks.data.source import open_source

CATEGORICAL = ("species", "island", "sex")
NUMERIC = ("bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "year")
COLUMNS = ["species", "island", *NUMERIC[:4], "sex", "year"]
ROLES = {
    name: ColumnRole.CATEGORICAL if name in CATEGORICAL else ColumnRole.NUMERIC for name in COLUMNS
}


# -- comparing a stream with the original table ---------------------------------------


def read(stream) -> pa.Table:
    """Every batch of a stream, as one table."""
    return pa.Table.from_batches(list(stream), schema=stream.schema)


def _missing_or_float(values: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Numbers as float64 with null and NaN both NaN."""
    return pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False)


def _expected_floats(values: pd.Series) -> np.ndarray:
    return values.to_numpy(dtype="float64", na_value=np.nan)


def _expected_strings(values: pd.Series) -> list:
    return [None if pd.isna(v) else v for v in values]


def assert_same_table(got: pa.Table, expected: pd.DataFrame) -> None:
    """Column by column, in order: same names, same rows, numbers within float tolerance."""
    assert got.column_names == list(expected.columns)
    assert got.num_rows == len(expected)
    for name in expected.columns:
        dtype = got.schema.field(name).type
        if pd.api.types.is_numeric_dtype(expected[name]):
            assert pa.types.is_integer(dtype) or pa.types.is_floating(dtype), (name, dtype)
            have = _missing_or_float(got.column(name))
            want = _expected_floats(expected[name])
            assert np.array_equal(np.isnan(have), np.isnan(want)), f"missing values of {name}"
            np.testing.assert_allclose(
                have[~np.isnan(have)], want[~np.isnan(want)], rtol=1e-12, err_msg=name
            )
        else:
            assert pa.types.is_string(dtype) or pa.types.is_large_string(dtype), (name, dtype)
            assert got.column(name).to_pylist() == _expected_strings(expected[name]), name


def _row_key(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (int, float)):
        return round(float(value), 9)
    return value


def assert_same_rows(got: pa.Table, expected: pd.DataFrame) -> None:
    """The same multiset of rows, whatever their order (missing = null = NaN)."""
    assert sorted(got.column_names) == sorted(expected.columns)
    got_rows = Counter(
        tuple(_row_key(v) for v in row)
        for row in zip(*(got.column(name).to_pylist() for name in expected.columns))
    )
    want_rows = Counter(
        tuple(_row_key(v) for v in row)
        for row in expected.astype(object).itertuples(index=False, name=None)
    )
    assert got_rows == want_rows


# -- the formats ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def table(penguins) -> pa.Table:
    return pa.Table.from_pandas(penguins, preserve_index=False)


@pytest.fixture
def memory_root():
    """A fresh folder on fsspec's in-memory filesystem, removed afterwards."""
    fs = fsspec.filesystem("memory")
    root = f"/formats-{uuid.uuid4().hex}"
    fs.mkdir(root)
    yield fs, root
    fs.rm(root, recursive=True)


def _bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _csv(df, tmp, sep=",", name="penguins.csv") -> Path:
    return _bytes(tmp / name, df.to_csv(index=False, sep=sep).encode())


def _jsonl(df) -> bytes:
    return df.to_json(orient="records", lines=True).encode()


def _json_array(df) -> bytes:
    return df.to_json(orient="records").encode()


def _parquet(table, path: Path) -> Path:
    pq.write_table(table, path)
    return path


def _feather(table, path: Path) -> Path:
    feather.write_feather(table, path)
    return path


def _excel(df, path: Path) -> Path:
    df.to_excel(path, index=False)
    return path


def _arrow_file(table, path: Path, *, stream: bool) -> Path:
    writer = pa.ipc.new_stream if stream else pa.ipc.new_file
    with pa.OSFile(str(path), "wb") as sink, writer(sink, table.schema) as out:
        out.write_table(table, max_chunksize=100)
    return path


def _zstd(path: Path, data: bytes) -> Path:
    with pa.CompressedOutputStream(str(path), "zstd") as out:
        out.write(data)
    return path


def _parquet_shards(table, directory: Path) -> Path:
    directory.mkdir()
    for i, start in enumerate(range(0, table.num_rows, 120)):
        pq.write_table(table.slice(start, 120), directory / f"part-{i}.parquet")
    return directory


def _csv_shards(df, directory: Path) -> str:
    directory.mkdir()
    for i, start in enumerate(range(0, len(df), 120)):
        df.iloc[start : start + 120].to_csv(directory / f"shard-{i}.csv", index=False)
    (directory / "notes.txt").write_text("not a shard\n")
    return str(directory / "shard-*.csv")


def _no_extension(path: Path) -> Path:
    """The same file renamed ``penguins-csv`` etc.: the format must come from the bytes."""
    bare = path.with_name(path.name.split(".")[0] + "-" + path.suffix.lstrip("."))
    shutil.move(path, bare)
    assert bare.suffix == ""
    return bare


BOM = b"\xef\xbb\xbf"

# kind -> (penguins DataFrame, same as Arrow table, tmp_path) -> what open_source gets
FILES: dict[str, Callable[[pd.DataFrame, pa.Table, Path], Path | str]] = {
    "csv": lambda df, t, tmp: _csv(df, tmp),
    "tsv": lambda df, t, tmp: _csv(df, tmp, sep="\t", name="penguins.tsv"),
    "json-array": lambda df, t, tmp: _bytes(tmp / "p.json", _json_array(df)),
    "json-lines": lambda df, t, tmp: _bytes(tmp / "p.jsonl", _jsonl(df)),
    "parquet": lambda df, t, tmp: _parquet(t, tmp / "p.parquet"),
    "parquet-directory": lambda df, t, tmp: _parquet_shards(t, tmp / "shards"),
    "arrow-ipc-file": lambda df, t, tmp: _arrow_file(t, tmp / "p.arrow", stream=False),
    "arrow-ipc-stream": lambda df, t, tmp: _arrow_file(t, tmp / "p.arrows", stream=True),
    "arrow-stream-named-arrow": lambda df, t, tmp: _arrow_file(t, tmp / "p.arrow", stream=True),
    "feather": lambda df, t, tmp: _feather(t, tmp / "p.feather"),
    "excel": lambda df, t, tmp: _excel(df, tmp / "p.xlsx"),
    "csv-gzip": lambda df, t, tmp: _bytes(
        tmp / "p.csv.gz", gzip.compress(_csv(df, tmp).read_bytes())
    ),
    "jsonl-gzip": lambda df, t, tmp: _bytes(tmp / "p.jsonl.gz", gzip.compress(_jsonl(df))),
    "csv-zstd": lambda df, t, tmp: _zstd(tmp / "p.csv.zst", _csv(df, tmp).read_bytes()),
    "jsonl-zstd": lambda df, t, tmp: _zstd(tmp / "p.jsonl.zst", _jsonl(df)),
    "csv-with-byte-order-mark": lambda df, t, tmp: _bytes(
        tmp / "p.csv", BOM + _csv(df, tmp).read_bytes()
    ),
    "jsonl-with-byte-order-mark": lambda df, t, tmp: _bytes(tmp / "p.jsonl", BOM + _jsonl(df)),
    "csv-no-extension": lambda df, t, tmp: _no_extension(_csv(df, tmp)),
    "tsv-no-extension": lambda df, t, tmp: _no_extension(_csv(df, tmp, "\t", "p.tsv")),
    "parquet-no-extension": lambda df, t, tmp: _no_extension(_parquet(t, tmp / "p.parquet")),
    "jsonl-no-extension": lambda df, t, tmp: _no_extension(_bytes(tmp / "p.jsonl", _jsonl(df))),
    "json-array-no-extension": lambda df, t, tmp: _no_extension(
        _bytes(tmp / "p.json", _json_array(df))
    ),
    "arrow-file-no-extension": lambda df, t, tmp: _no_extension(
        _arrow_file(t, tmp / "p.arrow", stream=False)
    ),
    "gzip-csv-no-extension": lambda df, t, tmp: _no_extension(FILES["csv-gzip"](df, t, tmp)),
    "local-glob": lambda df, t, tmp: _csv_shards(df, tmp / "shards"),
    "file-url": lambda df, t, tmp: _csv(df, tmp).as_uri(),
}


@pytest.mark.parametrize("kind", list(FILES))
def test_every_file_format_reads_back_identically(kind, penguins, table, tmp_path):
    source = FILES[kind](penguins, table, tmp_path)
    stream = open_source(source)
    assert stream.roles == ROLES
    assert_same_table(read(stream), penguins)


def test_a_name_with_glob_characters_that_exists_is_that_file(penguins, tmp_path):
    path = _csv(penguins, tmp_path, name="penguins[2007].csv")
    penguins.iloc[:10].to_csv(tmp_path / "penguins2.csv", index=False)  # what the glob matches
    assert_same_table(read(open_source(path)), penguins)


def test_text_formats_read_whole_numbers_as_float(penguins, tmp_path):
    stream = open_source(_csv(penguins, tmp_path))
    assert stream.schema.field("year").type == pa.float64()
    assert stream.schema.field("species").type == pa.string()


def test_a_format_can_be_forced_for_an_unhelpful_name(penguins, tmp_path):
    path = tmp_path / "penguins.txt"
    penguins.to_csv(path, index=False, sep="\t")
    stream = open_source(path, format="tsv")
    assert stream.roles == ROLES
    assert_same_table(read(stream), penguins)


def test_hive_partitioned_parquet_brings_the_partition_column(penguins, table, tmp_path):
    pq.write_to_dataset(table, tmp_path / "hive", partition_cols=["year"])
    assert sorted(p.name for p in (tmp_path / "hive").iterdir()) == [
        "year=2007",
        "year=2008",
        "year=2009",
    ]
    stream = open_source(tmp_path / "hive")
    assert stream.roles == ROLES
    got = read(stream)
    assert got.num_rows == 344
    assert pa.types.is_integer(got.schema.field("year").type)
    assert_same_rows(got, penguins)


def test_hive_partition_with_a_single_file_still_brings_its_column(penguins, table, tmp_path):
    folder = tmp_path / "hive" / "year=2008"
    folder.mkdir(parents=True)
    in_2008 = penguins[penguins["year"] == 2008].reset_index(drop=True)
    pq.write_table(
        table.filter(pc.equal(table["year"], 2008)).drop_columns("year"), folder / "a.parquet"
    )
    got = read(open_source(tmp_path / "hive"))
    assert got.column("year").to_pylist() == [2008] * len(in_2008)
    assert_same_rows(got, in_2008)


def test_excel_first_sheet_and_a_named_sheet(penguins, tmp_path):
    gentoo = penguins[penguins["species"] == "Gentoo"].iloc[::-1].reset_index(drop=True)
    path = tmp_path / "penguins.xlsx"
    with pd.ExcelWriter(path) as writer:
        penguins.to_excel(writer, sheet_name="all", index=False)
        gentoo.to_excel(writer, sheet_name="gentoo", index=False)
    assert_same_table(read(open_source(path)), penguins)
    named = open_source(path, sheet="gentoo")
    assert named.roles == ROLES
    got = read(named)
    assert got.num_rows == 124
    assert_same_table(got, gentoo)


def test_memory_url_and_memory_glob(penguins, table, memory_root):
    fs, root = memory_root
    with fs.open(f"{root}/penguins.csv", "wb") as f:
        f.write(penguins.to_csv(index=False).encode())
    for i, start in enumerate(range(0, 344, 100)):
        with fs.open(f"{root}/shards/part-{i}.parquet", "wb") as f:
            pq.write_table(table.slice(start, 100), f)
    one = open_source(f"memory://{root}/penguins.csv")
    assert one.roles == ROLES
    assert_same_table(read(one), penguins)
    shards = open_source(f"memory://{root}/shards/*.parquet")
    assert shards.roles == ROLES
    assert_same_table(read(shards), penguins)
    directory = open_source(f"memory://{root}/shards")
    assert_same_table(read(directory), penguins)


# -- HDF5 -----------------------------------------------------------------------------


def test_hdf5_group_of_1d_datasets_by_key(penguins, tmp_path):
    path = tmp_path / "penguins.h5"
    with h5py.File(path, "w") as h5:
        h5.create_dataset("readme", data=np.arange(3))  # a root dataset, not in the group
        group = h5.create_group("study", track_order=True).create_group(
            "penguins", track_order=True
        )
        for name in COLUMNS:
            if name in CATEGORICAL:
                # HDF5 strings cannot be missing: a missing sex is stored as "".
                values = penguins[name].fillna("").tolist()
                group.create_dataset(name, data=values, dtype=h5py.string_dtype())
            else:
                group.create_dataset(name, data=penguins[name].to_numpy())
    stream = open_source(path, key="study/penguins")
    assert stream.roles == ROLES
    got = read(stream)
    assert got.schema.field("year").type == pa.int64()
    assert got.column("bill_length_mm").null_count == 0  # NaN stays NaN in HDF5
    assert_same_table(got, penguins.assign(sex=penguins["sex"].fillna("")))


def test_hdf5_2d_dataset_is_a_vector_column(penguins, tmp_path):
    measurements = penguins[list(NUMERIC[:4])].to_numpy()  # [344, 4] with NaN rows
    path = tmp_path / "vectors.h5"
    with h5py.File(path, "w") as h5:
        h5.create_dataset("measurements", data=measurements)
        h5.create_dataset("species", data=penguins["species"].tolist(), dtype=h5py.string_dtype())
    stream = open_source(path, batch_rows=100)
    assert stream.roles == {"measurements": ColumnRole.VECTOR, "species": ColumnRole.CATEGORICAL}
    batches = list(stream)
    assert [b.num_rows for b in batches] == [100, 100, 100, 44]
    got = pa.Table.from_batches(batches)
    vectors = got.column("measurements").combine_chunks()
    assert vectors.type.list_size == 4
    flat = vectors.flatten().to_numpy(zero_copy_only=False).reshape(344, 4)
    np.testing.assert_array_equal(flat, measurements)  # NaN == NaN here; float64 kept exactly
    assert got.column("species").to_pylist() == penguins["species"].tolist()


def test_hdf5_compound_dataset_gives_a_column_per_field(penguins, tmp_path):
    records = np.zeros(
        len(penguins), dtype=[("species", "S9"), ("body_mass_g", "f8"), ("year", "i2")]
    )
    records["species"] = penguins["species"].str.encode("ascii").to_numpy()
    records["body_mass_g"] = penguins["body_mass_g"].to_numpy()
    records["year"] = penguins["year"].to_numpy()
    path = tmp_path / "compound.h5"
    with h5py.File(path, "w") as h5:
        h5.create_dataset("birds", data=records)
    stream = open_source(path)
    assert stream.roles == {
        "species": ColumnRole.CATEGORICAL,
        "body_mass_g": ColumnRole.NUMERIC,
        "year": ColumnRole.NUMERIC,
    }
    assert_same_table(read(stream), penguins[["species", "body_mass_g", "year"]])


# -- in-memory sources ----------------------------------------------------------------


def test_arrow_table_pandas_and_polars(penguins, table):
    import polars as pl

    for source in (table, penguins, pl.from_pandas(penguins)):
        stream = open_source(source)
        assert stream.roles == ROLES, type(source)
        assert_same_table(read(stream), penguins)


def test_hugging_face_dataset_and_iterable_dataset(penguins):
    import datasets

    dataset = datasets.Dataset.from_pandas(penguins, preserve_index=False)
    for source in (dataset, dataset.to_iterable_dataset()):
        stream = open_source(source, batch_rows=64)
        assert stream.roles == ROLES, type(source)
        batches = list(stream)
        assert max(b.num_rows for b in batches) == 64
        assert_same_table(pa.Table.from_batches(batches), penguins)


def test_shuffled_hugging_face_dataset_keeps_its_order(penguins):
    import datasets

    numbered = penguins.assign(row=np.arange(len(penguins)))
    shuffled = datasets.Dataset.from_pandas(numbered, preserve_index=False).shuffle(seed=7)
    order = shuffled["row"]
    assert sorted(order) == list(range(344)) and order != sorted(order)
    got = read(open_source(shuffled, batch_rows=100))
    assert got.column("row").to_pylist() == list(order)
    assert_same_table(got, numbered.iloc[order].reset_index(drop=True))


# -- stream options -------------------------------------------------------------------


def test_batch_rows_bounds_every_batch(penguins, table, tmp_path):
    for source in (_csv(penguins, tmp_path), table, penguins):
        batches = list(open_source(source, batch_rows=50))
        assert [b.num_rows for b in batches] == [50] * 6 + [44]
        assert_same_table(pa.Table.from_batches(batches), penguins)


def test_max_rows_stops_at_exactly_that_many(penguins, tmp_path):
    got = read(open_source(_csv(penguins, tmp_path), max_rows=100, batch_rows=30))
    assert got.num_rows == 100
    assert_same_table(got, penguins.iloc[:100])


def test_columns_and_exclude_select(penguins, table, tmp_path):
    picked = open_source(_csv(penguins, tmp_path), columns=["body_mass_g", "species"])
    assert picked.roles == {"body_mass_g": ColumnRole.NUMERIC, "species": ColumnRole.CATEGORICAL}
    assert_same_table(read(picked), penguins[["body_mass_g", "species"]])
    rest = open_source(table, exclude=["sex", "year"])
    assert list(rest.roles) == ["species", "island", *NUMERIC[:4]]
    assert_same_table(read(rest), penguins.drop(columns=["sex", "year"]))


def test_a_role_override_that_fits_wins(penguins, tmp_path):
    stream = open_source(_csv(penguins, tmp_path), roles={"year": "categorical"})
    assert stream.roles == {**ROLES, "year": ColumnRole.CATEGORICAL}
    assert_same_table(read(stream), penguins)


def test_iterating_twice_gives_the_same_rows(penguins, tmp_path):
    stream = open_source(_csv(penguins, tmp_path), batch_rows=128)
    first, second = read(stream), read(stream)
    assert_same_table(first, penguins)
    assert first.equals(second)


def test_parquet_streams_one_row_group_at_a_time(penguins, table, tmp_path):
    path = tmp_path / "groups.parquet"
    pq.write_table(table, path, row_group_size=50)
    assert pq.ParquetFile(path).num_row_groups == 7
    batches = list(open_source(path))
    assert [b.num_rows for b in batches] == [50] * 6 + [44]
    assert_same_table(pa.Table.from_batches(batches), penguins)
