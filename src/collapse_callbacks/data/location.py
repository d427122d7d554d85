"""Where data lives: paths, fsspec URLs and globs resolved to files of a known format.

The format comes from the file name (``.csv``, ``.parquet``, ``.h5`` ..., optionally
with ``.gz``/``.zst`` after it) and, when the name says nothing, from the first bytes of
the content. A directory holding Parquet files is one (possibly hive-partitioned)
dataset; any other directory, like a glob, is a list of shards of one format.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from collapse_callbacks.errors import (
    CorruptFileError,
    DataError,
    EmptyDataError,
    MissingDependencyError,
    SourceNotFoundError,
    UnknownFormatError,
)

FORMATS = (
    "csv",
    "tsv",
    "json",
    "jsonl",
    "parquet",
    "arrow",
    "arrow_stream",
    "feather",
    "hdf5",
    "excel",
)

_EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".arrow": "arrow",
    ".ipc": "arrow",
    ".arrows": "arrow_stream",
    ".feather": "feather",
    ".h5": "hdf5",
    ".hdf5": "hdf5",
    ".hdf": "hdf5",
    ".xlsx": "excel",
    ".xlsm": "excel",
}
_COMPRESSIONS = {".gz": "gzip", ".gzip": "gzip", ".zst": "zstd", ".zstd": "zstd"}
_COMPRESSIBLE = {"csv", "tsv", "json", "jsonl"}
_GLOB_CHARS = set("*?[")

_MAGIC_GZIP = b"\x1f\x8b"
_MAGIC_ZSTD = b"\x28\xb5\x2f\xfd"
_MAGIC_PARQUET = b"PAR1"
_MAGIC_ARROW_FILE = b"ARROW1"
_MAGIC_ARROW_STREAM = b"\xff\xff\xff\xff"
_MAGIC_HDF5 = b"\x89HDF\r\n\x1a\n"
_MAGIC_ZIP = b"PK\x03\x04"


@dataclass(frozen=True)
class FileRef:
    """One file: the filesystem that holds it, its path there, its format."""

    fs: Any
    path: str
    format: str
    compression: str | None
    display: str

    @property
    def is_local(self) -> bool:
        return "local" in type(self.fs).__name__.lower()

    def open(self):
        """The file's bytes, decompressed, as a pyarrow readable file."""
        import pyarrow as pa

        raw = self.fs.open(self.path, "rb")
        stream = pa.PythonFile(raw, mode="r")
        if self.compression is not None:
            return pa.CompressedInputStream(stream, self.compression)
        return stream


@dataclass(frozen=True)
class Resolved:
    """What a path or URL names: one or more files, or a Parquet dataset directory."""

    files: tuple[FileRef, ...]
    display: str
    parquet_dir: str | None = None
    fs: Any = None


def filesystem_for(url: str, storage_options: dict | None = None) -> tuple[Any, str]:
    try:
        import fsspec
    except ImportError as exc:  # pragma: no cover - fsspec is a core dependency
        raise MissingDependencyError("reading files", "fsspec", "cloud") from exc
    try:
        return fsspec.core.url_to_fs(url, **(storage_options or {}))
    except ImportError as exc:
        protocol = url.split("://", 1)[0]
        package = {"s3": "s3fs", "gs": "gcsfs", "gcs": "gcsfs"}.get(protocol, protocol)
        raise MissingDependencyError(f"reading {protocol}:// URLs", package, "cloud") from exc
    except ValueError as exc:
        raise UnknownFormatError(f"cannot open this URL: {exc}", path=url) from None


