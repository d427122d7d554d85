from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from collapse_callbacks import DataError, Profile, build_profile, open_source
from collapse_callbacks.comparison import Comparison
from collapse_callbacks.gate import run_dimensions


def _profile(frame, sample_rows=64, seed=0):
    stream = open_source(frame)
    return build_profile(stream, stream.roles, sample_rows=sample_rows, seed=seed)


def test_bytes_round_trip_keeps_every_statistic(penguins):
    profile = _profile(penguins)
    back = Profile.from_bytes(profile.to_bytes())
    assert back.result() == profile.result()
    assert back.roles == profile.roles and back.rows == 344
    assert back.sample.result().equals(profile.sample.result())
    np.testing.assert_array_equal(
        back.states["body_mass_g"].sketch.counts, profile.states["body_mass_g"].sketch.counts
    )
    assert back.duplicates.duplicate_fraction() == profile.duplicates.duplicate_fraction()
    np.testing.assert_array_equal(
        back.comoments.result().covariance, profile.comoments.result().covariance
    )


def test_whole_data_duplicate_states_of_text_and_vectors_survive_the_round_trip():
    rng = np.random.default_rng(0)
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
    docs = [" ".join(rng.choice(words, size=12)) for _ in range(200)]
    vectors = rng.normal(size=(200, 4))
    table = pa.table(
        {
            "text": docs + docs[:50],
            "embedding": pa.array(
                [list(v) for v in [*vectors, *vectors[:50]]], pa.list_(pa.float64(), 4)
            ),
        }
    )
    profile = _profile(table)
    back = Profile.from_bytes(profile.to_bytes())
    text, vector = back.states["text"], back.states["embedding"]
    assert text.documents.documents == 250 and text.documents.fraction() >= 0.2
    assert text.documents.fraction() == profile.states["text"].documents.fraction()
    assert vector.duplicates.rows == 250
    assert vector.duplicates.duplicate_fraction() == pytest.approx(0.2)
    assert back.result() == profile.result()


def test_profiles_merged_after_a_round_trip_equal_the_whole(penguins):
    table = pa.Table.from_pandas(penguins, preserve_index=False)
    roles = open_source(table).roles
    left = build_profile(table.slice(0, 150).to_batches(), roles, sample_rows=32)
    right = build_profile(table.slice(150).to_batches(), roles, sample_rows=32)
    whole = build_profile(table.to_batches(), roles, sample_rows=32)
    merged = Profile.from_bytes(left.to_bytes()).merge(Profile.from_bytes(right.to_bytes()))
    got, expected = merged.result().to_dict(), whole.result().to_dict()
    assert got["rows"] == expected["rows"] == 344
    for name, column in expected["columns"].items():
        for key, value in column.items():
            if isinstance(value, float):
                assert got["columns"][name][key] == pytest.approx(value, rel=1e-12), (name, key)
            else:
                assert got["columns"][name][key] == value, (name, key)
    assert merged.duplicates.duplicate_fraction() == whole.duplicates.duplicate_fraction()


def test_a_comparison_of_deserialized_profiles_gives_the_same_evidence(breast_cancer):
    reference, candidate = (
        _profile(breast_cancer.iloc[:280], 1000),
        _profile(breast_cancer.iloc[280:], 1000, 1),
    )
    roles = reference.roles
    direct, _ = run_dimensions(Comparison(reference, candidate, roles, alpha=0.01, seed=0))
    shipped, _ = run_dimensions(
        Comparison(
            Profile.from_bytes(reference.to_bytes()),
            Profile.from_bytes(candidate.to_bytes()),
            roles,
            alpha=0.01,
            seed=0,
        )
    )
    assert [e.signals for e in shipped] == [e.signals for e in direct]


@pytest.mark.parametrize("data", [b"", b"garbage", b"CCPROF1\n\x05\x00"])
def test_bad_bytes_are_a_data_error(data):
    with pytest.raises(DataError):
        Profile.from_bytes(data)
