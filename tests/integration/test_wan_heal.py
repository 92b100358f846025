"""The WAN and the region outage on a real lab: the delay is really there (a TCP handshake
between regions takes the round trip), and after SIGKILL of the process that held them,
`kubedrill heal` removes every chain and delayer and the cluster is whole again; SIGTERM
heals in process."""

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
from kubedrill.targets.lab import lab
from kubedrill.targets.lab.config import LabConfig, load_lab_config
from tests.integration.conftest import ROOT, run_cli
from tests.integration.wan_child import DELAY_MS

LAB, SUBNET = "wan2", "10.213.99.0/24"
CHILD = Path(__file__).with_name("wan_child.py")


@pytest.fixture(scope="module")
def wan_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, LabConfig]]:
    path = tmp_path_factory.mktemp("wan") / "lab.yaml"
    path.write_text(f"lab:\n  name: {LAB}\n  topology: etcd\n  subnet: {SUBNET}\n")
    config = load_lab_config(path)
    cluster = lab.up(config, progress=lambda _m: None)
    try:
        yield cluster, config
    finally:
        lab.down(config, progress=lambda _m: None)
        assert not ours(), f"left behind: {ours()}"


def ours() -> list[str]:
    """This lab's delayers (their files name its namespaces) and namespaces."""
    procs = subprocess.run(
        ["pgrep", "-af", "kubedrill.faults.delayer"], capture_output=True, text=True
    ).stdout
    found = [p for p in procs.splitlines() if f"kd-{LAB}-" in p]
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return found + [n for n in netns.splitlines() if f"kd-{LAB}-" in n and not lab_up()]


def lab_up() -> bool:
    return (Path("/var/lib/kubedrill/labs") / LAB).exists()


def traces(cluster: Cluster) -> list[str]:
    found = [p for p in ours() if "delayer" in p or "kubedrill" in p]
    for node in cluster.nodes:
        rules = cluster.transport(node).run(["iptables", "-S"]).stdout
        found += [f"{node.name}: {r}" for r in rules.splitlines() if "KUBEDRILL" in r]
    return found


def handshake_ms(cluster: Cluster, src: str, dst: str) -> float:
    """One TCP connect from `src` to `dst`'s peer port: SYN out, SYN-ACK back, one round trip."""
    code = (
        "import socket,time;s=socket.socket();s.settimeout(3);t=time.monotonic();"
        f"s.connect(('{cluster.node(dst).address}',2380));"
        "print((time.monotonic()-t)*1000)"
    )
    node = cluster.node(src)
    out = cluster.transport(node).run([sys.executable, "-c", code], timeout=10)
    return float(out.stdout.strip())


@pytest.mark.parametrize(
    ("shape", "exit_path"), [("wan", "sigkill"), ("outage", "sigkill"), ("outage", "sigterm")]
)
def test_wan_heals(
    wan_lab: tuple[Cluster, LabConfig], tmp_path: Path, shape: str, exit_path: str
) -> None:
    cluster, config = wan_lab
    ledger_dir = tmp_path / "ledger"
    env = {**os.environ, "KUBEDRILL_LEDGER_DIR": str(ledger_dir), "PYTHONPATH": f"{ROOT}/src"}
    etcd = EtcdClient(cluster.etcd)
    members = [n.name for n in cluster.with_role("etcd")]
    try:
        _, healthy = poll_until(lambda: etcd_checks.all_healthy(etcd), bool, timeout=30)
        assert healthy, "lab unhealthy before the fault"
        lan = handshake_ms(cluster, members[0], members[1])
        child = subprocess.Popen(
            [sys.executable, str(CHILD), str(config.state_dir), shape],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        first = child.stdout.readline().split()
        assert first and first[0] == "INJECTED", child.stderr.read() if child.stderr else first
        assert list(ledger_dir.glob("*.json")), "no undo record while the fault is active"
        if shape == "wan":
            wan = handshake_ms(cluster, members[0], members[1])
            assert 2 * DELAY_MS * 0.9 <= wan <= 2 * DELAY_MS + 250, (lan, wan)
        else:
            dark = first[1]
            other = next(m for m in members if m != dark)
            with pytest.raises(Exception):  # noqa: B017 - any failure to connect
                handshake_ms(cluster, other, dark)
        child.send_signal(signal.SIGKILL if exit_path == "sigkill" else signal.SIGTERM)
        child.wait(timeout=60)
        assert child.returncode != 0
        if exit_path == "sigkill":
            assert list(ledger_dir.glob("*.json")), "SIGKILL should leave the undo records"
            healed = run_cli("heal", env=env)
            assert healed.returncode == 0, healed.stdout + healed.stderr
        assert not list(ledger_dir.glob("*.json")), "undo record left behind"
        left, clean = poll_until(lambda: traces(cluster), lambda t: not t, timeout=30)
        assert clean, f"{shape} / {exit_path} left: {left}"
        assert handshake_ms(cluster, members[0], members[1]) < 2 * DELAY_MS * 0.9
        _, healthy = poll_until(lambda: etcd_checks.all_healthy(etcd), bool, timeout=30)
        assert healthy, f"{shape} / {exit_path}: lab did not recover"
    finally:
        etcd.close()
