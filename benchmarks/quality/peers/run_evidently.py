"""Evidently's DataDriftPreset as a detector, with Evidently's own defaults.

Evidently picks a test per column (KS or chi-square / Z-test on small data, Wasserstein
or Jensen-Shannon distances beyond 1,000 rows) and calls the dataset drifted when at
least half the columns drift (``drift_share=0.5``). The flag is that dataset verdict.
The harness's alpha is not passed on: Evidently's per-test thresholds are the product's
behaviour. ``score`` is 100 x (1 - share of drifted columns). Runs in
_envs/.venv-evidently.
"""

from __future__ import annotations

import os

from _common import PeerCase, main

# Evidently reports usage unless told not to; this machine has no network anyway.
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("EVIDENTLY_DISABLE_TELEMETRY", "1")

DRIFT_SHARE = 0.5


def check(case: PeerCase) -> dict:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(
        numerical_columns=case.numeric, categorical_columns=case.categorical
    )
    report = Report([DataDriftPreset(drift_share=DRIFT_SHARE)])
    snapshot = report.run(
        current_data=Dataset.from_pandas(case.candidate, data_definition=definition),
        reference_data=Dataset.from_pandas(case.reference, data_definition=definition),
    )
    signals, extras = {}, {}
    share = None
    for metric in snapshot.dict()["metrics"]:
        config, value = metric["config"], metric["value"]
        kind = config.get("type", "")
        if kind.endswith("DriftedColumnsCount"):
            share = float(value["share"])
        elif kind.endswith("ValueDrift"):
            column, method, threshold = config["column"], config["method"], config["threshold"]
            # p-value methods drift below the threshold; distance methods at or above it.
            drifted = value < threshold if "p_value" in method else value >= threshold
            signals[column] = bool(drifted)
            extras[f"{method}:{column}"] = float(value)
    if share is None:
        raise RuntimeError("no DriftedColumnsCount metric in the snapshot")
    return {
        "collapsed": share >= DRIFT_SHARE,
        "shift": None,
        "score": 100.0 * (1.0 - share),
        "signals": signals,
        "extras": extras,
    }


if __name__ == "__main__":
    raise SystemExit(main(check))
