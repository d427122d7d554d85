from __future__ import annotations

import pyarrow as pa
import pytest

from collapse_callbacks import (
    AllNullColumnError,
    ColumnRole,
    DataError,
    SchemaMismatchError,
    align_schemas,
    open_source,
)


def test_penguins_raw_roles_follow_the_documented_rules():
    roles = open_source("example:penguins-raw").roles
    assert roles["Species"] is ColumnRole.CATEGORICAL  # 4 words, but 3 distinct values
    assert roles["Individual ID"] is ColumnRole.CATEGORICAL  # many distinct, one word
    assert roles["Body Mass (g)"] is ColumnRole.NUMERIC
    assert roles["Date Egg"] is ColumnRole.NUMERIC  # a date counts as a number


def test_text_needs_words_and_distinct_values():
    many = [f"sentence number {i} with words" for i in range(40)]
    repeated = ["the same few words here"] * 40
    roles = open_source(pa.table({"many": many, "repeated": repeated})).roles
    assert roles == {"many": ColumnRole.TEXT, "repeated": ColumnRole.CATEGORICAL}


def test_list_and_tensor_types_get_token_and_vector_roles():
    table = pa.table(
        {
            "ids": pa.array([[1, 2], [3]], pa.list_(pa.int32())),
            "emb": pa.array([[0.5, 1.5], [2.0, 3.0]], pa.list_(pa.float32())),
            "image": pa.FixedShapeTensorArray.from_numpy_ndarray(
                __import__("numpy").zeros((2, 1, 2, 2), dtype="float32")
            ),
            "flag": [True, False],
        }
    )
    assert open_source(table).roles == {
        "ids": ColumnRole.TOKENS,
        "emb": ColumnRole.VECTOR,
        "image": ColumnRole.VECTOR,
        "flag": ColumnRole.BOOLEAN,
    }


def test_override_that_fits_wins_and_one_that_does_not_is_an_error():
    table = pa.table({"code": [1, 2, 2, 3], "name": ["a", "b", "c", "d"]})
    assert open_source(table, roles={"code": "categorical"}).roles["code"] is ColumnRole.CATEGORICAL
    with pytest.raises(DataError, match="cannot treat a string column as numeric") as caught:
        _ = open_source(table, roles={"name": "numeric"}).roles
    assert caught.value.column == "name"
    with pytest.raises(DataError, match="unknown role 'fancy'"):
        _ = open_source(table, roles={"name": "fancy"}).roles
    with pytest.raises(DataError, match="columns the source does not have: nope"):
        _ = open_source(table, roles={"nope": "numeric"}).roles


def test_null_typed_column_has_no_role():
    table = pa.table({"x": [1.0, 2.0], "empty": pa.nulls(2)})
    with pytest.raises(AllNullColumnError) as caught:
        _ = open_source(table).roles
    assert caught.value.column == "empty"
    assert open_source(table, roles={"empty": "numeric"}).roles["empty"] is ColumnRole.NUMERIC


def _side(table):
    stream = open_source(table)
    return stream.schema, stream.roles


def test_alignment_compares_shared_columns_and_names_the_rest(penguins):
    reference = pa.Table.from_pandas(penguins, preserve_index=False)
    candidate = reference.drop_columns(["sex"]).append_column("row_id", pa.array(range(344)))
    alignment = align_schemas(*_side(reference), *_side(candidate))
    assert "sex" not in alignment.roles and "row_id" not in alignment.roles
    assert alignment.reference_only == ("sex",)
    assert alignment.candidate_only == ("row_id",)
    assert alignment.notes()[0] == "not in the candidate, not compared: sex"
    with pytest.raises(SchemaMismatchError, match="the candidate lacks: sex"):
        align_schemas(*_side(reference), *_side(candidate), strict=True)


def test_alignment_uses_the_reference_role_when_the_candidate_type_allows_it():
    reference = open_source(pa.table({"code": [1, 2, 3]}), roles={"code": "categorical"})
    candidate = open_source(pa.table({"code": [1, 1, 2]}))
    alignment = align_schemas(reference.schema, reference.roles, candidate.schema, candidate.roles)
    assert alignment.roles == {"code": ColumnRole.CATEGORICAL}
    assert alignment.role_changes == (
        "'code' is numeric in the candidate, compared as categorical",
    )


def test_alignment_lists_every_conflict_at_once():
    reference = pa.table({"a": [1.0, 2.0], "b": [1.0, 2.0]})
    candidate = pa.table({"a": ["x", "y"], "b": ["p", "q"]})
    with pytest.raises(SchemaMismatchError) as caught:
        align_schemas(*_side(reference), *_side(candidate))
    message = str(caught.value)
    assert "'a' is numeric (double) in the reference but categorical (string)" in message
    assert "'b' is numeric" in message


def test_alignment_without_shared_columns_is_an_error():
    with pytest.raises(SchemaMismatchError, match="no column in common"):
        align_schemas(*_side(pa.table({"a": [1.0]})), *_side(pa.table({"b": [1.0]})))


def test_repeated_column_names_from_any_source_are_an_error():
    table = pa.Table.from_arrays([pa.array([1.0]), pa.array([2.0])], names=["a", "a"])
    with pytest.raises(DataError, match="column names appear more than once: a"):
        _ = open_source(table).roles


def test_keys_uuids_and_row_numbers_are_identifiers(penguins):
    import uuid

    import numpy as np

    rows = len(penguins)
    table = penguins.assign(
        key=[str(uuid.UUID(int=i)) for i in range(rows)],
        row=np.arange(rows) + 10_000,  # a row number, as CSV gives it: float64
        code=np.arange(rows).astype(str),
    ).astype({"row": float})
    assert open_source(table).identifiers == ("key", "row", "code")


def test_measurements_and_repeated_ids_are_not_identifiers(penguins):
    import numpy as np

    raw = open_source("example:penguins-raw")  # `Individual ID`: 190 birds in 344 rows
    assert raw.identifiers == ()
    rng = np.random.default_rng(0)
    table = pa.table(
        {
            "distinct_floats": rng.normal(size=500),  # continuous: all different, not a key
            "sparse_integers": rng.choice(10**9, 500, replace=False),  # span >> count
        }
    )
    assert open_source(table).identifiers == ()
    few = pa.table({"code": [str(i) for i in range(50)]})  # too few rows to tell
    assert open_source(few).identifiers == ()


def test_a_role_given_for_an_identifier_keeps_it(penguins):
    table = penguins.assign(key=[f"bird-{i}" for i in range(len(penguins))])
    assert open_source(table, roles={"key": "categorical"}).identifiers == ()


def test_distinct_names_with_spaces_are_not_identifiers():
    # Titles and names repeating is collapse to be seen, not a key to leave out.
    names = pa.table({"title": [f"Song number {i}" for i in range(200)], "x": list(range(200))})
    assert open_source(names).roles["title"] is ColumnRole.TEXT
    short = pa.table({"name": [f"Ann {chr(65 + i % 26)}{i}" for i in range(200)]})
    assert open_source(short).roles["name"] is ColumnRole.CATEGORICAL
    assert open_source(short).identifiers == ()