def resolve(
    source: str | os.PathLike,
    *,
    format: str | None = None,
    storage_options: dict | None = None,
) -> Resolved:
    display = os.fspath(source)
    if format is not None and format not in FORMATS:
        raise UnknownFormatError(
            f"unknown format {format!r}; formats are: {', '.join(FORMATS)}", path=display
        )
    fs, path = filesystem_for(display, storage_options)
    # A name that holds glob characters but exists as spelled ("run[1].csv") is that file.
    if _GLOB_CHARS & set(path) and not fs.exists(path):
        paths = sorted(p for p in fs.glob(path) if not fs.isdir(p))
        if not paths:
            raise SourceNotFoundError("the pattern matches no file", path=display)
        return Resolved(
            tuple(_file(fs, p, format, _shown(display, path, p)) for p in paths), display
        )
    if not fs.exists(path):
        raise SourceNotFoundError("no such file or directory", path=display)
    if fs.isdir(path):
        paths = sorted(
            p
            for p in fs.find(path)
            if not any(part.startswith((".", "_")) for part in p[len(path) :].split("/") if part)
        )
        if not paths:
            raise SourceNotFoundError("the directory holds no data files", path=display)
        files = tuple(_file(fs, p, format, _shown(display, path, p)) for p in paths)
        if all(f.format == "parquet" for f in files):
            return Resolved(files, display, parquet_dir=path, fs=fs)
        return Resolved(files, display)
    return Resolved((_file(fs, path, format, display),), display)


def _shown(display: str, base: str, path: str) -> str:
    """The user's spelling of a file found under ``base`` (a glob or a directory)."""
    if "://" in display:
        protocol = display.split("://", 1)[0]
        return f"{protocol}://{path}"
    return path


def _file(fs, path: str, format: str | None, display: str) -> FileRef:
    name = path.rsplit("/", 1)[-1].lower()
    compression = None
    stem, ext = os.path.splitext(name)
    if ext in _COMPRESSIONS:
        compression = _COMPRESSIONS[ext]
        stem, ext = os.path.splitext(stem)
    detected = _EXTENSIONS.get(ext)
    if ext == ".xls":
        raise UnknownFormatError(
            "legacy .xls workbooks are not supported; save the sheet as .xlsx", path=display
        )
    head = _head(fs, path, display)
    if not head:
        raise EmptyDataError("the file is empty", path=display)
    if compression is None:
        compression = _sniff_compression(head)
    if compression is not None:
        head = _decompressed_head(fs, path, compression, display)
    chosen = format or detected
    if chosen in {"json", "arrow"} or chosen is None:
        chosen = _sniff_format(head, hint=chosen)
    if chosen is None:
        raise UnknownFormatError(
            "cannot tell the format from the name or the content; pass format= "
            f"(one of {', '.join(FORMATS)})",
            path=display,
        )
    if compression is not None and chosen not in _COMPRESSIBLE:
        raise UnknownFormatError(
            f"{chosen} files cannot be read through {compression} compression; decompress it",
            path=display,
        )
    return FileRef(fs, path, chosen, compression, display)


def _head(fs, path: str, display: str, size: int = 4096) -> bytes:
    try:
        with fs.open(path, "rb") as f:
            return f.read(size)
    except OSError as exc:
        raise DataError(f"cannot read the file: {exc}", path=display) from None


def _decompressed_head(fs, path: str, compression: str, display: str) -> bytes:
    import pyarrow as pa

    try:
        with fs.open(path, "rb") as raw:
            return pa.CompressedInputStream(pa.PythonFile(raw, mode="r"), compression).read(4096)
    except (OSError, pa.ArrowException) as exc:
        raise CorruptFileError(f"cannot decompress ({compression}): {exc}", path=display) from None


def _sniff_compression(head: bytes) -> str | None:
    if head.startswith(_MAGIC_GZIP):
        return "gzip"
    if head.startswith(_MAGIC_ZSTD):
        return "zstd"
    return None


def _sniff_format(head: bytes, hint: str | None) -> str | None:
    if head.startswith(_MAGIC_PARQUET):
        return "parquet"
    if head.startswith(_MAGIC_ARROW_FILE):
        return "arrow"
    if head.startswith(_MAGIC_ARROW_STREAM):
        return "arrow_stream"
    if head.startswith(_MAGIC_HDF5):
        return "hdf5"
    if head.startswith(_MAGIC_ZIP):
        return "excel"
    if hint == "arrow":
        return "arrow"  # let the reader report the damage rather than guessing
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"["):
        return "json"
    if text.startswith(b"{"):
        return "jsonl"
    if hint == "json":
        return "json"
    if not text or b"\x00" in text:
        return None
    first_line = text.split(b"\n", 1)[0]
    if b"\t" in first_line and first_line.count(b"\t") >= first_line.count(b","):
        return "tsv"
    if b"," in first_line:
        return "csv"
    return None
