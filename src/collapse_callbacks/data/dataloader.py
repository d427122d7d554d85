"""A torch DataLoader as a stream of Arrow RecordBatches, without disturbing the run.

:func:`iter_dataloader` reads a ``torch.utils.data.DataLoader`` through a fresh iterator
and turns each batch into a RecordBatch with
:func:`~collapse_callbacks.data.tensors.arrays_to_batch`. A batch may be

* a tensor or NumPy array: the field ``x``;
* a tuple or list of them: ``x`` for one item, ``x`` and ``y`` for two, ``item_0``,
  ``item_1``, ... otherwise (a namedtuple keeps its field names); a list of ``str`` is the text field ``x``;
* a dict (or ``BatchEncoding``) of them: one field per key. ``attention_mask`` is not a
  column: it is the mask of ``input_ids`` and of every other 2-D integer field of its
  shape, so padding never counts as a token. A key ``<name>_mask`` is the mask of
  ``<name>`` when that key exists.

A list of ``str`` inside a tuple or dict is a text field. Anything else (an image object,
a custom class, a nested dict) is an :class:`~collapse_callbacks.errors.UnsupportedBatchError`
naming the batch and the Python type.

The run does not notice the read. Everything the loader draws from a global random
number generator (the sampler's shuffle seed, the worker base seed, random augmentations
in ``__getitem__`` with ``num_workers=0``) comes from a private copy of the global states
(torch CPU, CUDA when initialized, Python ``random``, NumPy's legacy global RNG) and of
the loader's own ``torch.Generator`` objects: the states are swapped in around each step
of the loader and swapped back before each batch is yielded. So after the read, the next
``iter(loader)`` yields the batches it would have yielded without it, and ``torch.rand``
returns what it would have. A loader with ``persistent_workers=True`` keeps its live
iterator: the read uses a separate one (a ``num_workers=0`` copy of the loader when the
run's iterator is alive, since ``iter(loader)`` would reset it).

A sampler or dataset that keeps its own state between epochs (a stateful sampler, an
``IterableDataset`` over a one-shot stream) is advanced by the read like by any epoch.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np
import pyarrow as pa

from collapse_callbacks.data.tensors import arrays_to_batch, to_column_values
from collapse_callbacks.errors import UnsupportedBatchError

ATTENTION_MASK = "attention_mask"
MASK_SUFFIX = "_mask"


def iter_dataloader(
    loader: Any,
    *,
    max_batches: int | None = None,
    max_rows: int | None = None,
) -> Iterator[pa.RecordBatch]:
    """RecordBatches from ``loader``, at most ``max_batches`` batches / ``max_rows`` rows.

    The last batch is sliced so that at most ``max_rows`` rows come out. Each call reads
    a fresh iterator; worker processes it started are shut down when the returned
    iterator is exhausted or closed.
    """
    from torch.utils.data import DataLoader

    if not isinstance(loader, DataLoader):
        raise TypeError(
            f"iter_dataloader needs a torch.utils.data.DataLoader, got {type(loader).__name__}"
        )
    for label, limit in (("max_batches", max_batches), ("max_rows", max_rows)):
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
            raise TypeError(f"{label} must be an int or None, got {type(limit).__name__}")
        if limit is not None and limit < 1:
            raise ValueError(f"{label} must be >= 1, got {limit}")
    return _batches(loader, max_batches, max_rows)


def _batches(loader, max_batches: int | None, max_rows: int | None) -> Iterator[pa.RecordBatch]:
    rows = 0
    for index, raw in enumerate(iter_raw_batches(loader, max_batches=max_batches)):
        batch = batch_to_record_batch(raw, where=f"DataLoader batch {index}")
        if max_rows is not None and rows + batch.num_rows >= max_rows:
            yield batch.slice(0, max_rows - rows)
            return
        rows += batch.num_rows
        yield batch


def iter_raw_batches(loader: Any, *, max_batches: int | None = None) -> Iterator[Any]:
    """The loader's own batches, unconverted, read as :func:`iter_dataloader` reads them
    (fresh iterator, private random state): for probing a model on the run's batches."""
    rng = _RngSwap(_loader_generators(loader))
    iterator = None
    try:
        with rng.swapped():
            iterator = _fresh_iterator(loader)
        index = 0
        while max_batches is None or index < max_batches:
            with rng.swapped():
                try:
                    raw = next(iterator)
                except StopIteration:
                    return
            index += 1
            yield raw
    finally:
        if iterator is not None:
            _shut_down(iterator)


def _fresh_iterator(loader):
    """An iterator over ``loader`` that shares nothing with the run's own iterator."""
    if not loader.persistent_workers:
        return iter(loader)
    if getattr(loader, "_iterator", None) is None:
        # iter() would keep this iterator for the run's next epoch; make one it does not keep.
        return loader._get_iterator()
    return iter(_single_process_copy(loader))


def _single_process_copy(loader):
    from torch.utils.data import DataLoader, IterableDataset

    if isinstance(loader.dataset, IterableDataset):
        return DataLoader(
            loader.dataset,
            batch_size=loader.batch_size,
            drop_last=loader.drop_last,
            collate_fn=loader.collate_fn,
            num_workers=0,
        )
    if loader.batch_sampler is not None:
        return DataLoader(
            loader.dataset,
            batch_sampler=loader.batch_sampler,
            collate_fn=loader.collate_fn,
            num_workers=0,
        )
    return DataLoader(
        loader.dataset,
        sampler=loader.sampler,
        batch_size=None,
        collate_fn=loader.collate_fn,
        num_workers=0,
    )


def _shut_down(iterator) -> None:
    shutdown = getattr(iterator, "_shutdown_workers", None)
    if callable(shutdown):
        shutdown()


