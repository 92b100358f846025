"""The runner itself works: a drill passes on a healthy lab, an impossible budget fails with
the measured figure, --dry-run injects nothing, and reports carry steps and the timeline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kubedrill.cluster import Cluster
from kubedrill.polling import poll_until
from kubedrill.probes import etcd_checks
from kubedrill.probes.etcd import EtcdClient
from kubedrill.targets.lab.config import LabConfig
from tests.integration.conftest import run_pytest

KILL_LEADER = "drills/test_etcd.py::test_kill_leader"
ISOLATE_LEADER = "drills/test_etcd.py::test_isolate_leader"


@pytest.fixture(autouse=True)
def healthy_before(test_lab: Cluster) -> None:
    """Each test starts from a healthy lab (the previous one may have just killed a leader)."""
    etcd = EtcdClient(test_lab.etcd)
    try:
        _, ok = poll_until(lambda: etcd_checks.all_healthy(etcd), bool, timeout=30)
    finally:
        etcd.close()
    assert ok, "the test lab is unhealthy"


def report_args(tmp_path: Path, lab_config_file: Path) -> list[str]:
    return [
        "--lab-config",
        str(lab_config_file),
        "--alluredir",
        str(tmp_path / "allure"),
        "--junitxml",
        str(tmp_path / "junit.xml"),
        "--kubedrill-reports",
        str(tmp_path),
    ]


def allure_results(tmp_path: Path) -> list[dict[str, object]]:
    return [json.loads(p.read_text()) for p in (tmp_path / "allure").glob("*-result.json")]


def step_names(result: dict[str, object]) -> list[str]:
    names: list[str] = []

    def walk(steps: object) -> None:
        for step in steps if isinstance(steps, list) else []:
            names.append(str(step.get("name", "")))
            walk(step.get("steps", []))

    walk(result.get("steps", []))
    return names


def test_drill_passes_on_healthy_lab(
    test_lab: Cluster, lab_config_file: Path, tmp_path: Path
) -> None:
    proc = run_pytest(KILL_LEADER, *report_args(tmp_path, lab_config_file))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    (drill,) = summary["drills"]
    assert drill["verdict"] == "passed"
    election = next(m for m in drill["measurements"] if m["budget"] == "leader_election")
    assert 0 < election["seconds"] < election["budget_s"] == 15.0
    (result,) = allure_results(tmp_path)
    assert result["status"] == "passed"
    names = step_names(result)
    for phase in ("steady state", "inject", "observe", "heal", "verify"):
        assert any(n.startswith(phase) for n in names), f"no {phase!r} step in {names}"
    attachments = [a["name"] for a in result.get("attachments", [])]  # type: ignore[attr-defined]
    assert "timeline" in attachments
    assert (tmp_path / "junit.xml").exists()
    # Its phases were shown while it ran, without -s: what it waited for and for how long.
    live = [line for line in proc.stdout.splitlines() if line.startswith("[kubedrill]")]
    assert any("test_kill_leader: waiting for leader.elected" in line for line in live), live
    assert any("fault.injected" in line for line in live), live
    assert any("member.rejoined after" in line and "budget recovery" in line for line in live)
    assert drill["error_budget"]["through"] == "etcd"
    assert summary["error_budget"]["unavailable_s"] == drill["error_budget"]["unavailable_s"]


def test_impossible_budget_fails_with_the_figure(
    test_lab: Cluster, lab_config_file: Path, tmp_path: Path
) -> None:
    proc = run_pytest(
        KILL_LEADER, "--budget", "leader_election=1ms", *report_args(tmp_path, lab_config_file)
    )
    out = proc.stdout
    assert proc.returncode == 1, out[-3000:]
    assert "budget breached: leader_election took" in out
    assert "budget leader_election is 0.001 s" in out
    assert "fault.injected" in out and "leader.elected" in out  # the timeline is printed
    summary = json.loads((tmp_path / "summary.json").read_text())
    (drill,) = summary["drills"]
    assert drill["verdict"] == "failed"
    assert drill["measurements"][0]["within"] is False


def test_dry_run_prints_the_plan_and_injects_nothing(
    test_lab: Cluster, lab_config_file: Path, tmp_path: Path
) -> None:
    before = test_lab.leader("etcd")
    proc = run_pytest(ISOLATE_LEADER, "--dry-run", *report_args(tmp_path, lab_config_file))
    assert proc.returncode == 0, proc.stdout[-3000:]
    out = proc.stdout  # no -s: the walk is in the terminal summary
    assert "kubedrill dry run" in out and "iptables -w -A" in out and "1 passed" in out
    (drill,) = json.loads((tmp_path / "summary.json").read_text())["drills"]
    kinds = [step["kind"] for step in drill["dry_run"]]
    # The whole drill: past its first wait, up to the verify step and its data checks.
    assert kinds.index("inject") < kinds.index("wait") < kinds.index("undo")
    assert "assert" in kinds and "verify" in kinds and "check" in kinds
    for node in test_lab.nodes:
        rules = test_lab.transport(node).run(["iptables", "-S"]).stdout
        assert "DROP" not in rules
    assert test_lab.leader("etcd") == before


def test_invalid_budget_option_is_a_usage_error(tmp_path: Path, lab_config_file: Path) -> None:
    proc = run_pytest(
        KILL_LEADER, "--budget", "leader_election=-3", *report_args(tmp_path, lab_config_file)
    )
    assert proc.returncode == 4
    assert "must be a positive duration" in proc.stderr


def test_no_secrets_in_evidence(
    test_lab: Cluster, lab_config: LabConfig, lab_config_file: Path, tmp_path: Path
) -> None:
    """Nothing a run writes (Allure, JUnit, summary, console) holds key material."""
    proc = run_pytest(KILL_LEADER, "-s", *report_args(tmp_path, lab_config_file))
    assert proc.returncode == 0, proc.stdout[-2000:]
    secrets = []
    for key_file in (lab_config.state_dir / "pki").rglob("*.key"):
        secrets += [ln for ln in key_file.read_text().splitlines() if "-----" not in ln]
    assert len(secrets) > 10, "expected to find the lab's private keys to look for"
    written = [proc.stdout, proc.stderr] + [
        p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file()
    ]
    for text in written:
        assert "PRIVATE KEY" not in text
        leaked = [s for s in secrets if s in text]
        assert not leaked, f"{len(leaked)} lines of private keys found in the evidence"
