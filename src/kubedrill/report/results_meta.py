"""Run-wide files next to the Allure results: environment.properties, executor.json and
categories.json.

Allure reads them from the results directory. Allure 3's awesome report takes its categories
from its config instead, so `kubedrill.report.html` passes `CATEGORIES` there too.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# Facts that are local paths: noise in a report that is forwarded to a team.
LOCAL_FACTS = frozenset({"kubeconfig", "kubectl"})

# Each regex must match a whole message (Allure 2 matches in full; Allure 3 searches), hence
# the [\s\S]* on both sides: messages span lines (they carry the drill's timeline).
# The first matching category wins in Allure 3, so the specific ones come first.
CATEGORIES: list[dict[str, Any]] = [
    {
        "name": "Budget breached",
        "description": "A measured interval exceeded its budget (kubedrill.drill.DrillFailure).",
        "matchedStatuses": ["failed"],
        "messageRegex": r"[\s\S]*budget breached[\s\S]*",
    },
    {
        "name": "Fault could not be injected",
        "description": "The fault failed to inject (FaultError) or a safety guard refused it "
        "(GuardError); nothing was left injected.",
        "matchedStatuses": ["broken", "failed"],
        "messageRegex": r"[\s\S]*(GuardError|FaultError: could not inject)[\s\S]*",
    },
    {
        "name": "Cluster unhealthy before the fault",
        "description": "The steady state did not hold, so the drill was skipped, not run.",
        "matchedStatuses": ["skipped", "broken"],
        "messageRegex": r"[\s\S]*cluster unhealthy before the fault[\s\S]*",
    },
    {
        "name": "Audit warning",
        "description": "kubedrill audit: an item short of the seed's checklist but not a failure "
        "(Allure has no warning status: it is shown as broken).",
        "matchedStatuses": ["broken"],
        "messageRegex": r"[\s\S]*audit warning[\s\S]*",
    },
    {
        "name": "Runner error",
        "description": "kubedrill itself or the drill's code broke (KubedrillError or any other "
        "unexpected exception), not the cluster's behaviour.",
        "matchedStatuses": ["broken"],
    },
]


def environment(facts: Mapping[str, str], *, cluster: str = "") -> dict[str, str]:
    """What the run was against: versions, topology, target (from `Cluster.facts`)."""
    found = {k: str(v) for k, v in facts.items() if k not in LOCAL_FACTS}
    if cluster:
        found["cluster"] = cluster
    return dict(sorted(found.items()))


def properties_text(values: Mapping[str, str]) -> str:
    """Java .properties, which is what Allure parses: escape what would end a key or value."""
    return "".join(f"{_escape(k, key=True)}={_escape(v)}\n" for k, v in values.items())


def _escape(text: str, *, key: bool = False) -> str:
    out = text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
    if key:
        for char in " =:#!":
            out = out.replace(char, "\\" + char)
    return out


def executor(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Who ran the drills; a GitHub Actions run is linked back to its page."""
    env = os.environ if env is None else env
    info: dict[str, Any] = {
        "name": "kubedrill",
        "type": "kubedrill",
        "reportName": "kubedrill game day",
        "buildName": "kubedrill run " + time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }
    if env.get("GITHUB_RUN_ID"):
        server = env.get("GITHUB_SERVER_URL", "")
        repository = env.get("GITHUB_REPOSITORY", "")
        run_id = env["GITHUB_RUN_ID"]
        workflow = env.get("GITHUB_WORKFLOW", "workflow")
        info |= {
            "type": "github",
            "buildName": f"{workflow} #{env.get('GITHUB_RUN_NUMBER', run_id)}",
            "buildOrder": int(env.get("GITHUB_RUN_NUMBER", "0") or 0),
        }
        if server and repository:
            info["buildUrl"] = f"{server}/{repository}/actions/runs/{run_id}"
    elif env.get("CI"):
        info["type"] = "ci"
    return info


def write_results_metadata(
    results_dir: Path,
    *,
    facts: Mapping[str, str] | None = None,
    cluster: str = "",
    env: Mapping[str, str] | None = None,
) -> list[Path]:
    """Write the three files into `results_dir`; environment.properties only when the facts
    are known (no drill ran means no cluster was looked at)."""
    results_dir.mkdir(parents=True, exist_ok=True)
    written = [
        _write(results_dir / "executor.json", json.dumps(executor(env), indent=2)),
        _write(results_dir / "categories.json", json.dumps(CATEGORIES, indent=2)),
    ]
    if facts is not None:
        text = properties_text(environment(facts, cluster=cluster))
        written.append(_write(results_dir / "environment.properties", text))
    return written


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path
