"""Create the collapse-gate dashboard in a W&B project (run it once per project).

    pip install wandb-workspaces
    python integrations/wandb/dashboard.py --entity E --project P
    python integrations/wandb/dashboard.py --dry-run   # the panels as JSON, nothing saved

The panels come from the keys that ``collapse_callbacks.tracking.sinks.log_gate`` writes
(``logged_keys``), so the dashboard shows exactly what the training callbacks log. It
saves a workspace view named ``--name`` (a new view each time it runs) through the
``wandb_workspaces`` API, which needs a W&B login (``wandb login`` or WANDB_API_KEY).

Exit codes: 0 saved (or printed), 2 bad arguments or wandb-workspaces missing.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys

from collapse_callbacks.tracking.sinks import (
    ARTIFACT_NAME,
    CHART_FIELDS,
    CHART_SPEC,
    CHART_TABLE_SUFFIX,
    COLLAPSED_KEY,
    DEFAULT_HISTOGRAMS,
    DIVERSITY,
    FAILING_TABLE_KEY,
    HISTOGRAM_TABLE_KEY,
    SCORE_KEY,
    SHIFT_KEY,
    VERDICT_KEY,
    dimension_key,
    logged_keys,
)

INSTALL_HINT = (
    "the dashboard is created with the W&B Workspaces API, which is not installed: "
    "pip install wandb-workspaces"
)


def panel_specs(histograms: int = DEFAULT_HISTOGRAMS) -> list[dict]:
    """Every panel as plain data: section, type, title, and the keys it shows (``keys``
    exact, ``regex`` a pattern over history keys)."""
    keys = logged_keys(histograms=histograms)
    # The diversity score gets its panel in the diversity section, beside its figures.
    headline = (SCORE_KEY, COLLAPSED_KEY, SHIFT_KEY, dimension_key(DIVERSITY))
    dimension_scores = [k for k in keys.history if k not in headline]
    statuses = [k for k in keys.summary if k != VERDICT_KEY]
    verdict = "collapse gate: verdict"
    specs = [
        _spec(verdict, "scalar", "gate score (0-100)", [SCORE_KEY]),
        _spec(verdict, "summary", "verdict: collapsed / shift / pass", [VERDICT_KEY]),
        _spec(verdict, "line", "gate score per check", [SCORE_KEY]),
        _spec(verdict, "line", "collapsed and shift (1 = yes)", [COLLAPSED_KEY, SHIFT_KEY]),
        _spec(verdict, "artifact", "full gate report (JSON)", [ARTIFACT_NAME]),
    ]
    specs += [
        _spec("collapse gate: dimensions", "bar", f"{_short(k)} score", [k])
        for k in dimension_scores
    ]
    specs += [_spec("collapse gate: dimension status", "summary", _short(k), [k]) for k in statuses]
    failing = "collapse gate: failing columns"
    specs += [
        _spec(failing, "summary", "failing signals, one row per signal", [FAILING_TABLE_KEY]),
        _spec(failing, "summary", "worst columns' histograms (shares)", [HISTOGRAM_TABLE_KEY]),
    ]
    specs += [
        {
            **_spec("collapse gate: worst columns", "chart", f"worst column {i}", [key]),
            "table": key + CHART_TABLE_SUFFIX,
        }
        for i, key in enumerate(keys.charts, start=1)
    ]
    specs += [
        _spec(
            "collapse gate: diversity",
            "line",
            "diversity figures (candidate and reference)",
            [],
            regex=pattern,
        )
        for pattern in keys.patterns
    ]
    specs.append(
        _spec("collapse gate: diversity", "bar", "diversity score", [dimension_key(DIVERSITY)])
    )
    return specs


def _spec(section: str, kind: str, title: str, keys: list[str], regex: str | None = None):
    spec = {"section": section, "type": kind, "title": title, "keys": list(keys)}
    if regex is not None:
        spec["regex"] = regex
    return spec


def _short(key: str) -> str:
    return key.split("/", 1)[1]


# --------------------------------------------------------------------------- W&B objects


def build_workspace(entity: str, project: str, name: str, specs: list[dict]):
    """The workspace view as ``wandb_workspaces`` objects (nothing is sent yet)."""
    import wandb_workspaces.reports.v2 as wr
    import wandb_workspaces.workspaces as ws

    sections: dict[str, list] = {}
    for spec in specs:
        sections.setdefault(spec["section"], []).append(_panel(wr, spec))
    return ws.Workspace(
        entity=entity,
        project=project,
        name=name,
        sections=[
            ws.Section(name=section, panels=panels, is_open=True)
            for section, panels in sections.items()
        ],
    )


def _panel(wr, spec: dict):
    kind, title, keys = spec["type"], spec["title"], spec["keys"]
    if kind == "scalar":
        return wr.ScalarChart(title=title, metric=keys[0])
    if kind == "line" and "regex" in spec:
        return wr.LinePlot(title=title, metric_regex=spec["regex"])
    if kind == "line":
        return wr.LinePlot(title=title, y=keys)
    if kind == "bar":
        return wr.BarPlot(title=title, metrics=keys, orientation="h")
    if kind == "summary":
        # Shows runs.summary[key]: a table, or a plain value such as the verdict.
        return wr.WeavePanelSummaryTable(table_name=keys[0])
    if kind == "chart":
        return wr.CustomChart(
            query={"summaryTable": {"tableKey": spec["table"]}},
            chart_name=CHART_SPEC,
            chart_fields=dict(CHART_FIELDS),
            chart_strings={"title": title},
        )
    if kind == "artifact":
        return wr.WeavePanelArtifact(artifact=keys[0], tab="files")
    raise ValueError(f"unknown panel type {kind!r}")


# --------------------------------------------------------------------------- command line


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Create the collapse-gate dashboard (a workspace view) in a W&B project."
    )
    parser.add_argument("--entity", help="W&B entity (user or team)")
    parser.add_argument("--project", help="W&B project the callbacks log to")
    parser.add_argument("--name", default="collapse-gate", help="name of the workspace view")
    parser.add_argument(
        "--histograms",
        type=int,
        default=DEFAULT_HISTOGRAMS,
        help="how many worst-column charts to show (default %(default)s)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print the panels as JSON and save nothing"
    )
    args = parser.parse_args(argv)
    if args.histograms < 0:
        parser.error("--histograms must be >= 0")
    if not args.dry_run and not (args.entity and args.project):
        parser.error("--entity and --project are required (or use --dry-run)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    specs = panel_specs(args.histograms)
    if args.dry_run:
        print(json.dumps(specs, indent=2))
        return 0
    # Asked by name, so that a broken dependency of an installed wandb-workspaces shows its
    # own error instead of this hint.
    if importlib.util.find_spec("wandb_workspaces") is None:
        print(f"error: {INSTALL_HINT}", file=sys.stderr)
        return 2
    workspace = build_workspace(args.entity, args.project, args.name, specs)
    workspace.save()
    print(f"saved {len(specs)} panels to {args.entity}/{args.project} as {args.name!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
