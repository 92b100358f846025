"""The expiry fault after a SIGKILL: the runner dies with an etcd member's peer cert
re-issued short-lived; `kubedrill heal` replays the undo record (`kubedrill certs renew`), and
the member serves a cert with the lab's validity again, with no restart."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubedrill.cluster import Cluster
from kubedrill.polling import poll_until
from kubedrill.probes import etcd_checks, served
from kubedrill.probes.etcd import EtcdClient
from kubedrill.targets.lab.config import LabConfig, load_lab_config
from tests.integration.conftest import ROOT, etcd_lab_file, run_cli

# Its running_lab does not count another lab's delayer (this machine is shared) as ours.
from tests.integration.test_audit import running_lab

CHILD = Path(__file__).with_name("fault_child.py")


@pytest.fixture(scope="module")
def cert_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, LabConfig]]:
    config = load_lab_config(etcd_lab_file(tmp_path_factory, "certx", "10.213.95.0/24"))
    with running_lab(config) as cluster:
        yield cluster, config


def peer_days_left(cluster: Cluster) -> dict[str, float]:
    now = dt.datetime.now(dt.UTC)
    left = {}
    for node in cluster.with_role("etcd"):
        cert = served.read(cluster, served.served_port(cluster, node, "etcd-peer"))
        assert cert.not_after is not None, cert.error
        left[node.name] = (cert.not_after - now).total_seconds() / 86400
    return left


def test_heal_after_sigkill_reissues_the_short_lived_cert(
    cert_lab: tuple[Cluster, LabConfig], tmp_path: Path
) -> None:
    cluster, config = cert_lab
    ledger_dir = tmp_path / "ledger"
    # The worktree's sources first (the children run `python -m kubedrill certs renew`).
    path = f"{ROOT / 'src'}{os.pathsep}{ROOT}"
    env = {**os.environ, "KUBEDRILL_LEDGER_DIR": str(ledger_dir), "PYTHONPATH": path}
    assert min(peer_days_left(cluster).values()) > 300
    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(config.state_dir), "expire-cert", "sigkill"],
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
        assert first == "INJECTED", first + (child.stderr.read() if child.stderr else "")
        assert list(ledger_dir.glob("*.json")), "no undo record while the fault is held"
        short = {n: d for n, d in peer_days_left(cluster).items() if d < 1}
        assert len(short) == 1, f"one member serves a short-lived peer cert: {short}"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        assert {n for n, d in peer_days_left(cluster).items() if d < 1} == set(short)

        healed = run_cli("heal", env=env)
        assert healed.returncode == 0, healed.stdout + healed.stderr
        assert not list(ledger_dir.glob("*.json")), "the undo record is still there"
        left = peer_days_left(cluster)
        assert min(left.values()) > 300, f"still short-lived after heal: {left}"
        _, healthy = poll_until(lambda: etcd_checks.all_healthy(etcd), bool, timeout=30)
        assert healthy, "etcd is not healthy after the heal"
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        etcd.close()
