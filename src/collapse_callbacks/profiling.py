"""From two sources to a Comparison, without deciding anything (for tests and tools)."""

from __future__ import annotations

from typing import Any

from collapse_callbacks.comparison import DEFAULT_SPLITS, Comparison
from collapse_callbacks.data.schema import SchemaAlignment
from collapse_callbacks.profile.table import DEFAULT_SAMPLE_ROWS


def compare_sources(
    reference: Any,
    candidate: Any,
    *,
    alpha: float = 0.01,
    seed: int = 0,
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
    n_splits: int = DEFAULT_SPLITS,
    max_rows: int | None = None,
) -> tuple[Comparison, SchemaAlignment]:
    """Profile ``reference`` and ``candidate`` (anything ``open_source`` reads) and pair them."""
    from collapse_callbacks.gate import CollapseGate

    gate = CollapseGate(
        reference,
        alpha=alpha,
        seed=seed,
        sample_rows=sample_rows,
        n_splits=n_splits,
        max_rows=max_rows,
    )
    return gate.compare(candidate)
