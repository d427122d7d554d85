"""arrays_to_batch: tensors / arrays / lists -> one RecordBatch, by the documented rules."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import torch

from collapse_callbacks.data.roles import ColumnRole, infer_roles
from collapse_callbacks.data.tensors import MAX_FEATURE_COLUMNS, arrays_to_batch
from collapse_callbacks.errors import DataError, MixedTypeError, UnsupportedBatchError


def test_one_dimensional_fields_keep_bool_int_and_float_types():
    batch = arrays_to_batch(
        {
            "flag": torch.tensor([True, False, True]),
            "count": np.array([1, 2, 3], dtype=np.int32),
            "score": torch.tensor([0.5, 1.5, -2.0], dtype=torch.float64),
            "plain": [1, 2, 3],
        }
    )
    assert batch.schema == pa.schema(
        [
            ("flag", pa.bool_()),
            ("count", pa.int32()),
            ("score", pa.float64()),
            ("plain", pa.int64()),
        ]
    )
    assert batch.to_pydict() == {
        "flag": [True, False, True],
        "count": [1, 2, 3],
        "score": [0.5, 1.5, -2.0],
        "plain": [1, 2, 3],
    }


def test_half_precision_becomes_float32_with_the_same_values():
    batch = arrays_to_batch(
        {
            "bf": torch.tensor([0.5, 1.25, -3.0], dtype=torch.bfloat16),
            "fp16": np.array([0.25, 2.0, 8.0], dtype=np.float16),
            "grid": torch.tensor([[1.5, 2.5], [3.5, 4.5], [5.5, 6.5]], dtype=torch.bfloat16),
        }
    )
    assert batch.schema.field("bf").type == pa.float32()
    assert batch.schema.field("fp16").type == pa.float32()
    assert batch.schema.field("grid_1").type == pa.float32()
    assert batch.column("bf").to_pylist() == [0.5, 1.25, -3.0]
    assert batch.column("fp16").to_pylist() == [0.25, 2.0, 8.0]
    assert batch.column("grid_0").to_pylist() == [1.5, 3.5, 5.5]
    assert batch.column("grid_1").to_pylist() == [2.5, 4.5, 6.5]


def test_two_dimensional_floats_become_one_column_per_feature():
    x = np.arange(12, dtype=np.float64).reshape(4, 3)
    batch = arrays_to_batch({"x": x})
    assert batch.schema.names == ["x_0", "x_1", "x_2"]
    assert batch.column("x_0").to_pylist() == [0.0, 3.0, 6.0, 9.0]
    assert batch.column("x_2").to_pylist() == [2.0, 5.0, 8.0, 11.0]
    assert batch.schema.field("x_1").type == pa.float64()


def test_two_dimensional_ints_without_a_token_name_are_feature_columns():
    batch = arrays_to_batch({"counts": torch.tensor([[1, 2], [3, 4]])})
    assert batch.to_pydict() == {"counts_0": [1, 3], "counts_1": [2, 4]}


def test_non_contiguous_tensor_is_read_in_logical_order():
    x = torch.arange(6.0).reshape(2, 3).t()  # [3, 2], a transposed view
    batch = arrays_to_batch({"x": x})
    assert batch.to_pydict() == {"x_0": [0.0, 1.0, 2.0], "x_1": [3.0, 4.0, 5.0]}


def test_feature_columns_up_to_the_limit_then_one_vector_column():
    at_limit = arrays_to_batch({"e": np.ones((2, MAX_FEATURE_COLUMNS))})
    assert at_limit.num_columns == MAX_FEATURE_COLUMNS
    assert at_limit.schema.names[-1] == f"e_{MAX_FEATURE_COLUMNS - 1}"

    wide = np.arange(2 * 300, dtype=np.float64).reshape(2, 300)
    batch = arrays_to_batch({"e": wide})
    assert batch.schema == pa.schema([("e", pa.list_(pa.float32(), 300))])
    rows = batch.column("e").to_pylist()
    assert rows[0] == [float(v) for v in range(300)]
    assert rows[1] == [float(v) for v in range(300, 600)]


def test_token_ids_keep_only_masked_positions():
    input_ids = torch.tensor([[101, 7, 8, 102, 0], [101, 9, 102, 0, 0], [101, 102, 0, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 0, 0], [1, 1, 0, 0, 0]])
    batch = arrays_to_batch({"input_ids": input_ids}, masks={"input_ids": mask})
    assert batch.schema == pa.schema([("input_ids", pa.large_list(pa.int64()))])
    assert batch.column("input_ids").to_pylist() == [[101, 7, 8, 102], [101, 9, 102], [101, 102]]


def test_token_ids_padded_with_a_real_token_value_still_drop_the_padding():
    # pad id 7 is also a real token in row 0: only the mask decides
    input_ids = np.array([[7, 7, 7], [5, 7, 7]])
    mask = np.array([[1, 1, 0], [1, 0, 0]], dtype=bool)
    batch = arrays_to_batch({"input_ids": input_ids}, masks={"input_ids": mask})
    assert batch.column("input_ids").to_pylist() == [[7, 7], [5]]


def test_labels_drop_the_ignore_index_and_unmasked_positions():
    labels = torch.tensor([[-100, 5, 6, -100], [3, -100, -100, -100]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])
    batch = arrays_to_batch({"labels": labels}, masks={"labels": mask})
    assert batch.column("labels").to_pylist() == [[5, 6], [3]]
    unmasked = arrays_to_batch({"labels": labels})
    assert unmasked.column("labels").to_pylist() == [[5, 6], [3]]


def test_token_names_without_a_mask_keep_every_position():
    batch = arrays_to_batch(
        {
            "token_type_ids": torch.tensor([[0, 0, 1], [0, 1, 1]], dtype=torch.int32),
            "decoder_input_ids": np.array([[4, 5, 6], [7, 8, 9]], dtype=np.uint8),
        }
    )
    assert batch.schema.field("token_type_ids").type == pa.large_list(pa.int64())
    assert batch.to_pydict() == {
        "token_type_ids": [[0, 0, 1], [0, 1, 1]],
        "decoder_input_ids": [[4, 5, 6], [7, 8, 9]],
    }
    # a token column is what the roles call tokens, even one that is -100 in other fields
    roles = infer_roles(batch.schema, [batch])
    assert roles == {"token_type_ids": ColumnRole.TOKENS, "decoder_input_ids": ColumnRole.TOKENS}


def test_a_mask_makes_any_integer_matrix_a_token_sequence():
    batch = arrays_to_batch(
        {"codes": np.array([[3, 4, 0], [5, 0, 0]])}, masks={"codes": [[1, 1, 0], [1, 0, 0]]}
    )
    assert batch.column("codes").to_pylist() == [[3, 4], [5]]


def test_float_labels_are_features_not_tokens():
    batch = arrays_to_batch({"labels": torch.tensor([[1.0, 0.0], [0.0, 1.0]])})
    assert batch.to_pydict() == {"labels_0": [1.0, 0.0], "labels_1": [0.0, 1.0]}


def test_images_become_fixed_shape_tensors_that_round_trip():
    images = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    batch = arrays_to_batch({"pixel_values": images})
    column = batch.column("pixel_values")
    assert column.type == pa.fixed_shape_tensor(pa.float32(), [3, 8, 8])
    back = column.to_numpy_ndarray()
    assert back.shape == (4, 3, 8, 8)
    np.testing.assert_array_equal(back, images.numpy())


def test_image_columns_get_the_vector_role():
    batch = arrays_to_batch({"pixel_values": torch.zeros(2, 3, 8, 8)})
    assert infer_roles(batch.schema, [batch]) == {"pixel_values": ColumnRole.VECTOR}


def test_integer_images_become_float32_tensors():
    images = np.arange(2 * 2 * 2 * 3, dtype=np.uint8).reshape(2, 2, 2, 3)
    column = arrays_to_batch({"img": images}).column("img")
    assert column.type == pa.fixed_shape_tensor(pa.float32(), [2, 2, 3])
    np.testing.assert_array_equal(column.to_numpy_ndarray(), images.astype(np.float32))


def test_zero_rows_of_images_make_an_empty_tensor_column():
    batch = arrays_to_batch({"img": torch.zeros(0, 3, 4, 4)})
    assert batch.num_rows == 0
    assert batch.schema.field("img").type == pa.fixed_shape_tensor(pa.float32(), [3, 4, 4])


def test_text_becomes_a_string_column():
    batch = arrays_to_batch(
        {"text": ["a cat sat", None, "dogs"], "tag": np.array(["x", "y", "z"]), "n": [1, 2, 3]}
    )
    assert batch.schema.field("text").type == pa.string()
    assert batch.schema.field("tag").type == pa.string()
    assert batch.to_pydict() == {
        "text": ["a cat sat", None, "dogs"],
        "tag": ["x", "y", "z"],
        "n": [1, 2, 3],
    }


def test_nested_number_lists_are_arrays():
    batch = arrays_to_batch({"p": [[1.0, 2.0], [3.0, 4.0]], "q": (True, False)})
    assert batch.to_pydict() == {"p_0": [1.0, 3.0], "p_1": [2.0, 4.0], "q": [True, False]}


def test_tensors_that_need_grad_are_detached():
    x = torch.tensor([[1.0, 2.0]], requires_grad=True) * 2
    assert arrays_to_batch({"x": x}).to_pydict() == {"x_0": [2.0], "x_1": [4.0]}


def test_the_batch_does_not_share_memory_with_its_inputs():
    array = np.array([1.0, 2.0])
    tensor = torch.tensor([[1, 2], [3, 4]])
    images = np.zeros((2, 1, 2, 2), dtype=np.float32)
    wide = np.zeros((2, 300), dtype=np.float32)
    batch = arrays_to_batch({"a": array, "t": tensor, "img": images, "wide": wide})
    array[0] = 99.0
    tensor[0, 0] = 99
    images[0, 0, 0, 0] = 99.0
    wide[0, 0] = 99.0
    assert batch.column("a").to_pylist() == [1.0, 2.0]
    assert batch.column("t_0").to_pylist() == [1, 3]
    assert batch.column("img").to_numpy_ndarray()[0, 0, 0, 0] == 0.0
    assert batch.column("wide").to_pylist()[0][0] == 0.0


# --- refusals ------------------------------------------------------------------------


def _refused(error, fields, *, masks=None, where="DataLoader batch 3"):
    with pytest.raises(error) as info:
        arrays_to_batch(fields, masks=masks, where=where)
    return info.value


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (torch.tensor(3.0), "0-d scalar"),
        (np.float64(1.0), "single numpy.float64"),
        (7, "single int"),
        ("hello", "single str"),
    ],
)
def test_scalars_are_refused(value, words):
    error = _refused(UnsupportedBatchError, {"s": value})
    assert error.column == "s"
    assert words in str(error)
    assert "DataLoader batch 3" in str(error)


def test_ragged_rows_are_refused():
    error = _refused(UnsupportedBatchError, {"r": [[1, 2], [3]]})
    assert error.column == "r"
    assert "ragged" in str(error)


def test_rows_must_match_across_fields():
    error = _refused(UnsupportedBatchError, {"a": torch.zeros(3), "b": np.zeros(4)})
    assert error.column == "b"
    assert "has 4 rows but 'a' has 3" in str(error)
    assert str(error).endswith("(DataLoader batch 3)")


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (np.array([{"a": 1}, None], dtype=object), "object array"),
        (np.array([1 + 2j, 3j]), "complex dtype complex128"),
        (torch.tensor([1 + 2j, 3j]), "complex dtype torch.complex64"),
        (np.array(["2024-01-01"], dtype="datetime64[D]"), "not bool, integer or float"),
        (np.array([[b"a"], [b"b"]]), "not bool, integer or float"),
        ([{"k": 1}], "holding a dict"),
        ({"nested": [1, 2]}, "is a dict"),
        (object(), "is a object"),
        ([10**30, 1], "integers beyond 64 bits"),
        (np.array([["a", "b"], ["c", "d"]]), "2-D array of strings"),
    ],
)
def test_values_that_are_not_columns_are_refused(value, words):
    error = _refused(UnsupportedBatchError, {"v": value})
    assert error.column == "v"
    assert words in str(error)
    assert "DataLoader batch 3" in str(error)


def test_text_mixed_with_numbers_is_a_mixed_type_error():
    error = _refused(MixedTypeError, {"m": ["a", 1, "b"]})
    assert error.column == "m"
    assert "mixes strings with numbers" in str(error)


def test_none_among_numbers_is_refused():
    error = _refused(DataError, {"n": [1.0, None]})
    assert error.column == "n"


def test_a_mask_with_another_shape_names_both():
    error = _refused(
        UnsupportedBatchError,
        {"input_ids": torch.ones(2, 5, dtype=torch.long)},
        masks={"input_ids": torch.ones(2, 6)},
    )
    assert error.column == "input_ids"
    assert "the mask of 'input_ids' has shape [2, 6] but 'input_ids' has shape [2, 5]" in str(error)


def test_a_mask_on_floats_is_refused():
    error = _refused(UnsupportedBatchError, {"x": torch.ones(2, 3)}, masks={"x": torch.ones(2, 3)})
    assert "only a 2-D integer token sequence can have one" in str(error)


def test_a_mask_for_a_missing_field_is_refused():
    error = _refused(DataError, {"x": [1, 2]}, masks={"input_ids": [[1], [1]]})
    assert "masks given for fields that do not exist: input_ids" in str(error)


def test_two_fields_making_one_column_name_are_refused():
    error = _refused(DataError, {"x": np.zeros((2, 2)), "x_1": np.zeros(2)})
    assert error.column == "x_1"
    assert "two fields make a column named 'x_1'" in str(error)


def test_a_row_without_values_is_refused():
    error = _refused(UnsupportedBatchError, {"x": np.zeros((3, 0))})
    assert "has shape [3, 0]" in str(error)


def test_no_fields_is_refused():
    error = _refused(UnsupportedBatchError, {})
    assert "no fields" in str(error)


def test_token_ids_beyond_int64_are_refused():
    ids = np.array([[1, 2**63 + 5]], dtype=np.uint64)
    error = _refused(DataError, {"input_ids": ids})
    assert error.column == "input_ids"
    assert "int64" in str(error)


def test_without_where_the_message_has_no_context():
    with pytest.raises(UnsupportedBatchError) as info:
        arrays_to_batch({"s": torch.tensor(1)})
    assert str(info.value) == (
        "column 's': is a 0-d scalar, not a batch of rows; every field needs a leading row "
        "dimension"
    )
