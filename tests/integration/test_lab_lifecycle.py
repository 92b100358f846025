"""`lab up` is idempotent, 5- and 7-member labs work, the supervisor restarts a crashed member,
and `lab down` leaves nothing behind."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubedrill.cluster import Cluster
from kubedrill.polling import poll_until
from kubedrill.probes import etcd_checks
from kubedrill.probes.etcd import EtcdClient
from kubedrill.targets.lab import lab
from kubedrill.targets.lab.config import LabConfig, load_lab_config
from tests.integration.conftest import etcd_lab_file, leftovers, run_cli, running_lab

# A lab of this module's own (these fixtures override the session's `kdtest` ones), so running
# this file alone never brings up, or tears down, the lab other test files share.
LAB = "kdlife"
SUBNET = "10.213.77.0/24"


@pytest.fixture(scope="module")
def lab_config_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return etcd_lab_file(tmp_path_factory, LAB, SUBNET)


@pytest.fixture(scope="module")
def lab_config(lab_config_file: Path) -> LabConfig:
    return load_lab_config(lab_config_file)


@pytest.fixture(scope="module")
def test_lab(lab_config: LabConfig) -> Iterator[Cluster]:
    with running_lab(lab_config) as cluster:
        yield cluster


def pids(config: LabConfig) -> dict[str, int]:
    status = json.loads((config.state_dir / "run" / "status.json").read_text())
    return {k: v["pid"] for k, v in status.items()}


def test_up_is_idempotent(test_lab: Cluster, lab_config: LabConfig) -> None:
    before = pids(lab_config)
    started = time.monotonic()
    again = lab.up(lab_config, progress=lambda _m: None)
    assert time.monotonic() - started < 10
    assert pids(lab_config) == before
    assert [n.name for n in again.nodes] == [n.name for n in test_lab.nodes]


def test_status_reports_every_member(test_lab: Cluster, lab_config_file: Path) -> None:
    proc = run_cli("lab", "status", "--json", "--config", str(lab_config_file))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["up"] is True
    assert report["leader"] in {n.name for n in test_lab.nodes}
    assert [h["running"] for h in report["hosts"]] == [True, True, True]


def test_supervisor_restarts_a_crashed_member(test_lab: Cluster, lab_config: LabConfig) -> None:
    node = test_lab.nodes[0]
    key = f"{node.name}__etcd"
    before = pids(lab_config)[key]
    restarts = json.loads((lab_config.state_dir / "run" / "status.json").read_text())[key]
    os.kill(before, signal.SIGKILL)
    _, restarted = poll_until(
        lambda: pids(lab_config).get(key), lambda p: p not in (None, before), timeout=20
    )
    assert restarted, "the supervisor did not restart the killed member"
    after = json.loads((lab_config.state_dir / "run" / "status.json").read_text())[key]
    assert after["restarts"] == restarts["restarts"] + 1
    etcd = EtcdClient(test_lab.etcd)
    try:
        _, healthy = poll_until(lambda: etcd_checks.all_healthy(etcd), bool, timeout=30)
    finally:
        etcd.close()
    assert healthy


@pytest.mark.parametrize("members", [5, 7])
def test_bigger_labs_come_up_and_go_away(members: int, tmp_path: Path) -> None:
    name = f"kdm{members}"
    config_file = tmp_path / "lab.yaml"
    config_file.write_text(
        f"lab:\n  name: {name}\n  topology: etcd\n  members: {members}\n"
        f"  subnet: 10.213.{members + 10}.0/24\n"
    )
    config = load_lab_config(config_file)
    try:
        cluster = lab.up(config, progress=lambda _m: None)
        assert len(cluster.nodes) == members
        etcd = EtcdClient(cluster.etcd)
        try:
            assert etcd_checks.all_healthy(etcd)
            assert len(etcd.member_names()) == members
        finally:
            etcd.close()
    finally:
        lab.down(config, progress=lambda _m: None)
    assert leftovers(name) == []
