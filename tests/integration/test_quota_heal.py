"""The quota fault after a SIGKILL: the runner dies with etcd full (NOSPACE raised, every
write refused); `kubedrill heal` replays the fault's undo record (`kubedrill etcd
recover-nospace`) and the cluster takes writes again, with the drill's keys gone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubedrill.cluster import Cluster
from kubedrill.disaster import quota
from kubedrill.probes.etcd import EtcdClient
from kubedrill.targets.lab.config import load_lab_config
from tests.integration.conftest import ROOT, run_cli, running_lab
from tests.integration.quota_child import PREFIX

CHILD = Path(__file__).with_name("quota_child.py")


@pytest.fixture(scope="module")
def quota_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, Path]]:
    path = tmp_path_factory.mktemp("kdquota") / "lab.yaml"
    path.write_text(
        "lab:\n  name: kdquota\n  topology: etcd\n  subnet: 10.213.83.0/24\n"
        "  etcd:\n    quota_backend_bytes: 16777216\n"
    )
    config = load_lab_config(path)
    with running_lab(config) as cluster:
        yield cluster, config.state_dir


def test_heal_after_sigkill_makes_a_full_etcd_writable(
    quota_lab: tuple[Cluster, Path], tmp_path: Path
) -> None:
    cluster, state_dir = quota_lab
    ledger_dir = tmp_path / "ledger"
    env = {**os.environ, "KUBEDRILL_LEDGER_DIR": str(ledger_dir), "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(state_dir)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    etcd = EtcdClient(cluster.etcd, timeout=2.0)
    try:
        assert child.stdout is not None
        first = child.stdout.readline().strip()
        assert first == "FULL", first + (child.stderr.read() if child.stderr else "")
        assert list(ledger_dir.glob("*.json")), "no undo record while the fault is held"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        # Left as the SIGKILL left it: full, read-only.
        assert quota.nospace_alarms(etcd) is not None
        assert quota.write_refused(etcd, PREFIX + "probe") is not None

        healed = run_cli("heal", env=env, timeout=300)
        assert healed.returncode == 0, healed.stdout + healed.stderr
        assert "healed" in healed.stdout
        assert quota.nospace_alarms(etcd) is None
        assert quota.write_accepted(etcd, "/kubedrill/after-heal") is not None
        assert etcd.get(PREFIX + "fill/0") is None, "the drill's keys were not deleted"
        assert not list(ledger_dir.glob("*.json")), "the undo record is still there"
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        quota.recover(etcd, PREFIX)
        etcd.close()
