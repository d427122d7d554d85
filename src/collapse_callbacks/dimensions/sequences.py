"""Collapse signals of text and token-sequence columns.

Language models trained on model output repeat themselves, lose rare words and rare
constructions, narrow their vocabulary and write near-duplicate documents (Shumailov
et al. 2024; Guo et al. 2024; Briesch et al. 2023). Every figure below is computed on
the comparison's matched parts (at most ``SEQUENCE_ROWS`` documents a side) and
calibrated against disjoint random splits of both samples pooled, of the same size, like the tabular
statistics. Figures that grow with the amount of text (distinct n-grams, entropy,
vocabulary coverage, compression) are taken on the first ``T`` units of each side,
``T`` the smaller side's total, so a candidate of shorter documents is not judged
poorer for being shorter.

Per column, by dimension (``SIGNALS``):

* distribution fidelity: ``rare_vocabulary`` (narrowing): the share of the reference's
  rare vocabulary (the types beyond the head that holds ``HEAD_MASS`` of its units)
  that the candidate uses, relative to what fresh real text uses. The rare types come
  from one half of the reference part and the comparison is made on the other half
  (cross-fitting), because text already seen contains its own rare words by
  construction. ``length_spread`` (narrowing, confinable): the spread of document
  lengths. ``vocabulary_divergence`` (shift): Jensen-Shannon divergence of the unit
  frequencies (a topic change does this too).
* entropy stability (narrowing): ``type_token_ratio``, ``distinct_2``..``distinct_4``
  (distinct n-grams per n-gram), ``unigram_entropy`` and ``zipf_steepness`` (minus the
  slope of log frequency on log rank over the top ranks: mass piling onto the head).
* diversity (narrowing): ``repeated_ngrams`` (share of trigrams that repeat an earlier
  trigram of their own document), ``repeated_lines`` (share of a text's non-blank lines
  that repeat an earlier line of their document), ``document_echo`` (mean TF-IDF cosine
  of each document to the most similar other one), ``near_duplicate_documents`` and
  ``compression_ratio`` (zlib size over raw size of the side's documents: repetitive
  text compresses better). ``near_duplicate_documents`` is the one whole-data figure:
  the share of all documents that repeat an earlier document's MinHash band key
  (:mod:`~collapse_callbacks.profile.minhash`), counted in the streaming pass and
  compared at the smaller column's size (:mod:`~collapse_callbacks.dimensions.duplicates`),
  because a sample of documents keeps a near-duplicate pair whole only with the square
  of its sampling rate.
* spectral coherence: ``sequence_spectrum`` (structure, two-sided): the power spectrum
  along the sequence axis of each document's units under a fixed random +-1 embedding
  (``SPECTRUM_EMBEDDING`` hashed dimensions, ``numpy.fft.rfft`` over windows of the
  reference's typical length), as a distribution over frequencies; the signal is its
  total-variation distance between the sides. Repetition shows as peaks, lost local
  structure as flattening.
* generalization gap: ``ngram_log_likelihood`` (structure, two-sided): mean per-unit
  log-likelihood under a bigram model with Witten-Bell smoothing fitted on half the
  reference part, on held-out real text vs the candidate. Low-temperature generations
  are *more* predictable than real text, compounding errors less: both are damage.
  ``text_classifier_auc`` (structure): a classifier two-sample test made for text, the
  held-out AUC of an L2-regularized logistic regression on TF-IDF weighted word
  unigrams and bigrams hashed into ``TFIDF_BUCKETS`` buckets (the domain classifier
  Evidently and others use for text drift), trained on half the documents, with the
  exact Mann-Whitney p-value on the other half. ``text_mmd`` (structure): a kernel
  two-sample test on the same TF-IDF rows with an exact permutation null
  (:mod:`kernel_test`); it uses every document at once, and catches mixtures with a
  tenth of the documents generated that the half-trained classifier misses. The
  row-level classifier test also sees these columns, through a coarser hashed n-gram
  encoding (:class:`SequenceFeatures`).
* statistical consistency: ``length_distribution`` (shift): the Kolmogorov-Smirnov
  distance between the sides' document lengths.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from collapse_callbacks.comparison import Calibrated, Comparison, Part, PerView, SampleView
from collapse_callbacks.data.roles import ColumnRole
from collapse_callbacks.dimensions.base import Signal, SignalKind
from collapse_callbacks.dimensions.duplicates import compare_duplicates
from collapse_callbacks.dimensions.kernel_test import mmd_test, permutations_for
from collapse_callbacks.dimensions.spectral import Paired, percent
from collapse_callbacks.profile.counting import dense_ids, distinct_count, unique_counts
from collapse_callbacks.profile.minhash import BAND_WIDTH
from collapse_callbacks.profile.rows import _mix
from collapse_callbacks.profile.sequences import (
    Units,
    entropy_of_counts,
    ngram_hashes,
    repeated_ngrams,
    text_units,
    text_words,
    token_units,
    zipf_slope,
)

# Documents per side the statistics use (each runs on the observed pair and every null
# split, so this bounds the cost).
SEQUENCE_ROWS = 2000
HEAD_MASS = 0.8
SPECTRUM_EMBEDDING = 4
COMPRESSION_BYTES = 200_000
ECHO_ROWS = 1000  # documents per side for the pairwise similarities
FEATURE_BUCKETS = 64
TFIDF_BUCKETS = 1 << 18
CLASSIFIER_DOCUMENTS = 5000  # per side
# The kernel test holds a [2n, 2n] kernel matrix and multiplies it per permutation chunk.
MMD_DOCUMENTS = 1000  # per side
CLASSIFIER_L2 = 1.0

# Practical tolerances, the effect each signal must exceed to matter.
TOLERANCES = {
    "rare_vocabulary": 0.10,  # a tenth of the rare vocabulary gone
    "length_spread": 0.20,
    "vocabulary_divergence": 0.01,  # nats of Jensen-Shannon divergence
    "type_token_ratio": 0.05,
    "distinct_2": 0.05,
    "distinct_3": 0.05,
    "distinct_4": 0.05,
    "unigram_entropy": 0.03,  # 3% of the entropy
    "zipf_steepness": 0.05,
    "repeated_ngrams": 0.02,  # two points more of the trigrams repeated
    "repeated_lines": 0.02,
    "near_duplicate_documents": 0.02,
    "document_echo": 0.01,  # mean cosine to the closest other document
    "compression_ratio": 0.05,
    "sequence_spectrum": 0.02,
    "ngram_log_likelihood": 0.10,  # nats per unit
    "length_distribution": 0.10,
    "text_classifier_auc": 0.05,  # as the row-level classifier test
    # MMD^2 scales with the square of the share of documents replaced: 1e-5 is a tenth
    # of the documents replaced by text 1e-3 away. Real splits of 1,000 documents vary
    # by about 1e-5 (benchmarks/quality/text).
    "text_mmd": 1e-5,
}

# The order of the figures a statistic returns, and how each is read: direction that
# is worse, whether the effect is relative to the reference's figure, its kind.
_LOWER_RELATIVE = (
    "type_token_ratio",
    "distinct_2",
    "distinct_3",
    "distinct_4",
    "unigram_entropy",
    "compression_ratio",
    "length_spread",
    "rare_vocabulary",
)
_HIGHER_ABSOLUTE = (
    "repeated_ngrams",
    "repeated_lines",
    "document_echo",
)
_HIGHER_RELATIVE = ("zipf_steepness",)
_EITHER = ("ngram_log_likelihood",)
_TWO_SAMPLE = ("vocabulary_divergence", "sequence_spectrum", "length_distribution")
FIGURES = _LOWER_RELATIVE + _HIGHER_ABSOLUTE + _HIGHER_RELATIVE + _EITHER + _TWO_SAMPLE

KIND = {name: SignalKind.NARROWING for name in FIGURES}
KIND.update(
    {
        "vocabulary_divergence": SignalKind.SHIFT,
        "length_distribution": SignalKind.SHIFT,
        "sequence_spectrum": SignalKind.STRUCTURE,
        "ngram_log_likelihood": SignalKind.STRUCTURE,
    }
)

DIMENSION_OF = {
    "rare_vocabulary": "distribution_fidelity",
    "length_spread": "distribution_fidelity",
    "vocabulary_divergence": "distribution_fidelity",
    "type_token_ratio": "entropy_stability",
    "distinct_2": "entropy_stability",
    "distinct_3": "entropy_stability",
    "distinct_4": "entropy_stability",
    "unigram_entropy": "entropy_stability",
    "zipf_steepness": "entropy_stability",
    "repeated_ngrams": "diversity",
    "repeated_lines": "diversity",
    "near_duplicate_documents": "diversity",
    "document_echo": "diversity",
    "compression_ratio": "diversity",
    "sequence_spectrum": "spectral_coherence",
    "ngram_log_likelihood": "generalization_gap",
    "length_distribution": "statistical_consistency",
}

SEQUENCE_ROLES = (ColumnRole.TEXT, ColumnRole.TOKENS)


# -- documents of one sample, once ------------------------------------------------------


class SequenceView:
    """One column of one sample as units (every row, empty where missing), with the
    raw bytes compression needs and the TF-IDF rows of every document."""

    def __init__(
        self,
        comparison: Comparison,
        view: SampleView,
        column: str,
        idf: np.ndarray | None = None,
    ):
        array = view.table.column(column).combine_chunks()
        self.units = sample_units(comparison, view, column)
        if comparison.roles[column] is ColumnRole.TEXT:
            self.words = text_words(array)
            texts = array.to_pylist()
            self.raw = [b"" if t is None else t.encode("utf-8", "surrogatepass") for t in texts]
            self.lines = np.array([_line_repeats(t) for t in texts], dtype=np.int64).reshape(-1, 2)
        else:
            self.words = {}
            self.raw = None
            self.lines = np.zeros((len(array), 2), dtype=np.int64)
        if self.raw is None:
            ids = np.clip(self.units.ids, 0, np.iinfo(np.uint32).max).astype("<u4")
            self.raw = [
                ids[s:e].tobytes() for s, e in zip(self.units.offsets[:-1], self.units.offsets[1:])
            ]
        self.tfidf, self.idf = tfidf_matrix(self.units, idf)

    @classmethod
    def joined(cls, views: list[SequenceView]) -> SequenceView:
        """The views' documents one after the other (the pooled sample), with the first
        view's idf."""
        from scipy import sparse

        out = cls.__new__(cls)
        out.units = _concatenate([v.units for v in views])
        out.words = {k: w for v in views for k, w in v.words.items()}
        out.raw = [r for v in views for r in v.raw]
        out.lines = np.vstack([v.lines for v in views])
        out.tfidf = sparse.vstack([v.tfidf for v in views]).tocsr()
        out.idf = views[0].idf
        return out

    def units_of(self, part: Part) -> Units:
        return self.units.take(part.rows)


