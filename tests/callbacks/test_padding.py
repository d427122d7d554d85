"""Shard padding is not duplication: DistributedSampler and accelerate's batch sharding
repeat rows to even out the ranks, and the gate must not count those repeats."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import BatchSampler, DataLoader, SequentialSampler
from torch.utils.data.distributed import DistributedSampler

from collapse_callbacks.training import TrainingGate, unpadded_rows
from training_task import tables, tensors


@pytest.fixture(scope="module")
def halves():
    reference, real, _ = tables()
    return tensors(reference, reference), tensors(real, reference)  # 166 and 167 rows


def rows_yielded(loader) -> int:
    return sum(len(batch[0]) for batch in loader)


def test_distributed_sampler_padding_is_counted_out(halves):
    _, real = halves
    for rank, expected in ((0, 56), (1, 56), (2, 55)):
        sampler = DistributedSampler(real, num_replicas=3, rank=rank, shuffle=True, seed=1)
        loader = DataLoader(real, batch_size=32, sampler=sampler)
        assert rows_yielded(loader) == 56  # padded to 3 x 56 = 168 rows
        assert unpadded_rows(loader) == expected
    assert (
        sum(
            unpadded_rows(DataLoader(real, sampler=DistributedSampler(real, 3, r)))
            for r in range(3)
        )
        == 167
    )


def test_accelerate_batch_sharding_padding_is_counted_out(halves):
    accelerate = pytest.importorskip("accelerate.data_loader")
    _, real = halves

    def shard(rank):
        inner = BatchSampler(SequentialSampler(real), batch_size=64, drop_last=False)
        sampler = accelerate.BatchSamplerShard(inner, num_processes=2, process_index=rank)
        return DataLoader(real, batch_sampler=sampler)

    # 167 rows in batches of 64: rank 0 gets 64 + 39 real rows, rank 1 gets 64; the last
    # round is filled from the start of the epoch, to 128 rows on each rank.
    assert [rows_yielded(shard(r)) for r in (0, 1)] == [128, 128]
    assert [unpadded_rows(shard(r)) for r in (0, 1)] == [103, 64]


def test_a_padded_real_shard_is_not_called_collapsed(halves):
    accelerate = pytest.importorskip("accelerate.data_loader")
    reference, real = halves
    # One rank's view of a 4-process job over 167 rows with batches of 32: half its rows
    # would be repeats without the correction.
    inner = BatchSampler(SequentialSampler(real), batch_size=32, drop_last=False)
    sampler = accelerate.BatchSamplerShard(inner, num_processes=4, process_index=3)
    loader = DataLoader(real, batch_sampler=sampler)
    assert rows_yielded(loader) == 64 and unpadded_rows(loader) == 32
    outcome = TrainingGate(DataLoader(reference, batch_size=32)).run(loader)
    assert outcome.error is None, outcome.error
    assert outcome.report.sizes.candidate_rows == 32


def test_unpadded_loaders_are_left_alone(halves):
    _, real = halves
    assert unpadded_rows(DataLoader(real, batch_size=32, shuffle=True)) is None
    sampler = DistributedSampler(real, num_replicas=2, rank=0, drop_last=True)
    assert unpadded_rows(DataLoader(real, sampler=sampler)) is None
    assert torch.utils.data.get_worker_info() is None
