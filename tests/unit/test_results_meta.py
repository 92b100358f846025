"""environment.properties, executor.json and categories.json for Allure."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from kubedrill.report.results_meta import CATEGORIES, executor, write_results_metadata

FACTS = {
    "target": "lab",
    "topology": "stacked",
    "etcd_version": "v3.6.16",
    "kubernetes_version": "v1.34.2",
    "kubeconfig": "/var/lib/kubedrill/lab/admin.conf",
}


def category_of(status: str, message: str) -> str | None:
    """The first category that matches, as Allure 3 picks it (a regex search)."""
    for category in CATEGORIES:
        if status not in category["matchedStatuses"]:
            continue
        regex = category.get("messageRegex")
        if regex is None or re.search(regex, message):
            return str(category["name"])
    return None


def parse_properties(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line)


def test_files_are_written_with_versions_topology_and_target(tmp_path: Path) -> None:
    written = write_results_metadata(tmp_path, facts=FACTS, cluster="lab/lab", env={})
    assert sorted(p.name for p in written) == [
        "categories.json",
        "environment.properties",
        "executor.json",
    ]
    env = parse_properties((tmp_path / "environment.properties").read_text())
    assert env["etcd_version"] == "v3.6.16"
    assert env["kubernetes_version"] == "v1.34.2"
    assert env["topology"] == "stacked"
    assert env["target"] == "lab"
    assert env["cluster"] == "lab/lab"
    assert "kubeconfig" not in env  # a local path, not something a reader needs
    assert json.loads((tmp_path / "categories.json").read_text()) == CATEGORIES


def test_no_facts_means_no_environment_file(tmp_path: Path) -> None:
    write_results_metadata(tmp_path, env={})
    assert not (tmp_path / "environment.properties").exists()
    assert (tmp_path / "executor.json").exists()


def test_executor_links_a_github_run() -> None:
    info = executor(
        {
            "GITHUB_RUN_ID": "42",
            "GITHUB_RUN_NUMBER": "7",
            "GITHUB_WORKFLOW": "game day",
            "GITHUB_SERVER_URL": "https://github.example",
            "GITHUB_REPOSITORY": "org/repo",
        }
    )
    assert info["name"] == "kubedrill"
    assert info["type"] == "github"
    assert info["buildName"] == "game day #7"
    assert info["buildOrder"] == 7
    assert info["buildUrl"] == "https://github.example/org/repo/actions/runs/42"


def test_executor_without_ci() -> None:
    info = executor({})
    assert info["type"] == "kubedrill"
    assert info["buildName"].startswith("kubedrill run ")


@pytest.mark.parametrize(
    ("status", "message", "expected"),
    [
        (
            "failed",
            "kubedrill.drill.DrillFailure: budget breached: leader_election took 16.2 s "
            "(fault.injecting -> leader.elected), budget leader_election is 15.000 s\n"
            "timeline:\n  0.1s fault.injecting",
            "Budget breached",
        ),
        (
            "broken",
            "kubedrill.errors.FaultError: could not inject 'kill leader etcd on etcd-2': "
            "command on etcd-2 exited 1",
            "Fault could not be injected",
        ),
        (
            "broken",
            "kubedrill.errors.GuardError: refusing 'stop etcd on etcd-1, etcd-2': etcd would "
            "keep 1 of 3 members and lose quorum",
            "Fault could not be injected",
        ),
        (
            "skipped",
            "Skipped: cluster unhealthy before the fault: every etcd member answers did not "
            "hold within 30 s",
            "Cluster unhealthy before the fault",
        ),
        (
            "broken",
            "kubedrill.errors.TargetError: lab is not running",
            "Runner error",
        ),
        ("failed", "kubedrill.drill.DrillFailure: leader.elected did not happen", None),
        ("passed", "", None),
    ],
)
def test_categories_sort_drill_outcomes(status: str, message: str, expected: str | None) -> None:
    assert category_of(status, message) == expected


def test_category_regexes_also_match_whole_messages() -> None:
    """Allure 2 matches the regex against the whole message; Allure 3 searches."""
    message = "x\nbudget breached: y\nz"
    assert re.fullmatch(str(CATEGORIES[0]["messageRegex"]), message)
