"""iter_dataloader: DataLoader batches -> RecordBatches, without disturbing the run."""

from __future__ import annotations

import random
from collections import namedtuple

import numpy as np
import psutil
import pyarrow as pa
import pytest
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, TensorDataset

from collapse_callbacks.data.dataloader import iter_dataloader
from collapse_callbacks.errors import UnsupportedBatchError

# --- datasets (module level, so worker processes can use them) -----------------------


class Rows(Dataset):
    """Row i is the tensor [i, 10 * i]."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.tensor([float(i), 10.0 * i])


class Augmented(Dataset):
    """Row i plus noise from torch's global RNG, like a random augmentation."""

    def __len__(self) -> int:
        return 12

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.tensor([float(i)]) + torch.rand(1)


class Stream(IterableDataset):
    """0, 1, ..., n-1 as {"value": i, "text": "row i"}."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __iter__(self):
        for i in range(self.n):
            yield {"value": i, "text": f"row {i}"}


class Sentences(Dataset):
    """Token id lists of different lengths."""

    ROWS = ([101, 7592, 102], [101, 2088, 2003, 2307, 102], [101, 102], [101, 5, 6, 102])

    def __len__(self) -> int:
        return len(self.ROWS)

    def __getitem__(self, i: int) -> list[int]:
        return self.ROWS[i]


def pad_collate(rows: list[list[int]]) -> dict[str, torch.Tensor]:
    """What a tokenizer's padding collator returns: pad id 0, mask, labels at -100."""
    width = max(len(r) for r in rows)
    input_ids = torch.zeros(len(rows), width, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    for i, row in enumerate(rows):
        input_ids[i, : len(row)] = torch.tensor(row)
        mask[i, : len(row)] = 1
        labels[i, 1 : len(row)] = torch.tensor(row[1:])  # the first token has no label
    return {"input_ids": input_ids, "attention_mask": mask, "labels": labels}


def all_rows(batches: list[pa.RecordBatch]) -> dict[str, list]:
    return pa.Table.from_batches(batches).to_pydict()


# --- batch shapes -----------------------------------------------------------------------


def test_a_tensor_batch_is_the_field_x():
    batches = list(iter_dataloader(DataLoader(Rows(5), batch_size=2)))
    assert [b.num_rows for b in batches] == [2, 2, 1]
    assert all_rows(batches) == {
        "x_0": [0.0, 1.0, 2.0, 3.0, 4.0],
        "x_1": [0.0, 10.0, 20.0, 30.0, 40.0],
    }


def test_a_pair_is_x_and_y():
    x = torch.arange(8.0).reshape(4, 2)
    y = torch.tensor([1, 0, 1, 1])
    batches = list(iter_dataloader(DataLoader(TensorDataset(x, y), batch_size=3)))
    assert all_rows(batches) == {
        "x_0": [0.0, 2.0, 4.0, 6.0],
        "x_1": [1.0, 3.0, 5.0, 7.0],
        "y": [1, 0, 1, 1],
    }


def test_other_tuples_are_numbered_items():
    a, b, c = torch.arange(3), torch.arange(3.0) / 2, torch.tensor([True, False, True])
    batches = list(iter_dataloader(DataLoader(TensorDataset(a, b, c), batch_size=3)))
    assert all_rows(batches) == {
        "item_0": [0, 1, 2],
        "item_1": [0.0, 0.5, 1.0],
        "item_2": [True, False, True],
    }


def test_a_namedtuple_keeps_its_field_names():
    Pair = namedtuple("Pair", ["features", "target"])

    def collate(rows):
        return Pair(torch.stack([r[0] for r in rows]), torch.stack([r[1] for r in rows]))

    data = TensorDataset(torch.tensor([[1.0], [2.0]]), torch.tensor([5, 6]))
    batches = list(iter_dataloader(DataLoader(data, batch_size=2, collate_fn=collate)))
    assert all_rows(batches) == {"features_0": [1.0, 2.0], "target": [5, 6]}


def test_padding_never_appears_in_the_token_lists():
    loader = DataLoader(Sentences(), batch_size=2, collate_fn=pad_collate)
    batches = list(iter_dataloader(loader))
    assert [b.schema.names for b in batches] == [["input_ids", "labels"]] * 2
    assert batches[0].schema.field("input_ids").type == pa.large_list(pa.int64())
    assert all_rows(batches) == {
        "input_ids": [list(r) for r in Sentences.ROWS],
        "labels": [r[1:] for r in Sentences.ROWS],
    }


def test_attention_mask_covers_every_int_field_of_its_shape_and_name_mask_its_name():
    batch = {
        "input_ids": torch.tensor([[5, 6, 0], [7, 0, 0]]),
        "token_type_ids": torch.tensor([[0, 1, 0], [0, 0, 0]]),
        "segment": torch.tensor([[3, 3, 9], [4, 9, 9]]),  # no token name: masked by shape
        "attention_mask": torch.tensor([[1, 1, 0], [1, 0, 0]]),
        "span": torch.tensor([[1, 2, 3, 4], [5, 6, 7, 8]]),
        "span_mask": torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0]]),
        "score": torch.tensor([0.5, 0.25]),
    }
    loader = DataLoader([batch], batch_size=None, collate_fn=lambda b: b)
    (out,) = list(iter_dataloader(loader))
    assert out.to_pydict() == {
        "input_ids": [[5, 6], [7]],
        "token_type_ids": [[0, 1], [0]],
        "segment": [[3, 3], [4]],
        "span": [[1, 2, 3], [5]],
        "score": [0.5, 0.25],
    }


