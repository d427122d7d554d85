"""CollapseGate: profile, compare, decide, report. The one place that orchestrates."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from collapse_callbacks._version import __version__
from collapse_callbacks.comparison import DEFAULT_SPLITS, Comparison
from collapse_callbacks.data.schema import SchemaAlignment, align_schemas
from collapse_callbacks.data.source import open_source
from collapse_callbacks.detector import decide
from collapse_callbacks.dimensions.base import DimensionEvidence
from collapse_callbacks.errors import NoColumnsError
from collapse_callbacks.profile.table import DEFAULT_SAMPLE_ROWS, Profile
from collapse_callbacks.report import GateReport, Sizes

LINEAGES = ("replace", "accumulate")

Progress = Callable[[str, int], None]


class CollapseGate:
    """Check candidate training sets against a real reference.

    ``alpha`` is the false-alarm rate you accept when the candidate is in fact more real
    data (family-wise across dimensions). ``max_rows`` bounds the rows read from each
    source; ``sample_rows`` the uniform row sample the sample-based statistics use.
    ``real_fraction`` and ``lineage`` ("replace": each generation's data replaces the
    last; "accumulate": real and earlier data are kept) describe how the candidate was
    made, when you know it: in a replace loop with little real data damage compounds
    with every generation (Shumailov et al. 2024; Dohmatob et al. 2024), so the gate
    tolerates smaller effects there (see ``tolerance_scale``); accumulating real data
    bounds the damage (Gerstgrasser et al. 2024). Statistical significance is required
    either way, so the false-alarm rate does not change.

    ``tokenizer`` (a Hugging Face tokenizer, or anything with ``all_special_ids``,
    ``pad_token_id``, ``convert_ids_to_tokens`` and ``len()``): special and padding
    tokens never count as content, reports name tokens as text, and a token id beyond
    the vocabulary is a :class:`~collapse_callbacks.errors.DataError`. ``embedder``: your
    own encoder for text, token and vector columns (a callable, or a mapping column ->
    callable; see ``dimensions/features.py``), used for coverage and the classifier
    test. Nothing is downloaded: both run as you pass them.
    """

    def __init__(
        self,
        reference: Any = None,
        *,
        alpha: float = 0.01,
        seed: int = 0,
        max_rows: int | None = None,
        sample_rows: int = DEFAULT_SAMPLE_ROWS,
        n_splits: int = DEFAULT_SPLITS,
        columns: Sequence[str] | None = None,
        strict_columns: bool = False,
        real_fraction: float | None = None,
        lineage: str | None = None,
        read_options: dict | None = None,
        tokenizer: Any = None,
        embedder: Any = None,
    ) -> None:
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {alpha}")
        if max_rows is not None and max_rows < 1:
            raise ValueError(f"max_rows must be >= 1, got {max_rows}")
        if sample_rows < 100:
            raise ValueError(f"sample_rows must be >= 100, got {sample_rows}")
        if n_splits < 10:
            raise ValueError(f"n_splits must be >= 10 to calibrate, got {n_splits}")
        if real_fraction is not None and not 0 <= real_fraction <= 1:
            raise ValueError(f"real_fraction must be in [0, 1], got {real_fraction}")
        if lineage is not None and lineage not in LINEAGES:
            raise ValueError(f"lineage must be one of {LINEAGES}, got {lineage!r}")
        self.reference = reference
        self.alpha = alpha
        self.seed = seed
        self.max_rows = max_rows
        self.sample_rows = sample_rows
        self.n_splits = n_splits
        self.columns = list(columns) if columns is not None else None
        self.strict_columns = strict_columns
        self.real_fraction = real_fraction
        self.lineage = lineage
        self.read_options = dict(read_options or {})
        self.tokenizer = tokenizer
        self.embedder = embedder
        self._reference_profile: tuple[tuple, Profile] | None = None

    @property
    def tolerance_scale(self) -> float:
        """Multiplier on every practical tolerance, from the stated lineage."""
        if self.lineage == "replace":
            return 0.5 if (self.real_fraction or 0.0) < 0.1 else 0.75
        return 1.0

    def _open(self, source: Any, **options):
        # Explicit options win: after alignment the aligned roles replace the user's.
        return open_source(source, **{"max_rows": self.max_rows, **self.read_options, **options})

    def _profile(
        self,
        stream,
        roles,
        seed: int,
        progress: Progress | None,
        label: str,
        deadline: float | None = None,
    ) -> Profile:
        """One pass over ``stream``; stops early (and says so in ``profile.truncated``)
        once ``deadline`` (a ``time.monotonic()`` value) has passed.

        On one BLAS thread, whoever calls it (``check`` does already; the training
        integrations call it on every rank): the co-moments' small matrix products
        gain nothing from threads, and beside other busy processes their spin-waiting
        made the pass of a 1M-row file 2.6 times slower (7.2 s against 2.8 s)."""
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1):
            return self._profile_pass(stream, roles, seed, progress, label, deadline)

    def _profile_pass(self, stream, roles, seed, progress, label, deadline) -> Profile:
        profile = Profile(
            roles,
            source=stream.display,
            sample_rows=self.sample_rows,
            seed=seed,
            ignore_tokens=self._ignore_tokens(),
        )
        rows = 0
        for batch in stream:
            profile.update(batch)
            rows += batch.num_rows
            if progress is not None:
                progress(label, rows)
            if deadline is not None and time.monotonic() > deadline:
                profile.truncated = True
                break
        self._check_token_range(profile)
        return profile

    def _ignore_tokens(self) -> frozenset[int]:
        if self.tokenizer is None:
            return frozenset()
        from collapse_callbacks.dimensions.sequences import tokenizer_ignore_ids

        return tokenizer_ignore_ids(self.tokenizer)

    def _check_token_range(self, profile: Profile) -> None:
        """With a tokenizer, every token id must be one of its vocabulary's."""
        if self.tokenizer is None:
            return
        from collapse_callbacks.data.roles import ColumnRole
        from collapse_callbacks.errors import DataError

        size = len(self.tokenizer)
        for name, role in profile.roles.items():
            if role is not ColumnRole.TOKENS or not profile.states[name].has_values:
                continue
            summary = profile.states[name].result()
            if summary.max_token is not None and summary.max_token >= size:
                raise DataError(
                    f"token id {summary.max_token} is beyond the tokenizer's vocabulary of "
                    f"{size} (ids 0..{size - 1}); was the data tokenized with another tokenizer?",
                    path=profile.source,
                    column=name,
                )
            if summary.min_token is not None and summary.min_token < 0:
                raise DataError(
                    f"token id {summary.min_token} is negative; token ids start at 0",
                    path=profile.source,
                    column=name,
                )

    def check(
        self,
        candidate: Any,
        *,
        progress: Progress | None = None,
        proxy_model: bool = False,
        target: str | None = None,
    ) -> GateReport:
        """Profile ``candidate`` (anything ``open_source`` reads) and judge it.

        ``proxy_model=True`` also trains a small proxy model on the candidate and runs the
        two model dimensions on it (seconds more); ``target=COL`` makes the proxy predict
        COL and adds train-on-candidate vs train-on-reference utility (implies it).
        """
        from threadpoolctl import threadpool_limits

        if proxy_model or target is not None:
            from collapse_callbacks.proxy import check_with_proxy

            return check_with_proxy(self, candidate, target=target, progress=progress)

        # One BLAS thread throughout: see run_dimensions for why.
        with threadpool_limits(limits=1):
            return self._check(candidate, progress)

    def _check(self, candidate: Any, progress: Progress | None) -> GateReport:
        started = time.perf_counter()
        if self.reference is None:
            from collapse_callbacks.reference_free import check_reference_free

            stream = self._open(candidate, columns=self.columns)
            profile = self._profile(stream, stream.roles, self.seed + 1, progress, "candidate")
            return check_reference_free(profile, self, started)
        comparison, alignment = self.compare(candidate, progress=progress)
        return self.judge(comparison, alignment, started=started)

    def judge(
        self,
        comparison: Comparison,
        alignment: SchemaAlignment,
        *,
        extra_evidence: Sequence[DimensionEvidence] = (),
        notes: Sequence[str] = (),
        started: float | None = None,
    ) -> GateReport:
        """The report on a comparison; ``extra_evidence`` adds dimensions measured
        elsewhere (the model probes of the training integrations)."""
        from threadpoolctl import threadpool_limits

        started = time.perf_counter() if started is None else started
        with threadpool_limits(limits=1):
            evidence, diversity = run_dimensions(comparison)
        evidence = [*evidence, *extra_evidence]
        reference, candidate_profile = comparison.reference, comparison.candidate
        scale = self.tolerance_scale
        if scale != 1.0:
            evidence = [e.scaled(scale) for e in evidence]
            diversity = diversity.scaled(scale)
        verdict = decide(evidence, diversity, self.alpha)
        if verdict.collapsed:
            from collapse_callbacks.dimensions import column_effects

            # One BLAS thread, as for the dimensions themselves (run_dimensions).
            with threadpool_limits(limits=1):
                effect = column_effects.retest(
                    comparison, list(verdict.decisive), list(verdict.firing), scale
                )
            if effect is not None:
                verdict = decide(evidence, diversity, self.alpha, column_effect=effect)
        truncated = [
            f"the {label} pass stopped at the time budget after {profile.rows:,} rows"
            for label, profile in (("reference", reference), ("candidate", candidate_profile))
            if profile.truncated
        ]
        return GateReport(
            score=verdict.score,
            collapsed=verdict.collapsed,
            shift=verdict.shift,
            dimensions=verdict.dimensions,
            diversity=verdict.diversity,
            sizes=Sizes(
                reference_rows=reference.rows,
                candidate_rows=candidate_profile.rows,
                reference_sample=comparison.reference_view.rows,
                candidate_sample=comparison.candidate_view.rows,
                matched_rows=comparison.matched_rows,
            ),
            alpha=self.alpha,
            seed=self.seed,
            seconds=time.perf_counter() - started,
            version=__version__,
            reasons=verdict.reasons,
            notes=tuple(alignment.notes())
            + tuple(comparison.left_out.values())
            + tuple(notes)
            + tuple(truncated)
            + _small_sample_note(reference.rows, candidate_profile.rows)
            + self._lineage_notes(),
            lineage={
                "real_fraction": self.real_fraction,
                "lineage": self.lineage,
                "tolerance_scale": scale,
            },
        )

    def compare(
        self, candidate: Any, *, progress: Progress | None = None
    ) -> tuple[Comparison, SchemaAlignment]:
        """Align the columns and profile both sides (the reference once per column set)."""
        alignment = self.align(self._open(candidate, columns=self.columns))
        candidate_profile = self.profile_candidate(candidate, alignment, progress=progress)
        return self.comparison(candidate_profile, alignment, progress=progress), alignment

    def align(self, candidate_stream) -> SchemaAlignment:
        """The shared columns of the reference and an opened candidate stream."""
        reference_stream = self._open(self.reference, columns=self.columns)
        alignment = align_schemas(
            reference_stream.schema,
            reference_stream.roles,
            candidate_stream.schema,
            candidate_stream.roles,
            strict=self.strict_columns,
        )
        return alignment.without_identifiers(
            (*reference_stream.identifiers, *candidate_stream.identifiers)
        )

    def profile_candidate(
        self,
        candidate: Any,
        alignment: SchemaAlignment,
        *,
        progress: Progress | None = None,
        deadline: float | None = None,
        max_rows: int | None = None,
    ) -> Profile:
        """The candidate's profile on the aligned columns. Profiles of shards made with
        the same gate merge into the profile of the whole (``Profile.merge``)."""
        options = {} if max_rows is None else {"max_rows": max_rows}
        stream = self._open(
            candidate, columns=list(alignment.roles), roles=alignment.roles, **options
        )
        return self._profile(
            stream, alignment.roles, self.seed + 1, progress, "candidate", deadline
        )

    def comparison(
        self,
        candidate_profile: Profile,
        alignment: SchemaAlignment,
        *,
        progress: Progress | None = None,
    ) -> Comparison:
        """The reference (profiled once per column set) against ``candidate_profile``."""
        shared = list(alignment.roles)
        key = (tuple(shared), tuple(alignment.roles.values()))
        if self._reference_profile is not None and self._reference_profile[0] == key:
            reference = self._reference_profile[1]
        else:
            stream = self._open(self.reference, columns=shared, roles=alignment.roles)
            reference = self._profile(stream, alignment.roles, self.seed, progress, "reference")
            self._reference_profile = (key, reference)
        # A column with no values on one side has nothing for the sample statistics to
        # compare (they would be NaN); its missing values are compared from the
        # profiles' counts (distribution fidelity's ``missing_values``).
        empty = _columns_without_values(reference, candidate_profile)
        if len(empty) == len(shared):
            raise NoColumnsError(
                "no column has values in both the reference and the candidate: "
                + "; ".join(
                    f"{name!r} has none in the {' or the '.join(w)}" for name, w in empty.items()
                )
            )
        comparison = Comparison(
            reference,
            candidate_profile,
            {name: role for name, role in alignment.roles.items() if name not in empty},
            alpha=self.alpha,
            seed=self.seed,
            n_splits=self.n_splits,
        )
        comparison.left_out = {
            name: f"`{name}` has no values in the {where[0]}: only its missing values are compared"
            if len(where) == 1
            else f"`{name}` has no values in either the reference or the candidate: not compared"
            for name, where in empty.items()
        }
        comparison.temporal = dict(alignment.temporal)
        comparison.embedder = self.embedder
        if self.tokenizer is not None:
            from collapse_callbacks.dimensions.sequences import describe_tokens

            comparison.token_text = describe_tokens(self.tokenizer)
        return comparison

    def _lineage_notes(self) -> tuple[str, ...]:
        if self.lineage is None:
            return ()
        real = "unknown" if self.real_fraction is None else f"{self.real_fraction:.0%}"
        if self.lineage == "replace":
            return (
                f"lineage: each generation replaces the last, real share {real}; damage compounds "
                f"in this setting, so tolerances are scaled by {self.tolerance_scale}",
            )
        return (
            f"lineage: real and earlier data accumulate (real share {real}); this bounds the damage",
        )


