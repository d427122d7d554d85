"""Typed errors raised where bad input is recognized.

Every error the data layer raises is a :class:`DataError` carrying what is known about
where the problem is (path, column, row range), so the CLI can print one readable line
and a training callback can decide whether to fail closed.
"""

from __future__ import annotations


class CollapseCallbacksError(Exception):
    """Base class of every error this package raises on purpose."""


class MissingDependencyError(CollapseCallbacksError, ImportError):
    """An optional extra is needed for what was asked."""

    def __init__(self, what: str, package: str, extra: str) -> None:
        self.package = package
        self.extra = extra
        super().__init__(
            f"{what} needs the '{package}' package: pip install 'collapse-callbacks[{extra}]'"
        )


class DataError(CollapseCallbacksError, ValueError):
    """Bad input data. ``path``, ``column`` and ``rows`` say where, when known.

    ``rows`` is a half-open ``(start, stop)`` range of 0-based data rows (the header of a
    text file is not a row); ``stop`` may be ``None`` when only the start is known.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        column: str | None = None,
        rows: tuple[int, int | None] | None = None,
    ) -> None:
        self.message = message
        self.path = path
        self.column = column
        self.rows = rows
        super().__init__(self._render())

    def _render(self) -> str:
        where = []
        if self.path is not None:
            where.append(f"{self.path}")
        if self.column is not None:
            where.append(f"column '{self.column}'")
        if self.rows is not None:
            start, stop = self.rows
            if stop is None or stop == start + 1:
                where.append(f"row {start}")
            else:
                where.append(f"rows {start}-{stop - 1}")
        return f"{', '.join(where)}: {self.message}" if where else self.message


class SourceNotFoundError(DataError, FileNotFoundError):
    """The path, URL or glob pattern matches nothing."""


class UnknownFormatError(DataError):
    """The format could be neither taken from the name nor sniffed from the content."""


class CorruptFileError(DataError):
    """The file claims a format but its content is damaged or truncated."""


class EmptyDataError(DataError):
    """The source holds no data rows (an empty file, a header-only CSV, an empty table)."""


class NoColumnsError(DataError):
    """The source has rows but no columns, or every column was excluded."""


class RaggedRowsError(DataError):
    """A delimited text file has rows with a different number of fields than its header."""


class MixedTypeError(DataError):
    """A column holds values of incompatible types (numbers and strings, say)."""


class AllNullColumnError(DataError):
    """A column has no non-null value, so it has no role and no statistics."""


class InvalidEncodingError(DataError):
    """Text that is not valid in the expected encoding (UTF-8 unless told otherwise)."""


class UnsupportedBatchError(DataError, TypeError):
    """A DataLoader or in-memory source yields objects the data layer cannot turn into columns."""


class SchemaMismatchError(DataError):
    """Reference and candidate columns cannot be compared under the chosen policy."""


class CollapseDetected(CollapseCallbacksError, RuntimeError):
    """The gate found that training on the candidate risks collapse. Raised on every
    rank of a training job at once; ``report`` is the :class:`GateReport`."""

    def __init__(self, report) -> None:
        self.report = report
        reasons = "; ".join(report.reasons[:3]) or "see the report"
        super().__init__(f"collapse-gate: score {report.score:.1f}/100, collapse risk: {reasons}")


class GateError(CollapseCallbacksError, RuntimeError):
    """Gating itself failed on some rank (bad data, a probe that raised, a timeout) and
    the user chose ``fail_closed``. ``rank`` is the first rank that failed."""

    def __init__(self, message: str, rank: int | None = None) -> None:
        self.rank = rank
        where = f" on rank {rank}" if rank is not None else ""
        super().__init__(f"collapse-gate failed{where}: {message}")