def test_raw_text_in_a_dict_is_a_string_column():
    batches = list(iter_dataloader(DataLoader(Stream(5), batch_size=2)))
    assert batches[0].schema == pa.schema([("value", pa.int64()), ("text", pa.string())])
    assert all_rows(batches) == {
        "value": [0, 1, 2, 3, 4],
        "text": ["row 0", "row 1", "row 2", "row 3", "row 4"],
    }


def test_a_batch_of_strings_is_the_text_field_x():
    loader = DataLoader(["a b", "c d", "e"], batch_size=2)
    assert all_rows(list(iter_dataloader(loader))) == {"x": ["a b", "c d", "e"]}


def test_images_round_trip_through_a_loader():
    images = torch.randn(6, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    labels = torch.arange(6)
    loader = DataLoader(TensorDataset(images, labels), batch_size=4)
    table = pa.Table.from_batches(list(iter_dataloader(loader)))
    column = table.column("x").combine_chunks()
    assert column.type == pa.fixed_shape_tensor(pa.float32(), [3, 8, 8])
    np.testing.assert_array_equal(column.to_numpy_ndarray(), images.numpy())
    assert table.column("y").to_pylist() == [0, 1, 2, 3, 4, 5]


def test_bfloat16_batches_become_float32():
    x = torch.tensor([[0.5, 1.5], [2.5, 3.5]], dtype=torch.bfloat16)
    (batch,) = list(iter_dataloader(DataLoader(TensorDataset(x), batch_size=2)))
    assert batch.schema == pa.schema([("x_0", pa.float32()), ("x_1", pa.float32())])
    assert batch.to_pydict() == {"x_0": [0.5, 2.5], "x_1": [1.5, 3.5]}


def test_numpy_batches_are_read_like_tensors():
    def collate(rows):
        return {"a": np.array(rows, dtype=np.float32), "b": [str(r) for r in rows]}

    loader = DataLoader([1, 2, 3], batch_size=3, collate_fn=collate)
    (batch,) = list(iter_dataloader(loader))
    assert batch.schema == pa.schema([("a", pa.float32()), ("b", pa.string())])
    assert batch.to_pydict() == {"a": [1.0, 2.0, 3.0], "b": ["1", "2", "3"]}


def test_two_workers_give_the_same_rows_as_none():
    single = all_rows(list(iter_dataloader(DataLoader(Rows(10), batch_size=3))))
    workers = all_rows(list(iter_dataloader(DataLoader(Rows(10), batch_size=3, num_workers=2))))
    assert workers == single
    assert single["x_0"] == [float(i) for i in range(10)]


def test_an_iterable_dataset_with_two_workers_is_read_from_each_worker():
    loader = DataLoader(Stream(3), batch_size=2, num_workers=2)
    rows = all_rows(list(iter_dataloader(loader)))
    # without sharding every worker yields the whole stream, as in training
    assert sorted(rows["value"]) == [0, 0, 1, 1, 2, 2]


def _worker_pids() -> set[int]:
    return {child.pid for child in psutil.Process().children(recursive=True)}


def test_workers_are_shut_down_when_the_read_stops_early():
    before = _worker_pids()
    loader = DataLoader(Rows(400), batch_size=2, num_workers=2)
    assert len(list(iter_dataloader(loader, max_batches=1))) == 1
    assert _worker_pids() == before

    batches = iter_dataloader(loader)
    next(batches)
    assert len(_worker_pids() - before) == 2
    batches.close()
    assert _worker_pids() == before


# --- limits ---------------------------------------------------------------------------


def test_max_rows_slices_the_last_batch():
    batches = list(iter_dataloader(DataLoader(Rows(10), batch_size=4), max_rows=6))
    assert [b.num_rows for b in batches] == [4, 2]
    assert all_rows(batches)["x_0"] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]


