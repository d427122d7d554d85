from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from collapse_callbacks import build_profile, open_source
from collapse_callbacks.data.roles import ColumnRole
from collapse_callbacks.profile.rows import DuplicateState, RowSample, row_hash_pair, row_hashes
from collapse_callbacks.profile.sketch import EXACT_LIMIT, QuantileSketch, cdf_distance


def test_sketch_is_exact_for_few_distinct_values(penguins):
    sketch = QuantileSketch()
    years = penguins["year"].to_numpy(dtype=float)
    sketch.update(years)
    assert sketch.exact
    assert sketch.quantile(0.0) == 2007 and sketch.quantile(1.0) == 2009
    assert sketch.mass_above(2008) == pytest.approx((years > 2008).mean())


def test_sketch_quantiles_on_the_grid_are_within_relative_accuracy():
    values = np.random.default_rng(0).lognormal(size=200_000)
    sketch = QuantileSketch()
    sketch.update(values)
    assert not sketch.exact
    for q in (0.001, 0.01, 0.5, 0.99, 0.999):
        assert sketch.quantile(q) == pytest.approx(np.quantile(values, q), rel=0.005)


def test_sketch_halves_merge_to_the_whole_exactly():
    values = np.random.default_rng(1).normal(size=50_000)
    whole, left, right = QuantileSketch(), QuantileSketch(), QuantileSketch()
    whole.update(values)
    left.update(values[:100])  # still exact: merging an exact and a grid sketch
    right.update(values[100:])
    merged = left.merge(right)
    assert not merged.exact and len(left.keys) <= EXACT_LIMIT
    np.testing.assert_array_equal(merged.keys, whole.keys)
    np.testing.assert_array_equal(merged.counts, whole.counts)


def test_cdf_distance_matches_scipy_on_real_columns(penguins):
    from scipy import stats

    a = penguins.loc[penguins.species == "Adelie", "body_mass_g"].dropna().to_numpy()
    b = penguins.loc[penguins.species == "Gentoo", "body_mass_g"].dropna().to_numpy()
    sa, sb = QuantileSketch(), QuantileSketch()
    sa.update(a)
    sb.update(b)
    ks, w1 = cdf_distance(sa, sb)
    assert ks == pytest.approx(stats.ks_2samp(a, b).statistic)
    assert w1 == pytest.approx(stats.wasserstein_distance(a, b))


def test_duplicate_fraction_is_exact_when_small_and_unbiased_when_sampled():
    rng = np.random.default_rng(2)
    base = rng.integers(0, 2**63, size=100_000, dtype=np.int64).astype(np.uint64)
    hashes = np.concatenate([base, base[:25_000]])  # 25,000 repeats of 125,000 rows
    exact = DuplicateState()
    exact.update(hashes)
    assert exact.exact and exact.duplicate_fraction() == pytest.approx(0.2)
    small = DuplicateState(capacity=4096)
    for chunk in np.array_split(hashes, 7):
        small.update(chunk)
    assert small.level > 0 and len(small.hashes) <= 4096
    assert small.duplicate_fraction() == pytest.approx(0.2, abs=0.03)


def test_row_hashes_see_equal_rows_and_near_equal_numbers():
    batch = pa.record_batch(
        {
            "x": [1.0, 1.0, 1.0004, 2.0, None],
            "s": ["a", "a", "a", "b", None],
        }
    )
    roles = {"x": ColumnRole.NUMERIC, "s": ColumnRole.CATEGORICAL}
    exact = row_hashes(batch, roles)
    near = row_hashes(batch, roles, digits=3)
    assert exact[0] == exact[1] and exact[0] != exact[2] and exact[3] != exact[0]
    assert near[0] == near[2]
    assert len(set(exact.tolist())) == 4


