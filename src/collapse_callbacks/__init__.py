"""collapse-callbacks: stop a training run before it trains on data that would collapse
the model.

Everything public is importable from here. Attributes load on first use, so that
``import collapse_callbacks`` (and the CLI's ``--help``) does not import pyarrow, torch
or any training framework.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from collapse_callbacks._version import __version__
from collapse_callbacks.errors import (
    AllNullColumnError,
    CollapseCallbacksError,
    CollapseDetected,
    CorruptFileError,
    DataError,
    EmptyDataError,
    GateError,
    InvalidEncodingError,
    MissingDependencyError,
    MixedTypeError,
    NoColumnsError,
    RaggedRowsError,
    SchemaMismatchError,
    SourceNotFoundError,
    UnknownFormatError,
    UnsupportedBatchError,
)

_LAZY = {
    "CollapseGate": "collapse_callbacks.gate",
    "GateReport": "collapse_callbacks.report",
    "DimensionResult": "collapse_callbacks.dimensions.base",
    "Signal": "collapse_callbacks.dimensions.base",
    "SignalKind": "collapse_callbacks.dimensions.base",
    "Status": "collapse_callbacks.dimensions.base",
    "open_source": "collapse_callbacks.data.source",
    "DataStream": "collapse_callbacks.data.stream",
    "ColumnRole": "collapse_callbacks.data.roles",
    "FORMATS": "collapse_callbacks.data.location",
    "align_schemas": "collapse_callbacks.data.schema",
    "SchemaAlignment": "collapse_callbacks.data.schema",
    "Profile": "collapse_callbacks.profile.table",
    "ProfileSummary": "collapse_callbacks.profile.table",
    "build_profile": "collapse_callbacks.profile.table",
}

__all__ = [
    "FORMATS",
    "AllNullColumnError",
    "CollapseCallbacksError",
    "CollapseDetected",
    "CollapseGate",
    "ColumnRole",
    "CorruptFileError",
    "DataError",
    "DataStream",
    "DimensionResult",
    "EmptyDataError",
    "GateError",
    "GateReport",
    "InvalidEncodingError",
    "MissingDependencyError",
    "MixedTypeError",
    "NoColumnsError",
    "Profile",
    "ProfileSummary",
    "RaggedRowsError",
    "SchemaAlignment",
    "SchemaMismatchError",
    "Signal",
    "SignalKind",
    "SourceNotFoundError",
    "Status",
    "UnknownFormatError",
    "UnsupportedBatchError",
    "__version__",
    "align_schemas",
    "build_profile",
    "open_source",
]

if TYPE_CHECKING:
    from collapse_callbacks.data.location import FORMATS
    from collapse_callbacks.data.roles import ColumnRole
    from collapse_callbacks.data.schema import SchemaAlignment, align_schemas
    from collapse_callbacks.data.source import open_source
    from collapse_callbacks.data.stream import DataStream
    from collapse_callbacks.dimensions.base import DimensionResult, Signal, SignalKind, Status
    from collapse_callbacks.gate import CollapseGate
    from collapse_callbacks.profile.table import Profile, ProfileSummary, build_profile
    from collapse_callbacks.report import GateReport


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'collapse_callbacks' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