def test_max_rows_at_a_batch_boundary_reads_no_further_batch():
    seen = []

    def collate(rows):
        seen.append(len(rows))
        return torch.stack(rows)

    loader = DataLoader(Rows(10), batch_size=4, collate_fn=collate)
    batches = list(iter_dataloader(loader, max_rows=4))
    assert [b.num_rows for b in batches] == [4]
    assert seen == [4]


def test_max_batches_stops_early():
    batches = list(iter_dataloader(DataLoader(Rows(10), batch_size=3), max_batches=2))
    assert [b.num_rows for b in batches] == [3, 3]
    both = list(iter_dataloader(DataLoader(Rows(10), batch_size=3), max_batches=3, max_rows=4))
    assert [b.num_rows for b in both] == [3, 1]


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"max_rows": 0}, ValueError),
        ({"max_batches": -1}, ValueError),
        ({"max_rows": 2.5}, TypeError),
    ],
)
def test_bad_limits_are_refused_at_the_call(options, error):
    with pytest.raises(error):
        iter_dataloader(DataLoader(Rows(2)), **options)


def test_only_a_dataloader_is_accepted():
    with pytest.raises(TypeError, match=r"needs a torch\.utils\.data\.DataLoader, got list"):
        iter_dataloader([torch.zeros(2)])


# --- refusals ---------------------------------------------------------------------------


class Opaque:
    """Stands for a PIL image or any object the data layer cannot read."""


def test_a_custom_object_batch_names_the_batch_and_its_type():
    def collate(rows):
        return Opaque() if rows[0] == 4 else torch.tensor(rows)

    loader = DataLoader(list(range(8)), batch_size=2, collate_fn=collate)
    batches = iter_dataloader(loader)
    assert [next(batches).num_rows, next(batches).num_rows] == [2, 2]
    with pytest.raises(UnsupportedBatchError) as info:
        next(batches)
    message = str(info.value)
    assert "DataLoader batch 2" in message
    assert "test_dataloader.Opaque" in message


def test_an_object_inside_a_tuple_is_refused_with_the_batch_index():
    loader = DataLoader(
        [0, 1], batch_size=2, collate_fn=lambda rows: (torch.tensor(rows), Opaque())
    )
    with pytest.raises(UnsupportedBatchError) as info:
        list(iter_dataloader(loader))
    assert "DataLoader batch 0 holds a" in str(info.value)
    assert "Opaque under 'y'" in str(info.value)


def test_a_nested_dict_is_refused_with_the_batch_index():
    rows = [{"a": torch.tensor(1.0), "meta": {"source": torch.tensor(2)}}] * 4
    with pytest.raises(UnsupportedBatchError) as info:
        list(iter_dataloader(DataLoader(rows, batch_size=2)))
    assert info.value.column == "meta"
    assert "DataLoader batch 0 holds a dict under 'meta'" in str(info.value)


def test_a_value_error_in_a_field_names_the_batch():
    loader = DataLoader([0], batch_size=None, collate_fn=lambda _: {"a": torch.tensor(3.0)})
    with pytest.raises(UnsupportedBatchError) as info:
        list(iter_dataloader(loader))
    assert info.value.column == "a"
    assert "(DataLoader batch 0)" in str(info.value)


def test_an_attention_mask_of_another_shape_names_both():
    batch = {"input_ids": torch.ones(2, 4, dtype=torch.long), "attention_mask": torch.ones(2, 5)}
    loader = DataLoader([batch], batch_size=None, collate_fn=lambda b: b)
    with pytest.raises(UnsupportedBatchError) as info:
        list(iter_dataloader(loader))
    assert "'attention_mask' has shape [2, 5] but 'input_ids' has shape [2, 4]" in str(info.value)
    assert "DataLoader batch 0" in str(info.value)


# --- the run does not notice ---------------------------------------------------------


def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)


def _epochs(loader, n: int = 2) -> list[list[torch.Tensor]]:
    return [[b.clone() for b in loader] for _ in range(n)]