# Below this many rows on the smaller side, a pass is weak evidence against a partly
# generated candidate: 30% of the rows from a third generation were caught in 56-69% of
# the benchmark's candidates of 166-500 rows and 94-100% from 1,000 (README, Benchmarks,
# mixture_size.py). Recursive generations themselves are caught at every size measured.
SMALL_SAMPLE_ROWS = 1_000


def _small_sample_note(reference_rows: int, candidate_rows: int) -> tuple[str, ...]:
    rows = min(reference_rows, candidate_rows)
    if rows >= SMALL_SAMPLE_ROWS:
        return ()
    return (
        f"small samples ({rows:,} rows on the smaller side): only large differences are "
        "significant here; a candidate with a minority of generated rows (30%) often passes "
        f"below {SMALL_SAMPLE_ROWS:,} rows a side in the benchmarks, and is caught from there",
    )


def _columns_without_values(reference: Profile, candidate: Profile) -> dict[str, list[str]]:
    """The columns with no value at all on one side or both, and which sides."""
    sides = (("reference", reference), ("candidate", candidate))
    empty = {
        name: [label for label, profile in sides if not profile.states[name].has_values]
        for name in reference.states
    }
    return {name: where for name, where in empty.items() if where}


def run_dimensions(comparison: Comparison) -> tuple[list[DimensionEvidence], DimensionEvidence]:
    """Every data dimension and the diversity analyzer, on one BLAS thread.

    The statistics use many small matrices (covariances, eigen-decompositions of a few
    dozen columns): threads do not speed them up, on a busy host their spin-waiting slows
    them several-fold, and a fixed thread count keeps the report bit-for-bit the same
    from one machine to the next.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return _run_dimensions(comparison)


def _run_dimensions(comparison: Comparison) -> tuple[list[DimensionEvidence], DimensionEvidence]:
    from collapse_callbacks import diversity
    from collapse_callbacks.dimensions import (
        consistency,
        correlation,
        entropy,
        fidelity,
        generalization,
        spectral,
    )
    from collapse_callbacks.dimensions.modalities import with_modalities

    modules = (fidelity, correlation, entropy, spectral, generalization, consistency)
    evidence = [with_modalities(module.run(comparison), comparison) for module in modules]
    return evidence, with_modalities(diversity.run(comparison), comparison)