def _line_repeats(text: str | None) -> tuple[int, int]:
    """(non-blank lines that repeat an earlier line of the document, non-blank lines)."""
    if not text:
        return 0, 0
    lines = [" ".join(line.split()) for line in text.splitlines()]
    lines = [line for line in lines if line]
    return len(lines) - len(set(lines)), len(lines)


def sample_units(comparison: Comparison, view: SampleView, column: str) -> Units:
    """One sample's column as units, every row (empty where missing), computed once per
    comparison: the figures, the row features and the text classifier all read it."""
    key = f"units:{id(view)}:{column}"
    if key not in comparison.cache:
        array = view.table.column(column).combine_chunks()
        valid = ~np.asarray(array.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        if comparison.roles[column] is ColumnRole.TEXT:
            present = text_units(array)
        else:
            ignore = frozenset(getattr(comparison.reference, "ignore_tokens", ()) or ())
            present = token_units(array, ignore)
        comparison.cache[key] = _aligned(present, valid)
    return comparison.cache[key]


def _aligned(present: Units, valid: np.ndarray) -> Units:
    """Units of the present rows spread over all rows (a missing row is empty)."""
    lengths = np.zeros(len(valid), dtype=np.int64)
    lengths[valid] = present.lengths
    offsets = np.zeros(len(valid) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return Units(offsets, present.ids)


# -- the figures of one pair of parts ---------------------------------------------------


def document_echo(tfidf, rows: np.ndarray) -> float:
    """Mean over documents of the TF-IDF cosine to the most similar other document of the
    same rows: text recombined from a few sources echoes them (a language model's
    samples mixed back with the documents it learned from, paraphrases, templates)."""
    if len(rows) < 2:
        return float("nan")
    x = tfidf[rows]
    similarity = (x @ x.T).toarray()
    np.fill_diagonal(similarity, -1.0)
    return float(similarity.max(axis=1).mean())


def _distinct_share(units: Units, n: int) -> float:
    hashes, _ = ngram_hashes(units, n)
    return distinct_count(hashes) / len(hashes) if len(hashes) else float("nan")


def _halves(part: Part) -> tuple[Part, Part]:
    half = len(part) // 2
    return Part(part.view, part.rows[:half]), Part(part.view, part.rows[half:])


def rare_types(units: Units) -> np.ndarray:
    """The types beyond the head that holds ``HEAD_MASS`` of the units (sorted ids)."""
    ids, counts = unique_counts(units.ids)
    if len(ids) == 0:
        return ids
    order = np.lexsort((ids, -counts))
    cumulative = np.cumsum(counts[order]) / counts.sum()
    head = int(np.searchsorted(cumulative, HEAD_MASS, side="left")) + 1
    return np.sort(ids[order[head:]])


def rare_coverage(units: Units, rare: np.ndarray) -> float:
    if len(rare) == 0:
        return float("nan")
    return float(np.isin(rare, units.ids, assume_unique=False).mean())


class BigramModel:
    """Bigram language model with Witten-Bell interpolation onto an add-one unigram
    model over the vocabulary seen in training plus one unknown type."""

    def __init__(self, units: Units) -> None:
        self.vocabulary, dense = dense_ids(units.ids)
        self.size = len(self.vocabulary) + 1  # the last index is "unknown"
        unigram = np.bincount(dense, minlength=self.size).astype(np.float64)
        self.unigram = (unigram + 1.0) / (unigram.sum() + self.size)
        previous, current = self._pairs(units, dense)
        keys = previous * self.size + current
        self.bigrams, self.bigram_counts = unique_counts(keys)
        followers = np.bincount(self.bigrams // self.size, minlength=self.size)
        context = np.bincount(previous, minlength=self.size)
        self.context = context.astype(np.float64)
        self.followers = followers.astype(np.float64)

    @staticmethod
    def _pairs(units: Units, dense: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        document = units.document_ids()
        same = document[1:] == document[:-1]
        return dense[:-1][same], dense[1:][same]

    def _dense(self, ids: np.ndarray) -> np.ndarray:
        index = np.searchsorted(self.vocabulary, ids)
        index = np.minimum(index, len(self.vocabulary) - 1) if len(self.vocabulary) else index
        known = len(self.vocabulary) > 0
        found = (self.vocabulary[index] == ids) if known else np.zeros(len(ids), dtype=bool)
        return np.where(found, index, self.size - 1)

    def mean_log_likelihood(self, units: Units) -> float:
        """Mean log-probability per unit after the first of each document."""
        if len(units.ids) < 2:
            return float("nan")
        dense = self._dense(units.ids)
        previous, current = self._pairs(units, dense)
        if len(previous) == 0:
            return float("nan")
        keys = previous * self.size + current
        at = np.searchsorted(self.bigrams, keys)
        at = np.minimum(at, max(len(self.bigrams) - 1, 0))
        seen = self.bigrams[at] == keys if len(self.bigrams) else np.zeros(len(keys), bool)
        pair_count = np.where(seen, self.bigram_counts[at] if len(self.bigrams) else 0, 0)
        context, types = self.context[previous], self.followers[previous]
        backoff = self.unigram[current]
        with np.errstate(divide="ignore", invalid="ignore"):
            probability = np.where(
                context > 0, (pair_count + types * backoff) / (context + types), backoff
            )
        return float(np.mean(np.log(probability)))


def spectrum(units: Units, window: int) -> np.ndarray:
    """Mean power over frequencies 1..window/2 of documents' first ``window`` units
    under a fixed +-1 embedding, normalized to sum 1 (NaN without a long document)."""
    lengths = units.lengths
    rows = np.flatnonzero(lengths >= window)
    if len(rows) == 0:
        return np.full(window // 2, np.nan)
    starts = units.offsets[:-1][rows]
    index = starts[:, None] + np.arange(window)[None, :]
    ids = units.ids[index].view(np.uint64)
    power = np.zeros(window // 2 + 1)
    with np.errstate(over="ignore"):
        for e in range(SPECTRUM_EMBEDDING):
            signs = (_mix(ids ^ np.uint64(0xA24BAED4963EE407 + e)) >> np.uint64(63)).astype(
                np.float64
            )
            x = 2.0 * signs - 1.0
            x -= x.mean(axis=1, keepdims=True)
            power += (np.abs(np.fft.rfft(x, axis=1)) ** 2).mean(axis=0)
    power = power[1 : window // 2 + 1]
    total = power.sum()
    return power / total if total > 0 else np.full(window // 2, np.nan)


def _js_divergence(a: np.ndarray, b: np.ndarray) -> float:
    ids = np.concatenate([a, b])
    if len(a) == 0 or len(b) == 0:
        return float("nan")
    _, dense = dense_ids(ids)
    k = dense.max() + 1
    p = np.bincount(dense[: len(a)], minlength=k) / len(a)
    q = np.bincount(dense[len(a) :], minlength=k) / len(b)
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log(p / m), 0.0).sum()
        kl_q = np.where(q > 0, q * np.log(q / m), 0.0).sum()
    return float((kl_p + kl_q) / 2)


def _ks_distance(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) == 0 or len(b) == 0:
        return float("nan")
    grid = np.union1d(a, b)
    cdf_a = np.searchsorted(np.sort(a), grid, side="right") / len(a)
    cdf_b = np.searchsorted(np.sort(b), grid, side="right") / len(b)
    return float(np.abs(cdf_a - cdf_b).max())


def _share(counts: np.ndarray) -> float:
    repeated, total = counts.sum(axis=0)
    return float(repeated / total) if total else 0.0


def _compression(raw: list[bytes], rows: np.ndarray, limit: int) -> float:
    data = b"\n".join(raw[i] for i in rows)[:limit]
    return len(zlib.compress(data, 6)) / len(data) if data else float("nan")


@dataclass
class SequenceColumn:
    """Everything the figures of one column need, built once per comparison."""

    name: str
    role: ColumnRole
    views: PerView[SequenceView]
    window: int

    @classmethod
    def build(cls, comparison: Comparison, column: str) -> SequenceColumn:
        role = comparison.roles[column]
        reference = SequenceView(comparison, comparison.reference_view, column)
        candidate = SequenceView(comparison, comparison.candidate_view, column, reference.idf)
        views = PerView.of(comparison, reference, candidate, SequenceView.joined)
        lengths = reference.units.lengths
        typical = float(np.median(lengths[lengths > 0])) if (lengths > 0).any() else 0.0
        window = int(2 ** np.floor(np.log2(max(typical, 8.0))))
        return cls(column, role, views, min(window, 64))

    def figures(self, a: Part, b: Part) -> np.ndarray:
        """``[[figure(b) ...], [figure(a) ...]]`` in ``FIGURES`` order; two-sample
        figures are ``[distance, 0]``."""
        a, b = a.head(SEQUENCE_ROWS), b.head(SEQUENCE_ROWS)
        view_a, view_b = self.views[a.view], self.views[b.view]
        units_a, units_b = view_a.units_of(a), view_b.units_of(b)
        matched = min(len(units_a.ids), len(units_b.ids))
        first_a, first_b = units_a.first_units(matched), units_b.first_units(matched)
        limit = min(
            COMPRESSION_BYTES,
            sum(len(view_a.raw[i]) for i in a.rows),
            sum(len(view_b.raw[i]) for i in b.rows),
        )
        # Cross-fitting: what the reference half ``fit`` teaches is tested on the other
        # reference half and on as many of the candidate's documents.
        fit, held = _halves(a)
        units_fit, units_held = view_a.units_of(fit), view_a.units_of(held)
        units_other = view_b.units_of(Part(b.view, b.rows[: len(held)]))
        cross = min(len(units_held.ids), len(units_other.ids))
        held_first, other_first = units_held.first_units(cross), units_other.first_units(cross)
        rare = rare_types(units_fit)
        model = BigramModel(units_fit)

        def one_side(units, first, view, part, cross_units) -> list[float]:
            repeated, total = repeated_ngrams(units)
            counts = unique_counts(first.ids)[1]
            lengths = units.lengths.astype(np.float64)
            return [
                _distinct_share(first, 1),
                _distinct_share(first, 2),
                _distinct_share(first, 3),
                _distinct_share(first, 4),
                entropy_of_counts(counts),
                _compression(view.raw, part.rows, limit),
                float(np.std(lengths)) if len(lengths) > 1 else float("nan"),
                rare_coverage(cross_units, rare),
                repeated / total if total else float("nan"),
                _share(view.lines[part.rows]),
                document_echo(view.tfidf, part.rows[:ECHO_ROWS]),
                -zipf_slope(counts),
                model.mean_log_likelihood(cross_units),
            ]

        side_b = one_side(units_b, first_b, view_b, b, other_first)
        side_a = one_side(units_a, first_a, view_a, a, held_first)
        spectrum_distance = 0.5 * float(
            np.abs(spectrum(units_b, self.window) - spectrum(units_a, self.window)).sum()
        )
        two_sample = [
            _js_divergence(first_a.ids, first_b.ids),
            spectrum_distance,
            _ks_distance(units_a.lengths, units_b.lengths),
        ]
        return np.array([side_b + two_sample, side_a + [0.0] * len(two_sample)])

    def lost_rare_examples(self, comparison: Comparison, limit: int = 5) -> list[str]:
        """Rare reference words (or tokens) the observed candidate part never uses."""
        a, b = comparison.observed_parts
        a, b = a.head(SEQUENCE_ROWS), b.head(SEQUENCE_ROWS)
        view_a, view_b = self.views[a.view], self.views[b.view]
        fit, held = _halves(a)
        rare = rare_types(view_a.units_of(fit))
        used = unique_counts(view_b.units_of(b).ids)[0]
        held_ids, held_counts = unique_counts(view_a.units_of(held).ids)
        lost = held_ids[np.isin(held_ids, rare) & ~np.isin(held_ids, used)]
        counts = held_counts[np.isin(held_ids, lost)]
        lost = lost[np.lexsort((lost, -counts))][:limit]
        return [self.display(int(i), comparison) for i in lost]

    def display(self, unit: int, comparison: Comparison) -> str:
        for view in self.views.samples():
            if unit in view.words:
                return view.words[unit]
        describe = getattr(comparison, "token_text", None)
        if describe is not None:
            return describe(unit)
        return f"#{unit}"


# -- signals ----------------------------------------------------------------------------


def _paired(cal: Calibrated, columns: list[int], worse: str, relative: bool, floor=None):
    observed, null = np.asarray(cal.observed), np.asarray(cal.null)
    sub = Calibrated(observed[:, columns], null[:, :, columns])
    return Paired.from_calibrated(sub, worse, relative=relative, min_spread=floor)


def column_evidence(comparison: Comparison, column: str) -> dict[str, list[Signal]]:
    """Signals of one sequence column, by dimension name."""
    sequence = SequenceColumn.build(comparison, column)
    cal = comparison.calibrate(sequence.figures)
    index = {name: i for i, name in enumerate(FIGURES)}
    rows = min(comparison.matched_rows, SEQUENCE_ROWS)
    groups = [
        (_LOWER_RELATIVE, "lower", True, None),
        # A share of documents moves in steps of 1/rows: never a certainty from one.
        (_HIGHER_ABSOLUTE, "higher", False, np.full(len(_HIGHER_ABSOLUTE), np.sqrt(2.0) / rows)),
        (_HIGHER_RELATIVE, "higher", True, None),
        (_EITHER, "either", False, None),
        (_TWO_SAMPLE, "higher", False, None),
    ]
    out: dict[str, list[Signal]] = {}
    for names, worse, relative, floor in groups:
        fig = _paired(cal, [index[n] for n in names], worse, relative, floor)
        for j, name in enumerate(names):
            value, reference = float(fig.value[j]), float(fig.reference[j])
            effect, noise, p = float(fig.effect[j]), float(fig.noise[j]), float(fig.p_value[j])
            if not (np.isfinite(value) and np.isfinite(reference) and np.isfinite(p)):
                continue
            if worse == "either":
                effect = abs(effect)
            signal = Signal(
                name=name,
                kind=KIND[name],
                column=column,
                value=value,
                reference_value=reference,
                effect=effect,
                tolerance=TOLERANCES[name],
                noise=noise,
                p_value=p,
                sentence=_sentence(name, column, value, reference, effect, sequence, comparison),
            )
            out.setdefault(DIMENSION_OF[name], []).append(signal)
    near = near_duplicate_documents(comparison, column)
    if near is not None:
        out.setdefault(DIMENSION_OF[near.name], []).append(near)
    for test in (text_classifier, text_mmd):
        signal = test(comparison, column)
        if signal is not None:
            out.setdefault("generalization_gap", []).append(signal)
    return out


def near_duplicate_documents(comparison: Comparison, column: str) -> Signal | None:
    """The whole-data near-duplicate document rates of both sides at the smaller one's
    size (None for profiles stored before the streaming pass counted them)."""
    reference = comparison.reference.states[column].documents
    candidate = comparison.candidate.states[column].documents
    if reference is None or candidate is None or not (reference.documents and candidate.documents):
        return None
    test = compare_duplicates(reference.bands, candidate.bands)
    sentence = (
        f"{percent(test.value)} of `{column}`'s documents near-duplicate an earlier one "
        f"(reference {percent(test.reference)}; all documents, both at {test.rows:,}; "
        f"MinHash bands of {BAND_WIDTH} word-trigram hashes, shared by a pair with "
        "Jaccard similarity 0.9 73% of the time, 0.5 13%)"
    )
    return test.signal(
        "near_duplicate_documents", column, TOLERANCES["near_duplicate_documents"], sentence
    )


def tfidf_matrix(units: Units, idf: np.ndarray | None = None):
    """Sparse rows of sublinear TF (1 + log count) of hashed unigrams and bigrams, times
    ``idf`` (computed from these rows when None), L2-normalized; and the idf used."""
    from scipy import sparse

    rows, columns = [], []
    for n in (1, 2):
        hashes, document = ngram_hashes(units, n)
        rows.append(document)
        columns.append((_mix(hashes + np.uint64(n)) % np.uint64(TFIDF_BUCKETS)).astype(np.int64))
    rows, columns = np.concatenate(rows), np.concatenate(columns)
    counts = sparse.coo_matrix(
        (np.ones(len(rows)), (rows, columns)), shape=(units.documents, TFIDF_BUCKETS)
    ).tocsr()
    counts.sum_duplicates()
    counts.data = 1.0 + np.log(counts.data)
    if idf is None:
        frequency = np.bincount(counts.indices, minlength=TFIDF_BUCKETS)
        idf = np.log((1.0 + units.documents) / (1.0 + frequency)) + 1.0
    weighted = counts.multiply(idf[None, :]).tocsr()
    norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1)).ravel())
    weighted = sparse.diags(1.0 / np.where(norms > 0, norms, 1.0)) @ weighted
    return weighted.tocsr(), idf


def _logistic_fit(x, y: np.ndarray) -> np.ndarray:
    """Weights and intercept of an L2-regularized logistic regression (L-BFGS)."""
    from scipy.optimize import minimize
    from scipy.special import expit, log1p

    sign = 2.0 * y - 1.0

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[:-1], theta[-1]
        margin = sign * (x @ w + b)
        value = np.sum(log1p(np.exp(-np.abs(margin))) + np.maximum(-margin, 0.0))
        value += 0.5 * CLASSIFIER_L2 * w @ w
        weight = -sign * expit(-margin)
        gradient = np.concatenate([x.T @ weight + CLASSIFIER_L2 * w, [weight.sum()]])
        return value, gradient

    start = np.zeros(x.shape[1] + 1)
    return minimize(loss, start, jac=True, method="L-BFGS-B", options={"maxiter": 200}).x


def text_classifier(comparison: Comparison, column: str) -> Signal | None:
    """The held-out AUC of a logistic regression on TF-IDF n-grams, reference vs
    candidate documents, and its exact one-sided Mann-Whitney p-value.

    One split, half the documents of each side to train and half to test. Cross-fitting
    (each half scoring the other) would score every document, but the folds' AUCs are
    then correlated under the null (each model learns the other fold's chance
    differences), and summing them as independent made a fifth of real-vs-real splits
    of Debian's fortunes read p < 0.05."""
    from scipy import stats

    rng = comparison.rng(f"text classifier {column}")
    sides = [
        sample_units(comparison, view, column)
        for view in (comparison.reference_view, comparison.candidate_view)
    ]
    n = min(sides[0].documents, sides[1].documents, CLASSIFIER_DOCUMENTS)
    half = n // 2
    if half < 10:
        return None
    picks = [rng.permutation(side.documents)[: 2 * half] for side in sides]
    train = [side.take(p[half:]) for side, p in zip(sides, picks)]
    test = [side.take(p[:half]) for side, p in zip(sides, picks)]
    x_train, idf = tfidf_matrix(_concatenate(train))
    theta = _logistic_fit(x_train, np.r_[np.zeros(half), np.ones(half)])
    scores = tfidf_matrix(_concatenate(test), idf)[0] @ theta[:-1]
    result = stats.mannwhitneyu(scores[half:], scores[:half], alternative="greater")
    auc = float(result.statistic / (half * half))
    noise = float(np.sqrt((2 * half + 1) / (12.0 * half * half)))
    return Signal(
        name="text_classifier_auc",
        kind=SignalKind.STRUCTURE,
        column=column,
        value=auc,
        reference_value=0.5,
        effect=auc - 0.5,
        tolerance=TOLERANCES["text_classifier_auc"],
        noise=noise,
        p_value=float(result.pvalue),
        sentence=(
            f"a linear classifier on `{column}`'s TF-IDF word unigrams and bigrams tells "
            f"candidate documents from reference documents with held-out AUC {auc:.3f} "
            f"(0.5 = indistinguishable; {2 * half} held-out documents)"
        ),
    )


def text_mmd(comparison: Comparison, column: str) -> Signal | None:
    """A kernel two-sample test (``kernel_test.mmd_test``) on the TF-IDF rows of at most
    ``MMD_DOCUMENTS`` documents a side, the idf taken from both sides together so that
    nothing before the permutations knows a document's side."""
    rng = comparison.rng(f"text mmd {column}")
    sides = [
        sample_units(comparison, view, column)
        for view in (comparison.reference_view, comparison.candidate_view)
    ]
    n = min(sides[0].documents, sides[1].documents, MMD_DOCUMENTS)
    if n < 10:
        return None
    parts = [side.take(rng.permutation(side.documents)[:n]) for side in sides]
    rows = tfidf_matrix(_concatenate(parts))[0]
    test = mmd_test((rows @ rows.T).toarray(), rng, permutations_for(comparison.alpha))
    return Signal(
        name="text_mmd",
        kind=SignalKind.STRUCTURE,
        column=column,
        value=test.mmd2,
        reference_value=test.null_mean,
        effect=test.effect,
        tolerance=TOLERANCES["text_mmd"],
        noise=test.null_sd,
        p_value=test.p_value,
        sentence=(
            f"a kernel two-sample test on `{column}`'s TF-IDF word unigrams and bigrams finds "
            f"candidate and reference documents differently distributed (MMD^2 {test.mmd2:.2e}, "
            f"{_spreads(test.effect, test.null_sd)} its spread when the sides are shuffled; "
            f"{n} documents a side)"
        ),
    )


def _spreads(effect: float, spread: float) -> str:
    return f"{effect / spread:.1f} times" if spread > 0 else "beyond"


def _concatenate(parts: list[Units]) -> Units:
    ids = np.concatenate([p.ids for p in parts])
    lengths = np.concatenate([p.lengths for p in parts])
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return Units(offsets, ids)


def _sentence(name, column, value, reference, effect, sequence, comparison) -> str:
    unit = "words" if sequence.role is ColumnRole.TEXT else "tokens"
    c = f"`{column}`"
    if name == "rare_vocabulary":
        share = value / reference if reference > 0 else float("nan")
        text = (
            f"candidate uses {percent(share)} of the reference's rare vocabulary in {c} "
            f"({unit} beyond the reference's most frequent, matched amounts of text)"
        )
        lost = sequence.lost_rare_examples(comparison)
        return text + (f"; never used: {', '.join(repr(w) for w in lost)}" if lost else "")
    if name == "length_spread":
        return f"document lengths in {c} vary {percent(effect)} less than the reference's (std {value:.3g} vs {reference:.3g} {unit})"
    if name == "vocabulary_divergence":
        return f"{unit} frequencies of {c} differ from the reference's (Jensen-Shannon {value:.3g} nats, {effect:.3g} beyond real-vs-real)"
    if name in ("type_token_ratio", "distinct_2", "distinct_3", "distinct_4"):
        what = "distinct " + ({"type_token_ratio": unit}.get(name) or f"{name[-1]}-grams")
        return f"{c} has {percent(effect)} fewer {what} per {unit[:-1] if name == 'type_token_ratio' else 'n-gram'} than the reference ({value:.3g} vs {reference:.3g}, matched amounts of text)"
    if name == "unigram_entropy":
        return f"entropy of {c}'s {unit} fell from {reference:.3g} to {value:.3g} nats ({percent(effect)} lost)"
    if name == "zipf_steepness":
        return f"{c}'s {unit} pile onto the most frequent: Zipf slope {-value:.3g} vs the reference's {-reference:.3g}"
    if name == "repeated_ngrams":
        return f"{percent(value)} of {c}'s trigrams repeat one earlier in the same document (reference {percent(reference)})"
    if name == "repeated_lines":
        return f"{percent(value)} of {c}'s lines repeat an earlier line of the same document (reference {percent(reference)})"
    if name == "document_echo":
        return f"{c}'s documents echo each other: mean TF-IDF cosine to the closest other document {value:.3f} (reference {reference:.3f})"
    if name == "compression_ratio":
        return f"{c} compresses {percent(effect)} better than the reference (zlib ratio {value:.3g} vs {reference:.3g}): repetitive text"
    if name == "sequence_spectrum":
        return f"the power spectrum along {c}'s sequences differs from the reference's (total variation {value:.3g}, {effect:.3g} beyond real-vs-real)"
    if name == "ngram_log_likelihood":
        how = "more predictable" if value > reference else "less predictable"
        return f"{c} is {how} than real text under a bigram model of the reference ({value:.3f} vs {reference:.3f} nats per {unit[:-1]})"
    if name == "length_distribution":
        return f"document lengths in {c} are distributed differently from the reference's (KS {value:.3g})"
    return f"{name} of {c}: {value:.3g} vs {reference:.3g}"


def evidence_by_dimension(
    comparison: Comparison,
) -> dict[str, tuple[list[Signal], dict[str, float]]]:
    """Every sequence column's signals, by dimension (computed once per comparison)."""
    cached = comparison.cache.get("sequences")
    if cached is not None:
        return cached
    out: dict[str, tuple[list[Signal], dict[str, float]]] = {}
    columns = comparison.columns(*SEQUENCE_ROLES)
    if columns and comparison.can_calibrate:
        for column in columns:
            for dimension, signals in column_evidence(comparison, column).items():
                bucket = out.setdefault(dimension, ([], {}))
                bucket[0].extend(signals)
                for s in signals:
                    bucket[1][f"{s.name}[{column}]"] = s.value
                    bucket[1][f"{s.name}_reference[{column}]"] = float(s.reference_value)
    comparison.cache["sequences"] = out
    return out


def _for(dimension: str) -> Callable[[Comparison], tuple[list[Signal], dict[str, float]]]:
    def signals(comparison: Comparison) -> tuple[list[Signal], dict[str, float]]:
        return evidence_by_dimension(comparison).get(dimension, ([], {}))

    return signals


SIGNALS = {dimension: _for(dimension) for dimension in set(DIMENSION_OF.values())}


# -- features for the classifier test and the distance-based statistics -----------------


class SequenceFeatures:
    """Hashed unigram and bigram counts of each document (signed feature hashing into
    ``FEATURE_BUCKETS`` buckets, L2-normalized) and its log length, standardized on the
    reference sample."""

    def __init__(self, comparison: Comparison, column: str) -> None:
        self.column = column
        self._units = PerView(
            comparison, lambda view: sample_units(comparison, view, column), _concatenate
        )
        log_length = np.log1p(self._units.reference.lengths.astype(np.float64))
        self.length_center = float(np.median(log_length))
        self.length_scale = float(np.std(log_length)) or 1.0
        self.width = FEATURE_BUCKETS + 1

    def names(self) -> list[str]:
        return [f"{self.column}:ngram{i}" for i in range(FEATURE_BUCKETS)] + [
            f"{self.column}:log_length"
        ]

    def encode(self, part: Part) -> np.ndarray:
        units = self._units[part.view].take(part.rows)
        matrix = np.zeros((units.documents, FEATURE_BUCKETS))
        for n in (1, 2):
            hashes, document = ngram_hashes(units, n)
            if len(hashes) == 0:
                continue
            mixed = _mix(hashes ^ np.uint64(0x5851F42D4C957F2D + n))
            bucket = (mixed % np.uint64(FEATURE_BUCKETS)).astype(np.int64)
            sign = np.where((mixed >> np.uint64(63)) == 1, 1.0, -1.0)
            np.add.at(matrix, (document, bucket), sign)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        matrix = np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)
        length = (
            np.log1p(units.lengths.astype(np.float64)) - self.length_center
        ) / self.length_scale
        return np.hstack([matrix, length[:, None]])


def describe_tokens(tokenizer) -> Callable[[int], str]:
    """A function naming a token id through a Hugging Face-style tokenizer."""

    def name(token: int) -> str:
        try:
            if hasattr(tokenizer, "convert_ids_to_tokens"):
                return str(tokenizer.convert_ids_to_tokens(int(token)))
            return str(tokenizer.decode([int(token)]))
        except Exception:
            return f"#{token}"

    return name


def tokenizer_ignore_ids(tokenizer) -> frozenset[int]:
    """The ids that are never content: special tokens and the padding token."""
    ids = set(getattr(tokenizer, "all_special_ids", None) or ())
    pad = getattr(tokenizer, "pad_token_id", None)
    if pad is not None:
        ids.add(int(pad))
    return frozenset(int(i) for i in ids)
