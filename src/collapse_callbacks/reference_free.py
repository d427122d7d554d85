"""Checks that need no reference: duplicates, degenerate columns, entropy floors, and
text repeating itself within documents.

Without real data to compare against there is no null distribution, so these are
threshold checks on the candidate alone, not calibrated tests, and the report says so:
the eight dimensions are "not run" and the verdict is marked reference-free.
"""

from __future__ import annotations

import math
import time

from collapse_callbacks._version import __version__
from collapse_callbacks.detector import DIMENSIONS, score_dimension
from collapse_callbacks.dimensions.base import (
    DimensionEvidence,
    DimensionResult,
    Signal,
    SignalKind,
)
from collapse_callbacks.profile.columns import (
    CategoricalState,
    NumericState,
    TextState,
    TokenState,
)
from collapse_callbacks.profile.table import Profile
from collapse_callbacks.report import GateReport, Sizes

# Real tabular data rarely repeats whole rows; more than 5% repeats is worth stopping for.
MAX_DUPLICATE_FRACTION = 0.05
# Normalized entropy (entropy / log(distinct)) below this means one value dominates.
MIN_NORMALIZED_ENTROPY = 0.1
# Real prose repeats 2-3% of its trigrams within a document (Python's documentation, the
# King James Bible in 3-verse documents, Debian's fortunes); text looping on itself, the
# classic failure of a degenerate language model, repeats far more.
MAX_REPEATED_TRIGRAMS = 0.15


def _signal(name, column, value, limit, effect, sentence) -> Signal:
    # A threshold check: the data either crosses it or not, so p is 0 or 1.
    crossed = effect > 0
    return Signal(
        name=name,
        kind=SignalKind.NARROWING,
        column=column,
        value=value,
        reference_value=limit,
        effect=effect,
        tolerance=0.0,
        noise=0.0,
        p_value=0.0 if crossed else 1.0,
        sentence=sentence,
    )


def reference_free_evidence(profile: Profile) -> DimensionEvidence:
    signals = []
    duplicates = profile.duplicates.duplicate_fraction()
    signals.append(
        _signal(
            "duplicate_rows",
            None,
            duplicates,
            MAX_DUPLICATE_FRACTION,
            duplicates - MAX_DUPLICATE_FRACTION,
            f"{duplicates:.1%} of the candidate's rows repeat an earlier row "
            f"(threshold {MAX_DUPLICATE_FRACTION:.0%})",
        )
    )
    for name, state in profile.states.items():
        if isinstance(state, NumericState) and state.moments.count > 1:
            constant = state.moments.min == state.moments.max
            signals.append(
                _signal(
                    "constant_column",
                    name,
                    float(state.moments.max - state.moments.min),
                    0.0,
                    1.0 if constant else -1.0,
                    f"`{name}` holds a single value ({state.moments.min:g}) in every row",
                )
            )
        if isinstance(state, CategoricalState) and state.count > 1:
            counts = list(state.values.counts.values())
            total = sum(counts)
            entropy = -sum(c / total * math.log(c / total) for c in counts if c)
            normalized = entropy / math.log(len(counts)) if len(counts) > 1 else 0.0
            signals.append(
                _signal(
                    "entropy_floor",
                    name,
                    normalized,
                    MIN_NORMALIZED_ENTROPY,
                    MIN_NORMALIZED_ENTROPY - normalized,
                    f"`{name}` is nearly constant: normalized entropy {normalized:.2f} "
                    f"over {len(counts)} values (floor {MIN_NORMALIZED_ENTROPY})",
                )
            )
        if isinstance(state, (TextState, TokenState)) and state.sequence.ngrams > 0:
            share = state.sequence.repeated / state.sequence.ngrams
            signals.append(
                _signal(
                    "repeated_ngrams",
                    name,
                    share,
                    MAX_REPEATED_TRIGRAMS,
                    share - MAX_REPEATED_TRIGRAMS,
                    f"{share:.1%} of `{name}`'s trigrams repeat one earlier in the same "
                    f"document (threshold {MAX_REPEATED_TRIGRAMS:.0%}; real prose: 2-3%)",
                )
            )
    return DimensionEvidence(
        "diversity",
        signals=tuple(signals),
        statistics={
            "duplicate_fraction": duplicates,
            "duplicates_exact": float(profile.duplicates.exact),
        },
    )


def check_reference_free(profile: Profile, gate, started: float) -> GateReport:
    result = score_dimension(reference_free_evidence(profile), gate.alpha)
    reason = "needs a reference: pass reference= (real data) to run it"
    dimensions = {name: DimensionResult.not_run(name, reason) for name in DIMENSIONS}
    return GateReport(
        score=result.score if result.score is not None else 100.0,
        collapsed=bool(result.fired),
        shift=False,
        dimensions=dimensions,
        diversity=result,
        sizes=Sizes(
            None,
            profile.rows,
            None,
            profile.sample.result().num_rows if profile.sample.result() else 0,
            None,
        ),
        alpha=gate.alpha,
        seed=gate.seed,
        seconds=time.perf_counter() - started,
        version=__version__,
        reasons=result.sentences,
        notes=(
            "reference-free: duplicates, constant columns and entropy floors were checked against "
            "fixed thresholds; without a reference there is no calibrated false-alarm rate",
        ),
        reference_free=True,
    )
