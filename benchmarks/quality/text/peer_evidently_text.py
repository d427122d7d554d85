"""Evidently's text drift as a detector, with Evidently's own defaults. Runs in
benchmarks/quality/_envs/.venv-evidently (``peers/setup.sh evidently``).

For a text column ``DataDriftPreset`` runs Evidently's text-content drift: a domain
classifier (tf-idf + logistic regression) trained on half of reference + candidate to
tell them apart, ROC AUC on the other half. With up to 1,000 reference documents the AUC
is compared with the 95th percentile of AUCs under shuffled labels
(``perc_text_content_drift``); beyond, with 0.55 (``abs_text_content_drift``). We call
that test through Evidently's stattest registry, exactly as the preset picks it: the
preset's ``Report`` computes the column's drift once per metric (three times, ~4 s a
case instead of ~1.3 s at 1,000 documents) and, with one column, its dataset verdict is
that column's verdict (``check_report`` below gives the same answer). The harness's
alpha is not passed on. ``score`` is ``100 x (1 - 2 max(0, AUC - 0.5))``, AUC in
``extras``.

Usage: ``peer_evidently_text.py CASE_DIR ...`` or ``--stdin`` (see peers/_common.py).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# The shared case reader and stdin loop live with the tabular peers.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "peers"))

from _common import PeerCase, main

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("EVIDENTLY_DISABLE_TELEMETRY", "1")

DRIFT_SHARE = 0.5
COLUMN = "text"


def check(case: PeerCase) -> dict:
    from evidently.legacy.calculations.stattests.registry import get_stattest
    from evidently.legacy.core import ColumnType

    reference, candidate = case.reference[COLUMN], case.candidate[COLUMN]
    # The test DataDriftPreset picks for a text column, with its default threshold.
    test = get_stattest(reference, candidate, ColumnType.Text, None)
    result = test(reference, candidate, ColumnType.Text, None)
    auc = float(result.drift_score)
    return {
        "collapsed": bool(result.drifted),
        "shift": None,
        "score": 100.0 * (1.0 - 2.0 * max(0.0, auc - 0.5)),
        "signals": {f"{COLUMN} ({test.name})": bool(result.drifted)},
        "extras": {"auc": auc},
    }


def check_report(case: PeerCase) -> dict:
    """The same verdict through ``Report([DataDriftPreset()])`` (3x slower: the preset
    computes the column's drift once per metric). Kept to check that both agree."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(text_columns=[COLUMN])
    snapshot = Report([DataDriftPreset(drift_share=DRIFT_SHARE)]).run(
        current_data=Dataset.from_pandas(case.candidate[[COLUMN]], data_definition=definition),
        reference_data=Dataset.from_pandas(case.reference[[COLUMN]], data_definition=definition),
    )
    share, auc = None, None
    for metric in snapshot.dict()["metrics"]:
        config, value = metric["config"], metric["value"]
        if config.get("type", "").endswith("DriftedColumnsCount"):
            share = float(value["share"])
        elif config.get("type", "").endswith("ValueDrift"):
            auc = float(value)
    if share is None or auc is None:
        raise RuntimeError("no DriftedColumnsCount or text ValueDrift metric in the snapshot")
    return {"collapsed": share >= DRIFT_SHARE, "auc": auc}


if __name__ == "__main__":
    raise SystemExit(main(check))