def test_row_hashes_stay_the_same_across_versions():
    # Profiles travel between processes and machines (ranks, the gRPC service) and
    # are merged there: a change to the hash would count one row as two. These values
    # are session 8's; session 9 made the hashing faster without changing them. The
    # batch covers every role, nulls (in a boolean column too), -0.0 and NaN.
    batch = pa.record_batch(
        {
            "x": pa.array([1.5, -0.0, None, 1234.5678, float("nan")]),
            "flag": pa.array([True, False, None, True, False]),
            "kind": pa.array(["a", "b", None, "a", "ccc"]),
            "note": pa.array(["Hello, world!", "hello world", None, "", "x"]),
            "v": pa.array([[1.0, 2.0], [0.0, -0.0], None, [3.0, 4.0], [5.0, 6.0]]),
        }
    )
    roles = {
        "x": ColumnRole.NUMERIC,
        "flag": ColumnRole.BOOLEAN,
        "kind": ColumnRole.CATEGORICAL,
        "note": ColumnRole.TEXT,
        "v": ColumnRole.VECTOR,
    }
    exact = [0xA89DBF03B90294E6, 0x19159C0CC824C00B, 0xEB1CD76F48F6D2D2]
    exact += [0xF3860DDE82863C1B, 0xB5ACFA97B6D74B7A]
    near = [0x947DD2854F20814F, 0x19159C0CC824C00B, 0xEB1CD76F48F6D2D2]
    near += [0x59A9EE6767F21E72, 0xB5ACFA97B6D74B7A]
    assert row_hashes(batch, roles).tolist() == exact
    assert row_hashes(batch, roles, digits=3).tolist() == near
    pair = row_hash_pair(batch, roles, 3)
    assert pair[0].tolist() == exact and pair[1].tolist() == near


def test_string_hashes_ignore_slicing_offsets():
    batch = pa.record_batch({"s": ["xx", "abc", "abc", "q"]})
    roles = {"s": ColumnRole.CATEGORICAL}
    whole = row_hashes(batch, roles)
    sliced = row_hashes(batch.slice(1, 2), roles)
    assert sliced[0] == sliced[1] == whole[1]


def test_row_sample_is_uniform_and_merges(penguins):
    table = pa.Table.from_pandas(penguins, preserve_index=False)
    sample = RowSample(100, seed=0)
    for batch in table.to_batches(max_chunksize=50):
        sample.update(batch)
    assert sample.result().num_rows == 100
    left, right = RowSample(100, seed=1), RowSample(100, seed=2)
    left.update(table.slice(0, 172).to_batches()[0])
    right.update(table.slice(172).to_batches()[0])
    merged = left.merge(right).result()
    assert merged.num_rows == 100
    # Each half holds half the rows, so about half the merged sample comes from each.
    species_share = np.mean(np.isin(merged.column("species").to_pylist(), ["Adelie"]))
    assert 0.25 < species_share < 0.65


def test_profile_row_state_merges(penguins):
    table = pa.Table.from_pandas(penguins, preserve_index=False)
    roles = open_source(table).roles
    doubled = pa.concat_tables([table, table.slice(0, 44)])
    whole = build_profile(doubled.to_batches(), roles, sample_rows=64)
    left = build_profile(doubled.slice(0, 200).to_batches(), roles, sample_rows=64)
    right = build_profile(doubled.slice(200).to_batches(), roles, sample_rows=64)
    merged = left.merge(right)
    assert merged.duplicates.duplicate_fraction() == whole.duplicates.duplicate_fraction()
    assert whole.duplicates.duplicate_fraction() == pytest.approx(44 / 388)
    a, b = merged.comoments.result(), whole.comoments.result()
    np.testing.assert_allclose(a.covariance, b.covariance, rtol=1e-10)
    assert merged.sample.result().num_rows == 64


def test_near_duplicate_text_ignores_case_punctuation_and_spacing():
    import pyarrow as pa

    from collapse_callbacks.data.roles import ColumnRole
    from collapse_callbacks.profile.rows import row_hashes

    batch = pa.record_batch(
        {"t": pa.array(["Hello, world!", "hello   world", " HELLO world.", "hello there"])}
    )
    roles = {"t": ColumnRole.TEXT}
    near = row_hashes(batch, roles, 3)
    exact = row_hashes(batch, roles)
    assert near[0] == near[1] == near[2] != near[3]
    assert len(set(exact.tolist())) == 4


