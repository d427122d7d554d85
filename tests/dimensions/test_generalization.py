"""Generalization gap (classifier two-sample test) on real data: a filtered real
selection is told apart by one column and reads as shift; collapse is joint."""

from __future__ import annotations

import numpy as np

from collapse_callbacks import CollapseGate
from collapse_callbacks.dimensions import generalization
from collapse_callbacks.profiling import compare_sources
from helpers import split


def evidence(reference, candidate, seed=0):
    comparison, _ = compare_sources(reference, candidate, alpha=0.01, seed=seed)
    return generalization.run(comparison)


def test_a_real_filter_on_one_column_is_told_apart_by_that_column(breast_cancer):
    reference, rest = split(breast_cancer)
    kept = rest[rest["worst texture"] > np.percentile(rest["worst texture"], 30)]
    (signal,) = evidence(reference, kept).signals
    assert signal.name == "classifier_auc_one_column"
    assert signal.value > 0.5
    # `worst texture` or its close twin `mean texture` (correlation 0.91)
    assert "texture` alone does nearly as well" in signal.sentence
    report = CollapseGate(reference).check(kept)
    assert report.shift and not report.collapsed


def test_a_jointly_narrowed_candidate_is_not_confined(breast_cancer):
    reference, candidate = split(breast_cancer)
    numeric = candidate.select_dtypes("number").columns
    shrunk = candidate.copy()
    # Every column pulled a third of the way to its median: no single column's ranking
    # tells the sets apart, the joint spread does.
    shrunk[numeric] = candidate[numeric].median() + 0.67 * (
        candidate[numeric] - candidate[numeric].median()
    )
    (signal,) = evidence(reference, shrunk).signals
    assert signal.name == "classifier_auc"
    assert signal.fires(0.01)


def test_a_real_split_is_not_told_apart(breast_cancer):
    reference, candidate = split(breast_cancer, seed=2)
    (signal,) = evidence(reference, candidate).signals
    assert not signal.fires(0.01)