def _loader_generators(loader) -> list:
    """The distinct torch.Generator objects the loader and its samplers draw from."""
    import torch

    found = []
    candidates = [
        getattr(loader, "generator", None),
        getattr(loader.sampler, "generator", None),
        getattr(getattr(loader.batch_sampler, "sampler", None), "generator", None),
    ]
    for generator in candidates:
        if isinstance(generator, torch.Generator) and all(generator is not g for g in found):
            found.append(generator)
    return found


class _RngSwap:
    """Two sets of RNG states: the run's (outside) and the read's (inside ``swapped``).

    The read's set starts as a copy of the run's at its first step.
    """

    def __init__(self, generators: list) -> None:
        self._generators = generators
        self._inner: dict[str, Any] | None = None

    def _capture(self) -> dict[str, Any]:
        import torch

        state: dict[str, Any] = {
            "torch": torch.get_rng_state(),
            "python": random.getstate(),
            "numpy": np.random.get_state(),
            "generators": [g.get_state() for g in self._generators],
        }
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def _restore(self, state: dict[str, Any]) -> None:
        import torch

        torch.set_rng_state(state["torch"])
        random.setstate(state["python"])
        np.random.set_state(state["numpy"])
        for generator, generator_state in zip(self._generators, state["generators"], strict=True):
            generator.set_state(generator_state)
        if "cuda" in state:
            torch.cuda.set_rng_state_all(state["cuda"])

    @contextmanager
    def swapped(self) -> Iterator[None]:
        outer = self._capture()
        if self._inner is not None:
            self._restore(self._inner)
        try:
            yield
        finally:
            self._inner = self._capture()
            self._restore(outer)


def batch_to_record_batch(batch: Any, *, where: str) -> pa.RecordBatch:
    """One collated DataLoader batch as a RecordBatch, by the rules of this module."""
    if isinstance(batch, Mapping):
        fields, masks = _dict_fields(batch, where)
        return arrays_to_batch(fields, masks=masks, where=where)
    if _is_array(batch):
        return arrays_to_batch({"x": batch}, where=where)
    if isinstance(batch, (list, tuple)):
        if batch and all(isinstance(item, str) for item in batch):
            return arrays_to_batch({"x": list(batch)}, where=where)
        names = getattr(batch, "_fields", None)
        if not names:
            # TensorDataset(x) yields 1-tuples: the same field as a bare tensor.
            by_length = {1: ("x",), 2: ("x", "y")}
            names = by_length.get(len(batch)) or [f"item_{i}" for i in range(len(batch))]
        fields = {}
        for name, item in zip(names, batch, strict=False):
            _check_item(item, name, where)
            fields[name] = item
        if not fields:
            raise UnsupportedBatchError(f"{where} is an empty {type(batch).__name__}")
        return arrays_to_batch(fields, where=where)
    raise UnsupportedBatchError(
        f"{where} is a {_type_name(batch)}; a batch must be a tensor, a NumPy array, a "
        "tuple/list of them, or a dict of them (give the DataLoader a collate_fn that "
        "returns one)"
    )


def _dict_fields(batch: Mapping, where: str) -> tuple[dict[str, Any], dict[str, Any]]:
    for key, item in batch.items():
        if not isinstance(key, str):
            raise UnsupportedBatchError(
                f"{where} is a dict with the key {key!r} ({_type_name(key)}); keys must be str"
            )
        _check_item(item, key, where)
    values = {key: to_column_values(item, name=key, where=where) for key, item in batch.items()}
    # name -> (mask key, mask values)
    masks: dict[str, tuple[str, Any]] = {}
    for key in values:
        if key != ATTENTION_MASK and key.endswith(MASK_SUFFIX):
            target = key[: -len(MASK_SUFFIX)]
            if target in values:
                masks[target] = (key, values[key])
    used = {mask_key for mask_key, _ in masks.values()}
    fields = {k: v for k, v in values.items() if k != ATTENTION_MASK and k not in used}
    attention = values.get(ATTENTION_MASK)
    if attention is not None:
        for name, value in fields.items():
            if name in masks or isinstance(value, list):
                continue
            two_d_int = value.ndim == 2 and value.dtype.kind in "iu"
            if name == "input_ids" or (
                two_d_int and not isinstance(attention, list) and value.shape == attention.shape
            ):
                masks[name] = (ATTENTION_MASK, attention)
    for name, (mask_key, mask) in masks.items():
        mask_shape = None if isinstance(mask, list) else list(mask.shape)
        value = fields[name]
        shape = None if isinstance(value, list) else list(value.shape)
        if mask_shape != shape or shape is None:
            raise UnsupportedBatchError(
                f"'{mask_key}' has shape {mask_shape} but '{name}' has shape {shape}; a mask "
                f"needs the shape of its sequence ({where})",
                column=name,
            )
    if not fields:
        raise UnsupportedBatchError(f"{where} is a dict with no fields besides masks")
    return fields, {name: mask for name, (_, mask) in masks.items()}


def _is_array(value: Any) -> bool:
    if isinstance(value, np.ndarray):
        return True
    if type(value).__module__.startswith("torch"):
        import torch

        return isinstance(value, torch.Tensor)
    return False


def _check_item(item: Any, name: str, where: str) -> None:
    """Refuse containers that are not a field, naming the batch and the Python type."""
    if _is_array(item) or isinstance(item, (list, tuple)):
        return
    raise UnsupportedBatchError(
        f"{where} holds a {_type_name(item)} under '{name}'; a field must be a tensor, a "
        "NumPy array, a list of str or a list of numbers",
        column=name,
    )


def _type_name(value: Any) -> str:
    kind = type(value)
    if kind.__module__ == "builtins":
        return kind.__qualname__
    return f"{kind.__module__}.{kind.__qualname__}"
