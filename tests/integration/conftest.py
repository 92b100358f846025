"""Integration tests run against real labs (real etcd in real network namespaces) and check
that nothing of them is left behind. They need root."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubedrill.cluster import Cluster
from kubedrill.targets.lab import lab
from kubedrill.targets.lab.config import LabConfig, load_lab_config

ROOT = Path(__file__).resolve().parents[2]
# Overridable, so that runs beside each other on one machine use labs of their own.
TEST_LAB = os.environ.get("KUBEDRILL_TEST_LAB", "kdtest")
TEST_SUBNET = os.environ.get("KUBEDRILL_TEST_SUBNET", "10.213.8.0/24")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if os.geteuid() != 0:
        skip = pytest.mark.skip(reason="integration tests build real labs and need root")
        for item in items:
            item.add_marker(skip)


def leftovers(lab_name: str) -> list[str]:
    """Everything a lab or its faults could leave behind, described; empty when clean."""
    found: list[str] = []
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    found += [f"netns {n.split()[0]}" for n in netns.splitlines() if f"kd-{lab_name}-" in n]
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    found += [
        f"link {ln.split(':')[1].strip()}"
        for ln in links.splitlines()
        if f"kd-{lab_name}" in ln or f"kdv-{lab_name}-" in ln
    ]
    state = Path("/var/lib/kubedrill/labs") / lab_name
    if state.exists():
        found.append(f"state dir {state}")
    procs = subprocess.run(
        ["pgrep", "-af", f"/labs/{lab_name}"], capture_output=True, text=True
    ).stdout
    found += [f"process {p}" for p in procs.splitlines() if "pgrep" not in p]
    delayers = subprocess.run(
        ["pgrep", "-af", "kubedrill.faults.delayer"], capture_output=True, text=True
    ).stdout
    found += [f"delayer {p}" for p in delayers.splitlines() if "pgrep" not in p]
    rules = subprocess.run(["iptables", "-S"], capture_output=True, text=True).stdout
    found += [f"host rule {r}" for r in rules.splitlines() if "KUBEDRILL" in r]
    return found


def fault_traces(cluster: Cluster, lab_config: LabConfig) -> list[str]:
    """What an unhealed fault would leave in the lab."""
    found: list[str] = []
    for node in cluster.nodes:
        transport = cluster.transport(node)
        rules = transport.run(["iptables", "-S"]).stdout
        found += [f"{node.name}: {r}" for r in rules.splitlines() if "KUBEDRILL" in r]
        qdisc = transport.run(["tc", "qdisc", "show", "dev", "eth0"]).stdout
        found += [f"{node.name}: {q}" for q in qdisc.splitlines() if "netem" in q or "prio" in q]
        link = transport.run(["ip", "-o", "link", "show", "eth0"]).stdout
        if ",UP" not in link:
            found.append(f"{node.name}: eth0 down")
        if not cluster.control.is_running(node, "etcd"):
            found.append(f"{node.name}: etcd not running")
    holds = lab_config.state_dir / "holds"
    found += [f"hold {h.name}" for h in holds.glob("*")] if holds.exists() else []
    delayers = subprocess.run(
        ["pgrep", "-af", "kubedrill.faults.delayer"], capture_output=True, text=True
    ).stdout
    found += [f"delayer {d}" for d in delayers.splitlines() if "pgrep" not in d]
    return found


def etcd_lab_file(tmp_path_factory: pytest.TempPathFactory, name: str, subnet: str) -> Path:
    """A lab config file for a 3-member etcd lab named `name` on `subnet`."""
    path = tmp_path_factory.mktemp(name) / "lab.yaml"
    path.write_text(f"lab:\n  name: {name}\n  topology: etcd\n  subnet: {subnet}\n")
    return path


@contextlib.contextmanager
def running_lab(config: LabConfig) -> Iterator[Cluster]:
    """The lab, up for the block; down afterwards and proven gone."""
    cluster = lab.up(config, progress=lambda _m: None)
    try:
        yield cluster
    finally:
        lab.down(config, progress=lambda _m: None)
        left = leftovers(config.name)
        assert not left, f"the lab left things behind: {left}"


@pytest.fixture(scope="session")
def lab_config_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return etcd_lab_file(tmp_path_factory, TEST_LAB, TEST_SUBNET)


@pytest.fixture(scope="session")
def lab_config(lab_config_file: Path) -> LabConfig:
    return load_lab_config(lab_config_file)


@pytest.fixture(scope="session")
def test_lab(lab_config: LabConfig) -> Iterator[Cluster]:
    """One 3-member lab for the whole integration session; proven gone at the end."""
    with running_lab(lab_config) as cluster:
        yield cluster


def run_pytest(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """pytest in a child process, as a user would run it."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def run_cli(
    *args: str, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kubedrill.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
