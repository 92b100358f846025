"""Failpoints and the slow disk are faults with undo records: a runner SIGKILLed while they are
armed leaves them armed, and `kubedrill heal` disarms every one (waiting for a member that
crashed on one to come back), removes the cgroup, and leaves the lab healthy.

Its own lab: `kdfail` on 10.213.81.0/24, built with failpoints."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubedrill.cluster import Cluster
from kubedrill.faults.failpoint import list_failpoints
from kubedrill.polling import poll_until
from kubedrill.probes import etcd_checks
from kubedrill.probes.etcd import EtcdClient, EtcdError
from kubedrill.targets.lab.config import LabConfig, load_lab_config
from tests.integration.conftest import ROOT, run_cli, running_lab

CHILD = Path(__file__).with_name("failpoint_child.py")
BLKIO = Path("/sys/fs/cgroup/blkio")


@pytest.fixture(scope="module")
def fp_config(tmp_path_factory: pytest.TempPathFactory) -> LabConfig:
    path = tmp_path_factory.mktemp("kdfail") / "lab.yaml"
    path.write_text(
        "lab:\n  name: kdfail\n  topology: etcd\n  subnet: 10.213.81.0/24\n"
        "  etcd:\n    failpoints: true\n"
    )
    return load_lab_config(path)


@pytest.fixture(scope="module")
def fp_lab(fp_config: LabConfig) -> Iterator[Cluster]:
    with running_lab(fp_config) as cluster:
        yield cluster
    assert throttle_cgroups(fp_config.name) == [], "lab down left a throttle cgroup"


def armed(cluster: Cluster) -> dict[str, dict[str, str]]:
    """node -> every failpoint armed on it (name -> term)."""
    found = {}
    for node, url in cluster.etcd.failpoint_urls.items():
        listing = list_failpoints(url) or {}
        found[node] = {name: term for name, term in listing.items() if term}
    return found


def throttle_cgroups(lab_name: str) -> list[str]:
    return sorted(p.name for p in BLKIO.glob(f"kubedrill-{lab_name}-*")) if BLKIO.exists() else []


def test_the_failpoint_lab_serves_gofail_on_member_addresses_only(fp_lab: Cluster) -> None:
    for node in fp_lab.nodes:
        url = fp_lab.etcd.failpoint_urls[node.name]
        assert url == f"http://{node.address}:22381"
        listing = list_failpoints(url)
        assert listing is not None and "raftBeforeSave" in listing
        listening = fp_lab.transport(node).run(["ss", "-Hltn", "sport = :22381"]).stdout
        assert listening.split()[3] == f"{node.address}:22381", listening
    assert not any(armed(fp_lab).values())


def run_child(config: LabConfig, env: dict[str, str], *faults: str) -> None:
    """Arm `faults` in a child runner, then SIGKILL it mid-fault."""
    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(config.state_dir), *faults],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    first = child.stdout.readline()
    if first.strip() != "ARMED":
        child.kill()
        raise AssertionError(child.stderr.read() if child.stderr else first)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)


@pytest.mark.parametrize("case", ["armed", "crashed"])
def test_sigkilled_runner_leaves_them_armed_and_heal_disarms_everything(
    fp_lab: Cluster, fp_config: LabConfig, tmp_path: Path, case: str
) -> None:
    """armed: a sleep on etcd-1's WAL saves, a crash point nothing runs on etcd-3 and a
    throttled etcd-2 are all still in place after the runner's SIGKILL; heal removes them.
    crashed: etcd-3 armed to panic at its next WAL save crashes after the runner is gone and
    is restarted by the supervisor; heal waits for its endpoint and finds nothing armed."""
    ledger_dir = tmp_path / "ledger"
    python_path = os.pathsep.join([str(ROOT / "src"), str(ROOT)])  # this checkout first
    env = {**os.environ, "KUBEDRILL_LEDGER_DIR": str(ledger_dir), "PYTHONPATH": python_path}
    heal_env = {"KUBEDRILL_LEDGER_DIR": str(ledger_dir)}
    etcd = EtcdClient(fp_lab.etcd, timeout=2.0)
    try:
        _, healthy = poll_until(lambda: etcd_checks.all_healthy(etcd), bool, timeout=30)
        assert healthy, "lab unhealthy before the faults"
        if case == "armed":
            run_child(fp_config, env, "sleep", "defrag", "throttle")
            assert len(list(ledger_dir.glob("*.json"))) == 3, "one undo record per fault"
            left = armed(fp_lab)
            assert left["etcd-1"] == {"raftBeforeSave": "sleep(200)"}
            assert left["etcd-3"] == {"defragBeforeRename": "panic"}
            assert throttle_cgroups("kdfail") == ["kubedrill-kdfail-etcd-2-etcd"]
        else:
            before = restarts(fp_config, "etcd-3")
            run_child(fp_config, env, "panic")
            assert len(list(ledger_dir.glob("*.json"))) == 1

            def crashed() -> bool:
                with contextlib.suppress(EtcdError):  # a write makes etcd-3 save, and die
                    etcd.put("/kubedrill/heal-test", "x", timeout=2.0)
                return restarts(fp_config, "etcd-3") > before

            _, ok = poll_until(crashed, bool, timeout=30, interval=0.5)
            assert ok, "etcd-3 did not crash on its armed panic"
        healed = run_cli("heal", env=heal_env, timeout=300)
        assert healed.returncode == 0, healed.stdout + healed.stderr
        assert not list(ledger_dir.glob("*.json")), "undo record left behind"
        assert not any(armed(fp_lab).values()), armed(fp_lab)
        assert throttle_cgroups("kdfail") == []
        _, healthy = poll_until(lambda: etcd_checks.all_healthy(etcd), bool, timeout=30)
        assert healthy, "lab did not recover after heal"
        again = run_cli("heal", env=heal_env)  # nothing left to do
        assert again.returncode == 0, again.stdout + again.stderr
    finally:
        if list(ledger_dir.glob("*.json")):  # a failed assertion above: still heal
            run_cli("heal", env=heal_env, timeout=300)
        etcd.close()


def restarts(config: LabConfig, host: str) -> int:

    status = json.loads((config.state_dir / "run" / "status.json").read_text())
    return int(status[f"{host}__etcd"]["restarts"])


# Last in the module: the cgroup it leaves is for the fixture's `lab down` to remove.
def test_lab_down_removes_an_unhealed_throttle(fp_lab: Cluster, fp_config: LabConfig) -> None:
    """A slow-disk fault whose record is gone (or never healed) leaves no cgroup after down:
    checked here on a cgroup made as the fault makes it, then by the fixture after down."""
    cgroup = BLKIO / f"kubedrill-{fp_config.name}-etcd-9-etcd"
    cgroup.mkdir()
    assert throttle_cgroups(fp_config.name) == [cgroup.name]