def _after_the_run() -> tuple:
    return torch.rand(1).item(), random.random(), float(np.random.rand())


def test_two_fresh_iterators_over_a_shuffled_loader_disagree():
    # the premise of the next test: shuffling draws from the global RNG, so a careless
    # read would change the run. Two fresh iterators over one loader disagree.
    _seed_everything(0)
    loader = DataLoader(Rows(16), batch_size=4, shuffle=True)
    first, second = _epochs(loader)
    assert torch.cat(first)[:, 0].tolist() != torch.cat(second)[:, 0].tolist()
    assert sorted(torch.cat(first)[:, 0].tolist()) == [float(i) for i in range(16)]


def test_a_shuffled_run_sees_the_same_batches_and_rng_after_the_read():
    _seed_everything(0)
    plain = DataLoader(Rows(16), batch_size=4, shuffle=True)
    expected_batches, expected_after = _epochs(plain), _after_the_run()

    _seed_everything(0)
    loader = DataLoader(Rows(16), batch_size=4, shuffle=True)
    read = list(iter_dataloader(loader))
    got_batches, got_after = _epochs(loader), _after_the_run()

    assert sorted(all_rows(read)["x_0"]) == [float(i) for i in range(16)]
    assert len(got_batches) == len(expected_batches)
    for got, expected in zip(got_batches, expected_batches, strict=True):
        assert [b.tolist() for b in got] == [b.tolist() for b in expected]
    assert got_after == expected_after


def test_random_augmentations_and_a_loader_generator_are_left_as_they_were():
    # num_workers=0: __getitem__ draws from the global RNG; the sampler draws from g
    def run(read: bool):
        _seed_everything(1)
        g = torch.Generator().manual_seed(7)
        loader = DataLoader(Augmented(), batch_size=5, shuffle=True, generator=g)
        if read:
            assert sum(b.num_rows for b in iter_dataloader(loader, max_rows=8)) == 8
        return [[b.tolist() for b in epoch] for epoch in _epochs(loader)], _after_the_run()

    assert run(read=True) == run(read=False)


def test_the_worker_seed_of_a_two_worker_run_is_left_as_it_was():
    # each worker's RNG is seeded from a base seed the loader draws from the global RNG
    def run(read: bool):
        _seed_everything(2)
        loader = DataLoader(Augmented(), batch_size=3, shuffle=True, num_workers=2)
        if read:
            list(iter_dataloader(loader, max_batches=2))
        return [[b.tolist() for b in loader]], _after_the_run()

    assert run(read=True) == run(read=False)


def test_a_live_persistent_iterator_keeps_its_remaining_batches():
    def run(read: bool):
        _seed_everything(3)
        loader = DataLoader(
            Rows(12), batch_size=2, shuffle=True, num_workers=1, persistent_workers=True
        )
        iterator = iter(loader)
        head = [next(iterator).tolist() for _ in range(2)]
        read_rows = None
        if read:
            read_rows = all_rows(list(iter_dataloader(loader)))["x_0"]
            assert loader._iterator is iterator
        rest = [b.tolist() for b in iterator]
        next_epoch = [b.tolist() for b in loader]
        return head, rest, next_epoch, _after_the_run(), read_rows

    with_read, without = run(read=True), run(read=False)
    assert with_read[:4] == without[:4]
    assert len(with_read[1]) == 4  # the read did not eat the run's batches
    assert sorted(with_read[4]) == [float(i) for i in range(12)]


def test_a_persistent_loader_read_before_its_first_epoch_keeps_no_iterator():
    def run(read: bool):
        _seed_everything(4)
        loader = DataLoader(
            Rows(8), batch_size=4, shuffle=True, num_workers=1, persistent_workers=True
        )
        if read:
            assert len(list(iter_dataloader(loader))) == 2
            assert loader._iterator is None
        return [[b.tolist() for b in epoch] for epoch in _epochs(loader)], _after_the_run()

    assert run(read=True) == run(read=False)


def test_an_iterator_left_half_read_restores_the_rng_between_batches():
    _seed_everything(5)
    expected = torch.rand(3).tolist()

    _seed_everything(5)
    batches = iter_dataloader(DataLoader(Augmented(), batch_size=2, shuffle=True))
    next(batches)
    first = torch.rand(1).tolist()
    next(batches)
    rest = torch.rand(2).tolist()
    batches.close()
    assert first + rest == expected
