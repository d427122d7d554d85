"""Vector and tensor columns on real data: scikit-learn's bundled 8x8 digit scans as
``[1, 8, 8]`` images, and as 300-dimensional embeddings (a fixed random projection of
their pixels). Known answers: a disjoint real split passes; blur loses high
frequencies; halved variance narrows the spread; repeated images are duplicates that
cover little of the reference."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from scipy import ndimage

from collapse_callbacks.comparison import Part
from collapse_callbacks.data.tensors import arrays_to_batch
from collapse_callbacks.dimensions import vectors
from collapse_callbacks.dimensions.base import SignalKind
from collapse_callbacks.profiling import compare_sources

ALPHA = 0.01


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    from sklearn.datasets import load_digits

    return load_digits().images.astype(np.float32)[:, None]


@pytest.fixture(scope="module")
def halves(images) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(0).permutation(len(images))
    half = len(images) // 2
    return images[order[:half]], images[order[half:]]


PROJECTION = np.random.default_rng(1).normal(size=(64, 300)).astype(np.float32) / np.sqrt(64)


def table(images: np.ndarray, embedding: bool = True) -> pa.Table:
    fields = {"image": images}
    if embedding:
        fields["embedding"] = images.reshape(len(images), -1) @ PROJECTION
    return pa.Table.from_batches([arrays_to_batch(fields)])


def compare(reference, candidate, seed: int = 0):
    reference = reference if isinstance(reference, pa.Table) else table(reference)
    candidate = candidate if isinstance(candidate, pa.Table) else table(candidate)
    comparison, _ = compare_sources(reference, candidate, alpha=ALPHA, seed=seed)
    return comparison


def all_signals(comparison) -> list:
    return [s for compute in vectors.SIGNALS.values() for s in compute(comparison)[0]]


def one(signals, name: str, column: str = "image"):
    (found,) = [s for s in signals if s.name == name and s.column == column]
    return found


def fired(signals) -> set[tuple[str, str]]:
    return {(s.name, s.column) for s in signals if s.fires(ALPHA)}


def box_blur(x: np.ndarray) -> np.ndarray:
    return ndimage.uniform_filter(x, size=(1, 1, 3, 3), mode="nearest")


@pytest.fixture(scope="module")
def real_split(halves):
    return all_signals(compare(*halves))


def test_a_disjoint_real_split_passes(real_split):
    names = {(s.name, s.column) for s in real_split}
    for column in ("image", "embedding"):
        for name in (
            "vector_spread",
            "vector_mean_shift",
            "vector_pairwise_distance",
            "vector_coverage",
            "vector_duplicate_rate",
        ):
            assert (name, column) in names
    # Only the image has a 2-D spectrum; an embedding's coordinates have no order.
    assert ("high_frequency_energy", "image") in names
    assert ("band_profile", "image") in names
    assert not {n for n, c in names if c == "embedding"} & {"high_frequency_energy", "band_profile"}
    # No missing vectors anywhere: no missing-share signal.
    assert "vector_missing_share" not in {n for n, _ in names}
    assert fired(real_split) == set()
    for s in real_split:
        assert s.p_value > ALPHA / len(real_split), s
        assert s.effect < 0.5 * s.tolerance, s
        assert s.noise < 0.5 * s.tolerance, s
    spread = one(real_split, "vector_spread")
    assert spread.reference_value == pytest.approx(1.0, abs=0.02)
    assert spread.value == pytest.approx(1.0, abs=0.05)
    assert one(real_split, "high_frequency_energy").value == pytest.approx(1.0, abs=0.1)
    assert one(real_split, "vector_coverage").reference_value > 0.9


def test_blurred_images_lose_their_high_frequencies(halves):
    reference, candidate = halves
    signals = all_signals(compare(reference, box_blur(candidate)))
    high = one(signals, "high_frequency_energy")
    assert high.kind is SignalKind.NARROWING
    # A 3x3 box blur keeps a ninth of the power at half the Nyquist frequency and less
    # beyond: the candidate keeps about a sixth of the reference's high-frequency share.
    assert high.value < 0.3
    assert high.effect > 0.7
    assert ("high_frequency_energy", "image") in fired(signals)
    assert high.sentence.startswith("`image` keeps ")
    assert "high-frequency energy" in high.sentence
    assert ("band_profile", "image") in fired(signals)
    # Blurring also averages pixels together: less spread across rows.
    assert ("vector_spread", "image") in fired(signals)
    assert ("vector_duplicate_rate", "image") not in fired(signals)


def test_a_sharpened_candidate_is_no_loss_of_high_frequencies_but_changes_the_profile(halves):
    reference, candidate = halves
    sharpened = np.clip(2 * candidate - box_blur(candidate), 0, None).astype(np.float32)
    signals = all_signals(compare(reference, sharpened, seed=1))
    high = one(signals, "high_frequency_energy")
    assert high.value > 1.2
    assert high.p_value > 0.5  # one-sided: more high frequencies is not narrowing
    profile = one(signals, "band_profile")
    assert profile.kind is SignalKind.STRUCTURE
    assert ("band_profile", "image") in fired(signals)


def test_halved_variance_fails_the_spread(halves):
    reference, candidate = halves
    mean = reference.mean(axis=0)
    shrunk = (mean + (candidate - mean) * np.sqrt(0.5)).astype(np.float32)
    signals = all_signals(compare(reference, shrunk))
    for column in ("image", "embedding"):
        spread = one(signals, "vector_spread", column)
        assert spread.kind is SignalKind.NARROWING
        assert spread.value == pytest.approx(np.sqrt(0.5), abs=0.04)
        assert ("vector_spread", column) in fired(signals)
        assert ("vector_pairwise_distance", column) in fired(signals)
        assert ("vector_mean_shift", column) not in fired(signals)
        assert ("vector_duplicate_rate", column) not in fired(signals)
    assert "keeps 71% of the reference's spread" in one(signals, "vector_spread").sentence


def test_a_mild_shrink_is_within_tolerance(halves):
    reference, candidate = halves
    mean = reference.mean(axis=0)
    mild = (mean + (candidate - mean) * 0.97).astype(np.float32)
    signals = all_signals(compare(reference, mild))
    assert fired(signals) == set()


def test_a_few_images_repeated_are_duplicates_that_cover_little(halves):
    reference, candidate = halves
    repeated = np.resize(candidate[:20], candidate.shape)
    signals = all_signals(compare(reference, repeated))
    for column in ("image", "embedding"):
        duplicates = one(signals, "vector_duplicate_rate", column)
        assert duplicates.value > 0.9
        assert duplicates.reference_value < 0.01
        assert ("vector_duplicate_rate", column) in fired(signals)
        coverage = one(signals, "vector_coverage", column)
        assert coverage.value < 0.3
        assert ("vector_coverage", column) in fired(signals)
    # Whole-data figures: 20 distinct images of 898, so 878 repeat an earlier one.
    assert one(signals, "vector_duplicate_rate").value == pytest.approx(878 / 898)
    assert "repeat an earlier one exactly" in one(signals, "vector_duplicate_rate").sentence


def test_one_channel_narrowed_is_named(halves):
    """Three channels (the scan, its transpose, its mirror image); the third one's
    variance halved."""
    reference, candidate = (
        np.concatenate([x, np.swapaxes(x, 2, 3), x[..., ::-1]], axis=1) for x in halves
    )
    mean = reference[:, 2].mean(axis=0)
    candidate = candidate.copy()
    candidate[:, 2] = mean + (candidate[:, 2] - mean) * np.sqrt(0.5)
    comparison = compare(table(reference, False), table(candidate, False))
    signals, statistics = vectors.SIGNALS["distribution_fidelity"](comparison)
    spread = one(signals, "vector_spread")
    assert spread.fires(ALPHA)
    assert spread.value == pytest.approx(np.sqrt(0.5), abs=0.04)
    assert spread.sentence.startswith("`image` channel 2 keeps ")
    assert statistics["vector_spread[image]"] == spread.value


def test_missing_vectors_are_a_shift_and_encode_finitely(halves):
    reference, candidate = halves
    base = table(candidate)
    missing = np.zeros(len(candidate), dtype=bool)
    missing[::10] = True
    values = base.column("embedding").combine_chunks().values
    embedding = pa.FixedSizeListArray.from_arrays(values, 300, mask=pa.array(missing))
    base = base.set_column(base.schema.get_field_index("embedding"), "embedding", embedding)
    comparison = compare(reference, base)
    signals = all_signals(comparison)
    share = one(signals, "vector_missing_share", "embedding")
    assert share.kind is SignalKind.SHIFT
    assert share.value == pytest.approx(0.1, abs=0.03)
    assert share.reference_value == pytest.approx(0.0, abs=0.005)
    assert share.fires(ALPHA)
    assert "have no `embedding` vector" in share.sentence
    # The other signals see the present vectors only: nothing else moved.
    assert fired(signals) == {("vector_missing_share", "embedding")}
    # The reference has no missing vectors, so the features have no indicator; the
    # candidate's missing rows encode as the reference's mean.
    features = vectors.VectorFeatures(comparison, "embedding")
    view = comparison.candidate_view
    encoded = features.encode(Part(view, np.arange(view.rows)))
    assert encoded.shape == (view.rows, 32)
    assert np.isfinite(encoded).all()
    absent = np.isnan(view.tensors("embedding")).all(axis=1)
    assert absent.sum() == missing.sum()
    assert (encoded[absent] == 0).all()
    assert (np.abs(encoded[~absent]).sum(axis=1) > 0).all()


def test_vector_features_are_deterministic_finite_and_scaled(halves):
    reference, candidate = halves
    first, second = compare(reference, candidate), compare(reference, candidate)
    for column in ("image", "embedding"):
        features = vectors.VectorFeatures(first, column)
        assert features.width == 32
        assert len(features.names()) == 32
        assert features.names()[0] == f"{column} (principal axis 1)"
        view = first.reference_view
        encoded = features.encode(Part(view, np.arange(view.rows)))
        assert encoded.shape == (view.rows, 32)
        assert encoded.dtype == np.float64
        assert np.isfinite(encoded).all()
        distances = np.linalg.norm(encoded[:300, None] - encoded[None, :300], axis=-1)
        assert np.median(distances[np.triu_indices(300, k=1)]) == pytest.approx(1.0, abs=0.1)
        again = vectors.VectorFeatures(second, column).encode(
            Part(second.candidate_view, np.arange(second.candidate_view.rows))
        )
        np.testing.assert_array_equal(
            features.encode(Part(first.candidate_view, np.arange(first.candidate_view.rows))),
            again,
        )
    # Wider than the vector: every coordinate, centred and scaled; past PROJECTION_WIDTH
    # a random projection.
    image = vectors.VectorFeatures(first, "image", width=100)
    assert image.width == 64
    assert image.names()[1] == "image[1]"
    embedding = vectors.VectorFeatures(first, "embedding", width=400)
    assert embedding.width == vectors.PROJECTION_WIDTH
    assert embedding.names()[1] == "embedding (projection 2)"


def test_same_seed_gives_identical_signals(halves, real_split):
    assert all_signals(compare(*halves)) == real_split


@pytest.mark.parametrize(
    ("shape", "channels_last", "channels", "spatial", "groups"),
    [
        ((300,), False, 1, None, 1),
        ((8, 8), False, 1, (8, 8), 1),
        ((1, 8, 8), False, 1, (8, 8), 1),
        ((3, 32, 24), False, 3, (32, 24), 3),
        ((32, 24, 3), True, 3, (32, 24), 3),
        ((64, 7, 7), False, 64, (7, 7), 1),
        ((2, 5, 8, 8), False, 10, (8, 8), 1),
        ((1, 3, 3), False, 1, None, 1),  # too small for a spectrum
    ],
)
def test_layouts(shape, channels_last, channels, spatial, groups):
    layout = vectors.Layout.of(shape)
    assert (layout.channels_last, layout.channels, layout.spatial, layout.groups) == (
        channels_last,
        channels,
        spatial,
        groups,
    )
    x = np.arange(4 * int(np.prod(shape)), dtype=np.float32).reshape(4, *shape)
    reduced = layout.reduced(x)
    assert reduced.shape[:2] == (4, groups)
    if spatial is None or max(spatial) <= vectors.POOL_SIDE:
        assert reduced.size == x.size  # nothing pooled


def test_pooling_averages_blocks():
    layout = vectors.Layout.of((1, 40, 32))
    x = np.random.default_rng(0).normal(size=(2, 1, 40, 32)).astype(np.float32)
    reduced = layout.reduced(x)
    # 40 -> 13 rows of 3 (the last row cropped), 32 -> 16 columns of 2.
    assert reduced.shape == (2, 1, 13 * 16)
    np.testing.assert_allclose(reduced[0, 0, 0], x[0, 0, :3, :2].mean(), rtol=1e-5)


def test_band_matrix_counts_the_full_spectrum_energy():
    """Parseval: the bands of the one-sided spectrum hold all the energy but the mean."""
    rng = np.random.default_rng(0)
    for height, width in ((8, 8), (7, 9), (16, 10)):
        matrix, _ = vectors._band_matrix(height, width)
        x = rng.normal(size=(height, width))
        x -= x.mean()
        power = np.abs(np.fft.rfft2(x)) ** 2
        assert (power.ravel() @ matrix).sum() == pytest.approx(height * width * (x**2).sum())


def test_columns_that_do_not_apply_are_skipped(halves):
    reference, candidate = halves
    # No vector columns: nothing to say.
    numbers = pa.table({"x": np.arange(400.0)})
    comparison = compare(numbers, pa.table({"x": np.arange(400.0) + 0.5}))
    for compute in vectors.SIGNALS.values():
        assert compute(comparison) == ([], {})

    def mixed(images: np.ndarray) -> pa.Table:
        tiny = pa.Table.from_batches([arrays_to_batch({"tiny": images[:, :, 2:5, 2:5].copy()})])
        ragged = pa.array(
            [list(map(float, row[0, 0, : 1 + i % 5])) for i, row in enumerate(images)],
            pa.list_(pa.float32()),
        )
        return tiny.append_column("ragged", ragged)

    comparison = compare(mixed(reference), mixed(candidate))
    signals = all_signals(comparison)
    # A [1, 3, 3] tensor is too small for a spectrum but has the other statistics.
    assert {s.column for s in signals} == {"tiny"}
    names = {s.name for s in signals}
    assert {"vector_spread", "vector_coverage"} <= names
    assert not names & {"high_frequency_energy", "band_profile"}
    # Rows of different lengths have no per-position statistics: the ragged column is
    # skipped.
    assert "ragged" not in {c.name for c in vectors.vector_columns(comparison)}


def test_images_from_a_dataloader_through_the_gate():
    """End to end: image batches ``[B, 1, 8, 8]`` from a torch DataLoader, the verdict."""
    torch = pytest.importorskip("torch")
    from sklearn.datasets import load_digits

    from collapse_callbacks import CollapseGate

    images = load_digits().images.astype(np.float32)[:, None, :, :] / 16.0
    order = np.random.default_rng(0).permutation(len(images))
    reference, candidate = images[order[:900]], images[order[900:]]
    padded = np.pad(candidate, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge")
    blurred = sum(padded[:, :, i : i + 8, j : j + 8] for i in range(3) for j in range(3)) / 9.0

    def loader(array):
        return torch.utils.data.DataLoader(torch.from_numpy(array), batch_size=128)

    gate = CollapseGate(reference=loader(reference))
    assert not gate.check(loader(candidate)).collapsed
    report = gate.check(loader(blurred.astype(np.float32)))
    assert report.collapsed
    fired = {s.name for d in report.dimensions.values() for s in d.firing}
    assert "high_frequency_energy" in fired
