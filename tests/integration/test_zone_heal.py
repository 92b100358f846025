"""The zone outage's two shapes heal on every way out, and `kubedrill heal` repairs them after
SIGKILL: on an etcd lab in 3 zones (`edge` on 10.213.97.0/24, about a second to bring up),
through the exit-path child the other faults use."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubedrill.cluster import Cluster
from kubedrill.polling import poll_until
from kubedrill.probes import etcd_checks
from kubedrill.probes.etcd import EtcdClient
from kubedrill.targets.lab.config import LabConfig, load_lab_config
from tests.integration.conftest import ROOT, fault_traces, run_cli, running_lab

CHILD = Path(__file__).with_name("fault_child.py")
ZONED_LAB = "lab:\n  name: edge\n  topology: etcd\n  subnet: 10.213.97.0/24\n  zones: 3\n"


@pytest.fixture(scope="module")
def zoned_config(tmp_path_factory: pytest.TempPathFactory) -> LabConfig:
    path = tmp_path_factory.mktemp("zoned") / "lab.yaml"
    path.write_text(ZONED_LAB)
    return load_lab_config(path)


@pytest.fixture(scope="module")
def zoned_lab(zoned_config: LabConfig) -> Iterator[Cluster]:
    with running_lab(zoned_config) as cluster:
        yield cluster


def test_the_lab_puts_each_member_in_a_zone(zoned_lab: Cluster) -> None:
    assert zoned_lab.zones() == ["zone-a", "zone-b", "zone-c"]
    assert [n.zone for n in zoned_lab.with_role("etcd")] == ["zone-a", "zone-b", "zone-c"]


@pytest.mark.parametrize(
    ("fault", "exit_path"),
    [("zone-power", "sigkill"), ("zone-network", "sigkill"), ("zone-power", "sigterm")],
)
def test_zone_outage_leaves_nothing_behind(
    zoned_lab: Cluster, zoned_config: LabConfig, tmp_path: Path, fault: str, exit_path: str
) -> None:
    ledger_dir = tmp_path / "ledger"
    # This checkout's sources first (a worktree's venv may point elsewhere).
    path = os.pathsep.join([str(ROOT), str(ROOT / "src")])
    env = {**os.environ, "KUBEDRILL_LEDGER_DIR": str(ledger_dir), "PYTHONPATH": path}
    etcd = EtcdClient(zoned_lab.etcd)
    try:
        _, healthy = poll_until(lambda: etcd_checks.all_healthy(etcd), bool, timeout=30)
        assert healthy, "lab unhealthy before the fault"
        leader = etcd.leader()
        child = subprocess.Popen(
            [sys.executable, str(CHILD), str(zoned_config.state_dir), fault, exit_path],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        first = child.stdout.readline()
        assert first.strip() == "INJECTED", child.stderr.read() if child.stderr else first
        assert list(ledger_dir.glob("*.json")), "no undo record while the fault is active"
        # The fault is really there: the leader's zone lost its member (power) or its links.
        traces = fault_traces(zoned_lab, zoned_config)
        assert traces, "nothing injected"
        if fault == "zone-power":
            assert f"{leader}: etcd not running" in traces, traces
        child.send_signal(signal.SIGKILL if exit_path == "sigkill" else signal.SIGTERM)
        child.wait(timeout=60)
        assert child.returncode != 0
        if exit_path == "sigkill":
            assert list(ledger_dir.glob("*.json")), "SIGKILL should leave the undo record"
            healed = run_cli("heal", env={"KUBEDRILL_LEDGER_DIR": str(ledger_dir)})
            assert healed.returncode == 0, healed.stdout + healed.stderr
        assert not list(ledger_dir.glob("*.json")), "undo record left behind"
        traces, clean = poll_until(
            lambda: fault_traces(zoned_lab, zoned_config),
            lambda t: not t,
            timeout=30,
            interval=0.25,
        )
        assert clean, f"{fault} / {exit_path} left: {traces}"
        _, healthy = poll_until(lambda: etcd_checks.all_healthy(etcd), bool, timeout=30)
        assert healthy, f"{fault} / {exit_path}: lab did not recover"
    finally:
        etcd.close()
