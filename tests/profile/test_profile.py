from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collapse_callbacks import AllNullColumnError, ColumnRole, build_profile, open_source
from collapse_callbacks.profile.table import Profile


def _profile(source, **options):
    stream = open_source(source, **options)
    return build_profile(stream, stream.roles).result()


def test_penguins_known_answers(penguins):
    summary = _profile(penguins)
    assert summary.rows == 344
    mass = summary.columns["body_mass_g"]
    finite = penguins["body_mass_g"].dropna()
    assert mass.role == "numeric"
    assert mass.nulls == 2
    assert mass.count == 342
    assert mass.mean == pytest.approx(finite.mean(), rel=1e-12)
    assert mass.std == pytest.approx(finite.std(ddof=1), rel=1e-12)
    assert (mass.min, mass.max) == (2700.0, 6300.0)
    species = summary.columns["species"]
    assert species.role == "categorical"
    assert species.distinct == 3 and species.distinct_exact
    assert species.top == [("Adelie", 152), ("Gentoo", 124), ("Chinstrap", 68)]
    assert summary.columns["sex"].nulls == 11


def test_nan_and_inf_are_counted_not_fatal():
    table = pa.table({"x": pa.array([1.0, np.nan, np.inf, -np.inf, 3.0, None])})
    x = _profile(table).columns["x"]
    assert (x.nulls, x.nan, x.pos_inf, x.neg_inf, x.count) == (1, 1, 1, 1, 2)
    assert x.mean == 2.0


def test_all_missing_column_is_an_error_naming_it():
    table = pa.table({"ok": [1.0, 2.0, 3.0], "gone": pa.array([np.nan, None, np.nan])})
    with pytest.raises(AllNullColumnError) as caught:
        _profile(table)
    assert caught.value.column == "gone"


def test_roles_of_every_kind_summarize():
    import torch

    ids = torch.tensor([[5, 6, 7, 0], [8, 9, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    summary = _profile(
        pa.table(
            {
                "flag": [True, False, True],
                "doc": ["the cat sat down", "a dog ran far away", "birds fly over the sea"],
                "tokens": pa.array([[1, 2, 3], [4], [5, 6]], pa.large_list(pa.int64())),
                "emb": pa.array([[3.0, 4.0], [0.0, 1.0], [6.0, 8.0]], pa.list_(pa.float32(), 2)),
            }
        )
    )
    assert summary.columns["flag"].true == 2 and summary.columns["flag"].false == 1
    assert summary.columns["doc"].role == "text"
    assert summary.columns["doc"].mean_words == pytest.approx((4 + 5 + 5) / 3)
    tokens = summary.columns["tokens"]
    assert (tokens.sequences, tokens.tokens, tokens.min_token, tokens.max_token) == (3, 6, 1, 6)
    emb = summary.columns["emb"]
    assert emb.shape == [2] and emb.mean_norm == pytest.approx((5 + 1 + 10) / 3)
    loader_summary = _profile({"input_ids": ids, "attention_mask": mask})
    assert loader_summary.columns["input_ids"].tokens == 5  # padding never counts


def _split_merge_equals_whole(table: pa.Table, cut: int) -> None:
    roles = open_source(table).roles
    whole = Profile(roles)
    for batch in table.to_batches():
        whole.update(batch)
    left, right = Profile(roles), Profile(roles)
    for batch in table.slice(0, cut).to_batches():
        left.update(batch)
    for batch in table.slice(cut).to_batches():
        right.update(batch)
    merged = left.merge(right).result().to_dict()
    expected = whole.result().to_dict()
    assert merged["rows"] == expected["rows"]
    for name, column in expected["columns"].items():
        for key, value in column.items():
            got = merged["columns"][name][key]
            if isinstance(value, float):
                assert math.isclose(got, value, rel_tol=1e-9, abs_tol=1e-9), (name, key)
            else:
                assert got == value, (name, key)


@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(
        st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True, width=32)),
        min_size=2,
        max_size=60,
    ),
    words=st.lists(st.sampled_from(["a", "bb", "c c", None]), min_size=60, max_size=60),
    cut=st.integers(min_value=1, max_value=59),
)
def test_merging_two_halves_equals_profiling_the_whole(values, words, cut):
    n = len(values)
    cut = min(cut, n - 1)
    table = pa.table(
        {
            "x": pa.array([1.0, *values[1:]], pa.float64()),
            "c": pa.array(["k", *words[1:n]]),
            "b": pa.array([i % 3 == 0 for i in range(n)]),
        }
    )
    _split_merge_equals_whole(table, cut)


def test_merge_equivalence_on_real_data(penguins):
    table = pa.Table.from_pandas(penguins, preserve_index=False)
    for cut in (1, 100, 343):
        _split_merge_equals_whole(table, cut)


def test_merge_refuses_different_roles():
    a = Profile({"x": ColumnRole.NUMERIC})
    b = Profile({"x": ColumnRole.CATEGORICAL})
    with pytest.raises(ValueError, match="different columns or roles"):
        a.merge(b)
