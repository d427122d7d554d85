"""Feature blocks for the row encoder: text and token columns (hashed n-grams), vector
and tensor columns (a projection), and the user's own embedder.

The embedder is any callable that maps a column's values for some rows to vectors:
``embedder(values) -> [rows, d]`` (a NumPy array, a torch tensor or nested lists),
where ``values`` is a list of ``str`` for text, a list of integer lists for tokens and
a float32 array ``[rows, *shape]`` for vectors and tensors. Pass one callable for every
such column, or a mapping ``column -> callable`` for some of them. Its vectors are
standardized on the reference sample and, past ``MAX_EMBEDDING_WIDTH`` dimensions,
randomly projected; they join the classifier test and the distance-based statistics
(coverage, recall, Vendi, k-NN entropy).
"""

from __future__ import annotations

import numpy as np

from collapse_callbacks.comparison import Comparison, Part, PerView
from collapse_callbacks.data.roles import ColumnRole
from collapse_callbacks.errors import DataError

MAX_EMBEDDING_WIDTH = 64


def feature_blocks(comparison: Comparison) -> list:
    from collapse_callbacks.dimensions.sequences import SEQUENCE_ROLES, SequenceFeatures

    embedder = comparison.embedder
    blocks: list = []
    for column, role in comparison.roles.items():
        own = embedder.get(column) if isinstance(embedder, dict) else embedder
        if role in (*SEQUENCE_ROLES, ColumnRole.VECTOR) and own is not None:
            blocks.append(EmbedderFeatures(comparison, column, own))
        elif role in SEQUENCE_ROLES:
            blocks.append(SequenceFeatures(comparison, column))
        elif role is ColumnRole.VECTOR:
            from collapse_callbacks.dimensions.vectors import VectorFeatures

            blocks.append(VectorFeatures(comparison, column))
    return blocks


class EmbedderFeatures:
    """The user's embedding of a column, standardized on the reference sample."""

    def __init__(self, comparison: Comparison, column: str, embedder) -> None:
        self.column = column
        self.role = comparison.roles[column]
        self._vectors = PerView(
            comparison, lambda view: _embed(embedder, _values(view, column, self.role), column)
        )
        reference = self._vectors[comparison.reference_view]
        widths = {
            self._vectors[v].shape[1]
            for v in (comparison.reference_view, comparison.candidate_view)
        }
        if len(widths) != 1:
            raise DataError(
                f"the embedder returned vectors of different widths {sorted(widths)}",
                column=column,
            )
        self.center = reference.mean(axis=0)
        scale = reference.std(axis=0)
        self.scale = np.where(scale > 0, scale, 1.0)
        d = reference.shape[1]
        self.projection = None
        if d > MAX_EMBEDDING_WIDTH:
            rng = comparison.rng(f"embedding projection {column}")
            self.projection = rng.standard_normal((d, MAX_EMBEDDING_WIDTH)) / np.sqrt(
                MAX_EMBEDDING_WIDTH
            )
        width = d if self.projection is None else MAX_EMBEDDING_WIDTH
        # Standardized dimensions add up: scale so a typical distance is about 1.
        self.norm = np.sqrt(2.0 * width)
        self.width = width

    def names(self) -> list[str]:
        return [f"{self.column}:embedding{i}" for i in range(self.width)]

    def encode(self, part: Part) -> np.ndarray:
        x = (self._vectors[part.view][part.rows] - self.center) / self.scale
        if self.projection is not None:
            x = x @ self.projection
        return x / self.norm


def _values(view, column: str, role: ColumnRole):
    if role is ColumnRole.TEXT:
        return ["" if t is None else t for t in view.texts(column)]
    if role is ColumnRole.TOKENS:
        return [[] if v is None else v for v in view.table.column(column).to_pylist()]
    return view.tensors(column)


def _embed(embedder, values, column: str) -> np.ndarray:
    try:
        vectors = embedder(values)
    except Exception as exc:
        raise DataError(f"the embedder failed: {type(exc).__name__}: {exc}", column=column) from exc
    if hasattr(vectors, "detach"):
        vectors = vectors.detach().float().cpu().numpy()
    try:
        matrix = np.asarray(vectors, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"the embedder returned no numeric array: {exc}", column=column) from None
    rows = len(values)
    if matrix.ndim != 2 or matrix.shape[0] != rows:
        raise DataError(
            f"the embedder must return [rows, dimensions] for {rows} rows, got shape "
            f"{list(matrix.shape)}",
            column=column,
        )
    if not np.isfinite(matrix).all():
        raise DataError("the embedder returned NaN or infinite values", column=column)
    return matrix
