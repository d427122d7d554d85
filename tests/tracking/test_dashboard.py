"""integrations/wandb/dashboard.py: every key log_gate writes has a panel."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from collapse_callbacks.tracking.sinks import (
    ARTIFACT_NAME,
    CHART_TABLE_SUFFIX,
    DEFAULT_HISTOGRAMS,
    MemorySink,
    histogram_key,
    log_gate,
)

SCRIPT = Path(__file__).resolve().parents[2] / "integrations" / "wandb" / "dashboard.py"
# Run the script with wandb_workspaces made unimportable, whether or not it is installed.
WITHOUT_WORKSPACES = (
    "import runpy, sys\n"
    "sys.modules['wandb_workspaces'] = None\n"
    "sys.argv = [{script!r}, *{args!r}]\n"
    "runpy.run_path({script!r}, run_name='__main__')\n"
)


def _run(*args: str) -> subprocess.CompletedProcess:
    code = WITHOUT_WORKSPACES.format(script=str(SCRIPT), args=list(args))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


def _covered(key: str, panels: list[dict]) -> bool:
    return any(
        key in panel["keys"] or ("regex" in panel and re.match(panel["regex"], key))
        for panel in panels
    )


def test_dry_run_has_a_panel_for_every_logged_key(collapsed):
    result = _run("--dry-run")
    assert result.returncode == 0, result.stderr
    panels = json.loads(result.stdout)

    sink = MemorySink()
    log_gate(sink, collapsed.report, collapsed.histograms, aborted=True)
    keys = sink.keys()
    assert len(keys) > 50  # scores, statuses, diversity figures, tables, charts
    missing = sorted(k for k in keys if not _covered(k, panels))
    assert missing == []
    assert _covered(ARTIFACT_NAME, [p for p in panels if p["type"] == "artifact"])

    # One chart panel per histogram slot, reading the table wandb.plot stores the chart in.
    charts = [p for p in panels if p["type"] == "chart"]
    assert [p["keys"] for p in charts] == [
        [histogram_key(i)] for i in range(1, DEFAULT_HISTOGRAMS + 1)
    ]
    assert all(p["table"] == p["keys"][0] + CHART_TABLE_SUFFIX for p in charts)
    # Exact keys are never shown twice in the same kind of panel.
    exact = [(p["type"], k) for p in panels for k in p["keys"]]
    assert len(exact) == len(set(exact))


def test_a_diversity_regex_matches_only_diversity_figures():
    panels = json.loads(_run("--dry-run", "--histograms", "2").stdout)
    (regex,) = [p["regex"] for p in panels if "regex" in p]
    assert re.match(regex, "collapse_gate/diversity/distinct_ratio[body_mass_g]")
    assert not re.match(regex, "collapse_gate/diversity")
    assert not re.match(regex, "collapse_gate/score")
    assert len([p for p in panels if p["type"] == "chart"]) == 2


def test_without_wandb_workspaces_it_names_the_install_and_exits_2():
    result = _run("--entity", "e", "--project", "p")
    assert result.returncode == 2
    assert "pip install wandb-workspaces" in result.stderr
    assert result.stdout == ""


def test_entity_and_project_are_required_unless_dry_run():
    result = _run("--entity", "e")
    assert result.returncode == 2
    assert "--entity and --project are required" in result.stderr
