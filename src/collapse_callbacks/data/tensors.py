"""Tensors and arrays -> one Arrow RecordBatch.

:func:`arrays_to_batch` takes a mapping ``name -> value`` whose values all have the same
leading (row) dimension ``B``. A value may be a torch tensor (any device, any real
dtype; it is detached and copied to the CPU), a NumPy array, a list of ``str`` (raw
text), or a list / tuple of numbers (nested lists make more dimensions). The batch never
shares memory with the values it was made from.

=====================================  ===============================================
value of shape                         becomes
=====================================  ===============================================
``[B]`` bool, integer or float         one column ``name`` of the same type
``[B]`` text (list of ``str``, NumPy   one string column ``name`` (``None`` is null)
``str_`` array)
``[B, L]`` integer, when ``name`` is   one token-sequence column ``name`` of type
a token name (``input_ids``,           ``large_list<int64>``; each row keeps only the
``decoder_input_ids``, ``labels``,     positions where its mask is nonzero (padding
any name ending in ``_ids``) or the    never counts); ``labels`` also drops the
field has a mask                       Hugging Face ignore index ``-100``
``[B, D]`` any other bool / number,    ``D`` columns ``name_0`` ... ``name_{D-1}`` of
``D <= 256``                           the same type
``[B, D]`` any other number,           one vector column ``name`` of type
``D > 256``                            ``fixed_size_list<float32>[D]``
``[B, d1, d2, ...]`` (images           one column ``name`` of type
``[B, C, H, W]``, ...)                 ``fixed_shape_tensor<float32>[d1, d2, ...]``
=====================================  ===============================================

float16 and bfloat16 (and any other float narrower or wider than float32 / float64)
become float32. Integers and booleans in vectors and tensors become float32 as well.

A mask (``masks={"input_ids": attention_mask}``) has the shape of its sequence, ``[B, L]``;
any nonzero value marks a real token. Only a 2-D integer field can have one.

Refused, with an :class:`~collapse_callbacks.errors.UnsupportedBatchError` (or a
:class:`~collapse_callbacks.errors.DataError` for bad values) that names the field:
scalars (0-d values), ragged rows, fields with different ``B``, object and complex
arrays, bytes, dates, lists mixing strings with numbers, a ``[B, 0]`` or otherwise empty
feature shape (token sequences excepted), a mask whose shape differs from its sequence,
and two fields that would make the same column name.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa

from collapse_callbacks.errors import DataError, MixedTypeError, UnsupportedBatchError

#: A ``[B, D]`` field with at most this many features becomes ``D`` numeric columns;
#: a wider one becomes one vector column.
MAX_FEATURE_COLUMNS = 256

#: Token ids at this value in a ``labels`` field are not tokens (Hugging Face's
#: ``ignore_index`` for the loss).
LABEL_IGNORE_INDEX = -100

TOKEN_NAMES = frozenset({"input_ids", "decoder_input_ids", "labels"})

_INT64_MAX = np.iinfo(np.int64).max


def is_token_name(name: str) -> bool:
    """Whether a 2-D integer field called ``name`` holds token ids."""
    return name in TOKEN_NAMES or name.endswith("_ids")


def _type_name(value: Any) -> str:
    kind = type(value)
    if kind.__module__ == "builtins":
        return kind.__qualname__
    return f"{kind.__module__}.{kind.__qualname__}"


def _fail(
    message: str,
    name: str | None,
    where: str | None,
    error: type[DataError] = UnsupportedBatchError,
) -> DataError:
    if where:
        message = f"{message} ({where})"
    return error(message, column=name)


def to_column_values(value: Any, *, name: str, where: str | None = None) -> np.ndarray | list:
    """``value`` as a NumPy array of bool, integer or float, or as a list of ``str``/None.

    Torch tensors are detached and moved to the CPU; floats other than float32/float64
    become float32. The array may share memory with ``value``. Raises
    :class:`UnsupportedBatchError` for anything that cannot become columns.
    """
    if type(value).__module__.startswith("torch"):
        array = _from_torch(value, name, where)
        if array is not None:
            return _check_array(array, name, where)
    if isinstance(value, np.ndarray):
        return _check_array(value, name, where)
    if isinstance(value, (list, tuple)):
        return _from_sequence(value, name, where)
    if isinstance(value, (str, bytes, numbers.Number, np.generic)):
        raise _fail(
            f"is a single {_type_name(value)}, not a batch of rows; "
            "every field needs a leading row dimension",
            name,
            where,
        )
    raise _fail(
        f"is a {_type_name(value)}; a field must be a torch tensor, a NumPy array, "
        "a list of str or a list of numbers",
        name,
        where,
    )


def _from_torch(value: Any, name: str, where: str | None) -> np.ndarray | None:
    import torch

    if not isinstance(value, torch.Tensor):
        return None
    tensor = value.detach()
    if tensor.is_nested:
        raise _fail("is a nested (ragged) tensor; rows must all have one shape", name, where)
    if tensor.is_complex():
        raise _fail(f"has complex dtype {tensor.dtype}; only real numbers", name, where)
    try:
        if tensor.is_quantized:
            tensor = tensor.dequantize()
        if tensor.layout != torch.strided:
            tensor = tensor.to_dense()
        tensor = tensor.cpu()
        if tensor.is_floating_point() and tensor.dtype not in (torch.float32, torch.float64):
            tensor = tensor.float()
        tensor = tensor.resolve_conj().resolve_neg()
        return tensor.numpy()
    except (RuntimeError, TypeError, NotImplementedError, ValueError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise _fail(
            f"a {tensor.dtype} tensor on {value.device} cannot be read as a NumPy array: "
            f"{first_line}",
            name,
            where,
        ) from None


def _check_array(array: np.ndarray, name: str, where: str | None) -> np.ndarray | list:
    kind = array.dtype.kind
    if array.ndim == 0:
        raise _fail(
            "is a 0-d scalar, not a batch of rows; every field needs a leading row dimension",
            name,
            where,
        )
    if kind == "U":
        if array.ndim != 1:
            raise _fail(
                f"is a {array.ndim}-D array of strings; text must be one string per row",
                name,
                where,
            )
        return array.tolist()
    if kind == "O":
        raise _fail(
            "is an object array; convert it to numbers, or pass text as a list of str",
            name,
            where,
        )
    if kind == "c":
        raise _fail(f"has complex dtype {array.dtype}; only real numbers", name, where)
    if kind not in "biuf":
        raise _fail(f"has dtype {array.dtype}, which is not bool, integer or float", name, where)
    if kind == "f" and array.dtype.itemsize not in (4, 8):
        array = array.astype(np.float32)
    if not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    return array


def _from_sequence(value: list | tuple, name: str, where: str | None) -> np.ndarray | list:
    has_text = False
    has_other = False
    for item in value:
        if isinstance(item, str):
            has_text = True
        elif item is None:
            continue
        elif isinstance(item, (bool, int, float, np.bool_, np.integer, np.floating, list, tuple)):
            has_other = True
        else:
            raise _fail(
                f"is a {type(value).__name__} holding a {_type_name(item)}; a list field "
                "must hold str (text) or numbers",
                name,
                where,
            )
    if has_text and has_other:
        raise _fail("mixes strings with numbers or lists", name, where, MixedTypeError)
    if has_text:
        return list(value)
    if value and not has_other:
        raise _fail("holds only None; there is nothing to profile", name, where, DataError)
    if any(item is None for item in value):
        raise _fail("holds None among numbers; use NaN for a missing float", name, where, DataError)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            array = np.asarray(value)
    except (ValueError, TypeError, OverflowError) as exc:
        raise _fail(
            "has ragged rows (different lengths, or mixed nesting), so it is no array; pad token "
            "sequences to one length and pass their attention mask, or give the column as "
            f"an Arrow list column ({str(exc).splitlines()[0][:120]})",
            name,
            where,
        ) from None
    if array.dtype.kind == "O":
        raise _fail(
            "cannot be read as a numeric array: ragged rows, integers beyond 64 bits, "
            "or values that are not numbers",
            name,
            where,
        )
    if array.dtype.kind == "U":
        raise _fail("mixes strings with numbers or lists", name, where, MixedTypeError)
    return _check_array(array, name, where)


def arrays_to_batch(
    fields: Mapping[str, Any],
    *,
    masks: Mapping[str, Any] | None = None,
    where: str | None = None,
) -> pa.RecordBatch:
    """One RecordBatch from ``fields`` (name -> tensor / array / list), by the rules above.

    ``masks`` maps a field name to its ``[B, L]`` mask; ``where`` (``"DataLoader batch
    3"``, ``"rows 0-99"``) is added to every error message.
    """
    if not isinstance(fields, Mapping):
        raise _fail(
            f"fields must be a mapping of name -> values, got a {_type_name(fields)}", None, where
        )
    if not fields:
        raise _fail("there are no fields to turn into columns", None, where)
    masks = dict(masks or {})
    for key in list(fields) + list(masks):
        if not isinstance(key, str):
            raise _fail(f"field name {key!r} is a {_type_name(key)}, not a str", None, where)
    orphans = sorted(set(masks) - set(fields))
    if orphans:
        raise _fail(
            f"masks given for fields that do not exist: {', '.join(orphans)}; "
            f"the fields are: {', '.join(fields)}",
            None,
            where,
            DataError,
        )

    values = {
        name: to_column_values(value, name=name, where=where) for name, value in fields.items()
    }
    first_name = next(iter(values))
    rows = len(values[first_name])
    for name, value in values.items():
        if len(value) != rows:
            raise _fail(
                f"has {len(value)} rows but '{first_name}' has {rows}; every field needs the "
                "same leading row dimension",
                name,
                where,
            )

    names: list[str] = []
    arrays: list[pa.Array] = []
    for name, value in values.items():
        mask = None
        if name in masks:
            mask = to_column_values(masks[name], name=name, where=where)
            if isinstance(mask, list):
                raise _fail("its mask is text, not numbers", name, where)
        for column, array in _field_columns(name, value, mask, where):
            if column in names:
                raise _fail(
                    f"two fields make a column named '{column}'; rename one of them",
                    column,
                    where,
                    DataError,
                )
            names.append(column)
            arrays.append(array)
    return pa.RecordBatch.from_arrays(arrays, names=names)


def _field_columns(
    name: str, value: np.ndarray | list, mask: np.ndarray | None, where: str | None
) -> list[tuple[str, pa.Array]]:
    if isinstance(value, list):
        return [(name, _string_array(value, name, where))]
    shape = value.shape
    kind = value.dtype.kind
    if mask is not None:
        if value.ndim != 2 or kind not in "iu":
            raise _fail(
                f"has a mask, but only a 2-D integer token sequence can have one; this field "
                f"is {value.dtype} of shape {list(shape)}",
                name,
                where,
            )
        if mask.shape != shape:
            raise _fail(
                f"the mask of '{name}' has shape {list(mask.shape)} but '{name}' has shape "
                f"{list(shape)}",
                name,
                where,
            )
    if value.ndim == 1:
        return [(name, pa.array(value.copy()))]
    if value.ndim == 2 and kind in "iu" and (mask is not None or is_token_name(name)):
        return [(name, _token_array(name, value, mask, where))]
    if any(size == 0 for size in shape[1:]):
        raise _fail(
            f"has shape {list(shape)}: a row holds no values, so there is nothing to profile",
            name,
            where,
        )
    if value.ndim == 2:
        width = shape[1]
        if width <= MAX_FEATURE_COLUMNS:
            columns = value.T.copy()  # one contiguous row per feature
            return [(f"{name}_{i}", pa.array(columns[i])) for i in range(width)]
        flat = value.astype(np.float32, copy=True).reshape(-1)
        return [(name, pa.FixedSizeListArray.from_arrays(pa.array(flat), width))]
    return [(name, _tensor_array(value))]


def _string_array(value: list, name: str, where: str | None) -> pa.Array:
    try:
        array = pa.array(value, type=pa.string())
    except UnicodeEncodeError as exc:
        raise _fail(
            f"holds a string that is not valid Unicode text ({exc.reason} at character "
            f"{exc.start}); decode bytes with errors='replace' first",
            name,
            where,
            DataError,
        ) from None
    except (pa.ArrowInvalid, pa.ArrowCapacityError, pa.ArrowTypeError) as exc:
        raise _fail(f"cannot be stored as text: {exc}", name, where, DataError) from None
    if isinstance(array, pa.ChunkedArray):
        return pa.array(value, type=pa.large_string())
    return array


def _token_array(
    name: str, value: np.ndarray, mask: np.ndarray | None, where: str | None
) -> pa.Array:
    if value.dtype == np.uint64 and value.size and int(value.max()) > _INT64_MAX:
        raise _fail("holds token ids beyond the int64 range", name, where, DataError)
    keep = np.ones(value.shape, dtype=bool) if mask is None else mask != 0
    if name == "labels":
        keep &= value != LABEL_IGNORE_INDEX
    tokens = value[keep].astype(np.int64, copy=False)
    offsets = np.zeros(value.shape[0] + 1, dtype=np.int64)
    np.cumsum(keep.sum(axis=1), out=offsets[1:])
    return pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(tokens))


def _tensor_array(value: np.ndarray) -> pa.Array:
    data = np.array(value, dtype=np.float32, order="C", copy=True)
    if data.shape[0] == 0:
        dtype = pa.fixed_shape_tensor(pa.float32(), list(data.shape[1:]))
        return pa.ExtensionArray.from_storage(dtype, pa.array([], type=dtype.storage_type))
    return pa.FixedShapeTensorArray.from_numpy_ndarray(data)
