"""SDMetrics QualityReport as a detector.

SDMetrics scores quality (0-1: Column Shapes and Column Pair Trends) and gives no
pass/fail; the flag here is "overall score below THRESHOLD", a cut a user would pick
by eye. ``score`` is the overall quality x 100, which the Spearman table uses without
any threshold. Runs in _envs/.venv-sdmetrics.
"""

from __future__ import annotations

import warnings

import numpy as np
from _common import PeerCase, main

THRESHOLD = 0.90
TABLE = "table"


def check(case: PeerCase) -> dict:
    from sdmetrics.reports import QualityReport

    columns = {c: {"sdtype": "numerical"} for c in case.numeric}
    columns.update({c: {"sdtype": "categorical"} for c in case.categorical})
    metadata = {"tables": {TABLE: {"columns": columns}}}
    # ContingencySimilarity subsamples 50,000 rows with numpy's global generator.
    np.random.seed(case.seed % 2**32)
    report = QualityReport()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report.generate({TABLE: case.reference}, {TABLE: case.candidate}, metadata, verbose=False)
    score = float(report.get_score())
    properties = report.get_properties()
    prop = {str(r["Property"]): float(r["Score"]) for _, r in properties.iterrows()}
    return {
        "collapsed": score < THRESHOLD,
        "shift": None,
        "score": 100.0 * score,
        "signals": {k: v < THRESHOLD for k, v in prop.items() if np.isfinite(v)},
        "extras": prop,
    }


if __name__ == "__main__":
    raise SystemExit(main(check))
