"""s3:// through s3fs against a real S3 endpoint (moto's server) on 127.0.0.1."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from collapse_callbacks import MissingDependencyError, SourceNotFoundError, open_source


@pytest.fixture(scope="module")
def s3():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    options = {
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"endpoint_url": f"http://{host}:{port}"},
    }
    import s3fs

    fs = s3fs.S3FileSystem(**options)
    fs.mkdir("penguins")
    yield fs, options
    server.stop()


def _read(stream) -> pa.Table:
    return pa.Table.from_batches(list(stream))


def test_parquet_shards_on_s3_read_back_identically(s3, penguins):
    fs, options = s3
    table = pa.Table.from_pandas(penguins, preserve_index=False)
    for i, start in enumerate(range(0, 344, 120)):
        with fs.open(f"penguins/shards/part-{i}.parquet", "wb") as f:
            pq.write_table(table.slice(start, 120), f)
    stream = open_source("s3://penguins/shards/*.parquet", storage_options=options)
    assert _read(stream).equals(table)
    assert stream.roles["species"].value == "categorical"
    directory = open_source("s3://penguins/shards", storage_options=options)
    assert _read(directory).num_rows == 344


def test_compressed_csv_on_s3(s3, penguins):
    fs, options = s3
    with fs.open("penguins/penguins.csv.gz", "wb") as f:
        f.write(__import__("gzip").compress(penguins.to_csv(index=False).encode()))
    got = _read(open_source("s3://penguins/penguins.csv.gz", storage_options=options))
    assert got.num_rows == 344
    assert got.column("body_mass_g").to_pylist()[:3] == [3750.0, 3800.0, 3250.0]


def test_missing_s3_key_is_not_found(s3):
    _, options = s3
    with pytest.raises(SourceNotFoundError, match=r"s3://penguins/nothing\.parquet"):
        _ = open_source("s3://penguins/nothing.parquet", storage_options=options).roles


def test_a_protocol_whose_package_is_missing_names_the_extra():
    pytest.importorskip("fsspec")
    try:
        import gcsfs  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("gcsfs is installed here")
    with pytest.raises(MissingDependencyError, match=r"collapse-callbacks\[cloud\]"):
        _ = open_source("gs://bucket/data.parquet").roles