def test_duplicates_at_a_smaller_size_thin_the_groups_in_expectation():
    rng = np.random.default_rng(3)
    base = rng.integers(0, 2**63, size=5_000, dtype=np.int64).astype(np.uint64)
    state = DuplicateState()
    state.update(np.concatenate([base, base]))  # every row twice
    assert state.rows == 10_000
    whole = state.at_size(10_000)
    assert whole.fraction == 0.5 and whole.rows == 10_000
    # Half the rows kept: a pair survives whole a quarter of the time, so a group is
    # present with probability 3/4 and holds one row on average.
    half = state.at_size(5_000)
    assert half.fraction == pytest.approx(0.25) and half.rows == 5_000
    # Identical groups: nothing varies between them, so what is left is the thinning's
    # own randomness: per pair 3/16 - 2 (3/4)(1/4) + (3/4)^2 / 2 = 3/32, over 5,000^2.
    assert whole.variance == pytest.approx(0.0, abs=1e-15)
    assert half.variance == pytest.approx(3 / 32 / 5_000)
    rows = np.arange(5_000).repeat(2)
    realized = [
        1 - len(np.unique(rng.choice(rows, 5_000, replace=False))) / 5_000 for _ in range(400)
    ]
    assert np.std(realized) == pytest.approx(np.sqrt(half.variance), rel=0.25)
    # A larger size than the data is the data itself.
    assert state.at_size(50_000).fraction == 0.5
    # Sampled by hash, the figures estimate the same and know the rows offered.
    sampled = DuplicateState(capacity=2048)
    for chunk in np.array_split(np.concatenate([base, base]), 5):
        sampled.update(chunk)
    assert sampled.level > 0 and sampled.rows == 10_000
    assert sampled.at_size(5_000).fraction == pytest.approx(0.25, abs=0.01)
    merged = DuplicateState().merge(state)
    assert merged.rows == 10_000


def test_states_sampled_at_different_levels_are_compared_on_the_same_values():
    from collapse_callbacks.dimensions.duplicates import compare_duplicates

    rng = np.random.default_rng(4)
    values = rng.integers(0, 2**63, size=20_000, dtype=np.int64).astype(np.uint64)
    large, small = DuplicateState(capacity=4096), DuplicateState()
    large.update(values[:16_000])
    small.update(np.concatenate([values[16_000:18_000]] * 2))  # every row twice
    assert large.level > 0 and small.level == 0
    coarse = small.coarsened(large.level)
    assert coarse.rows == small.rows and np.all(coarse.hashes <= large._limit())
    assert small.coarsened(0) is small
    test = compare_duplicates([large], [small])
    assert test.rows == 4_000 and test.reference == pytest.approx(0.0, abs=1e-12)
    assert test.value == pytest.approx(0.5, abs=0.03)  # estimated from a hash sample
    assert test.p_value < 1e-9
    same = compare_duplicates([small], [small])
    assert same.effect == 0.0 and same.p_value == 0.5


def test_vector_columns_count_repeated_vectors_and_merge():
    from collapse_callbacks.profile.columns import VectorState

    rng = np.random.default_rng(5)
    vectors = rng.normal(size=(300, 8))
    rows = [*vectors, *vectors[:100], None, [np.nan] * 8]
    array = pa.array([None if r is None else list(r) for r in rows], pa.list_(pa.float64(), 8))
    whole, first, second = VectorState(), VectorState(), VectorState()
    whole.update(array)
    first.update(array.slice(0, 150))
    second.update(array.slice(150))
    # 400 complete vectors (the null and the NaN one are left out), 100 of them repeats.
    assert whole.duplicates.rows == 400
    assert whole.duplicates.duplicate_fraction() == pytest.approx(0.25)
    merged = first.merge(second)
    np.testing.assert_array_equal(merged.duplicates.hashes, whole.duplicates.hashes)
    np.testing.assert_array_equal(merged.duplicates.counts, whole.duplicates.counts)
    assert merged.duplicates.rows == 400
