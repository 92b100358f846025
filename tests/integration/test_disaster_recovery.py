"""Disaster recovery on a real etcd lab: the drill catches a restore that silently lost
acknowledged writes from before the snapshot (negative test), and a runner SIGKILLed in the
middle of the restore leaves nothing `kubedrill heal` cannot finish."""

from __future__ import annotations

import json
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
from kubedrill.targets.lab.config import load_lab_config
from tests.integration.conftest import ROOT, run_cli, run_pytest, running_lab

CHILD = Path(__file__).with_name("dr_child.py")


def lab_file(tmp_path: Path, name: str, subnet: str) -> Path:
    path = tmp_path / "lab.yaml"
    path.write_text(f"lab:\n  name: {name}\n  topology: etcd\n  subnet: {subnet}\n")
    return path


def test_the_drill_catches_a_restore_that_lost_writes_from_before_the_snapshot(
    tmp_path: Path,
) -> None:
    reports = tmp_path / "reports"
    done = run_pytest(
        "drills/test_disaster.py",
        "-k",
        "disaster_recovery",
        "-p",
        "tests.integration.dr_sabotage",
        f"--lab-config={lab_file(tmp_path, 'kdneg', '10.213.86.0/24')}",
        f"--kubedrill-reports={reports}",
        f"--alluredir={tmp_path / 'allure'}",
        f"--junitxml={tmp_path / 'junit.xml'}",
        f"--basetemp={tmp_path / 'pt'}",
        env={"PYTHONPATH": str(ROOT)},
        timeout=600,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 1, out[-3000:]
    assert "1 failed" in out, out[-3000:]
    (drill,) = json.loads((reports / "summary.json").read_text())["drills"]
    parts = {p["check"]: p for c in drill["checks"] for p in c.get("parts", [])}
    restored = parts["etcd: acknowledged writes up to the snapshot restored"]
    assert restored["status"] == "invalid", restored
    assert "acknowledged writes not restored" in restored["detail"]
    assert restored["figures"]["lost"] >= 5, restored


@pytest.fixture(scope="module")
def dr_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, Path]]:
    config = load_lab_config(lab_file(tmp_path_factory.mktemp("kddrk"), "kddrk", "10.213.87.0/24"))
    with running_lab(config) as cluster:
        yield cluster, config.state_dir


@pytest.mark.parametrize("killed_at", ["stopped", "half_restored"])
def test_heal_after_sigkill_mid_restore_leaves_a_working_cluster(
    dr_lab: tuple[Cluster, Path], tmp_path: Path, killed_at: str
) -> None:
    cluster, state_dir = dr_lab
    ledger_dir = tmp_path / "ledger"
    env = {**os.environ, "KUBEDRILL_LEDGER_DIR": str(ledger_dir), "PYTHONPATH": str(ROOT)}
    etcd = EtcdClient(cluster.etcd, timeout=1.0)
    try:
        _, ok = poll_until(lambda: etcd_checks.all_healthy(etcd), bool, timeout=30)
        assert ok, "lab unhealthy before the test"
        etcd.put("/kubedrill/dr-test/before", "kept")
        child = subprocess.Popen(
            [sys.executable, str(CHILD), str(state_dir), killed_at],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        line = child.stdout.readline().strip()
        assert line == f"AT {killed_at}", line + (child.stderr.read() if child.stderr else "")
        assert list(ledger_dir.glob("*.json")), "no undo record while the fault is held"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        assert check_down(etcd), "the cluster answered writes with its quorum lost"

        healed = run_cli("heal", env=env, timeout=300)
        assert healed.returncode == 0, healed.stdout + healed.stderr
        _, ok = poll_until(lambda: etcd_checks.all_healthy(etcd), bool, timeout=60)
        assert ok, "not healthy after heal"
        assert etcd.get("/kubedrill/dr-test/before") == "kept"  # in the snapshot
        assert etcd.get("/kubedrill/dr-test/after") is None  # after it: lost
        assert not list(ledger_dir.glob("*.json"))
        assert not (state_dir / "dr").exists(), "the DR directory was left behind"
        assert not list((state_dir / "holds").glob("*")), "a hold file was left behind"
    finally:
        etcd.close()


def check_down(etcd: EtcdClient) -> bool:
    return etcd_checks.accepts_write(etcd, "/kubedrill/dr-test/probe") is None
