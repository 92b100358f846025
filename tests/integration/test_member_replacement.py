"""The member replacement on a real 3-member etcd lab of its own (kdmember, 10.213.80.0/24):
a flag override reaches the member and outlives its supervisor; the runbook replaces a
follower; the wrong way round is refused by etcd and read from its log, and undone (the
member's own data put back when nothing ran raft over it, else replaced); a SIGKILL at any
point of the fault, then `kubedrill heal`, leaves a healthy 3-member cluster with every
member's HashKV the same and nothing of the fault left."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubedrill.cluster import Cluster
from kubedrill.disaster.membership import Member, caught_up, list_members
from kubedrill.disaster.replacement import LoseMemberDisk, Replacement, member_disk
from kubedrill.disaster.wrong_way import cluster_id, wrong_way_outcome
from kubedrill.faults.runner import FaultSession
from kubedrill.ledger import Ledger
from kubedrill.polling import poll_until
from kubedrill.probes import etcd_checks
from kubedrill.probes.etcd import EtcdClient
from kubedrill.targets.lab import lab, overrides
from kubedrill.targets.lab.config import LabConfig, load_lab_config
from kubedrill.timeline import Timeline
from tests.integration.conftest import ROOT, etcd_lab_file, run_cli, running_lab

LAB, SUBNET = "kdmember", "10.213.80.0/24"
CHILD = Path(__file__).with_name("member_child.py")


@pytest.fixture(scope="module")
def member_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, LabConfig]]:
    config = load_lab_config(etcd_lab_file(tmp_path_factory, LAB, SUBNET))
    with running_lab(config) as cluster:
        yield cluster, config


@pytest.fixture
def etcd(member_lab: tuple[Cluster, LabConfig]) -> Iterator[EtcdClient]:
    client = EtcdClient(member_lab[0].etcd)
    _, healthy = poll_until(lambda: etcd_checks.all_healthy(client), bool, timeout=30)
    assert healthy, "lab unhealthy before the test"
    yield client
    client.close()


def healthy_and_clean(cluster: Cluster, etcd: EtcdClient, victim: str) -> list[Member]:
    """Three started voting members, `victim` caught up, one HashKV, and nothing of the fault:
    no override, no lost disk or junk, no hold."""
    _, healthy = poll_until(lambda: etcd_checks.all_healthy(etcd), bool, timeout=30)
    assert healthy, "etcd is not healthy"
    disk = member_disk(cluster, victim)
    _, ok = poll_until(lambda: caught_up(etcd, victim, disk.peer_url, 3), bool, timeout=30)
    assert ok, f"{victim} is not a caught-up voting member"
    members = list_members(etcd, etcd.nodes)
    assert len(members) == 3 and all(m.started and not m.is_learner for m in members), members
    gap, agreed = poll_until(
        lambda: etcd_checks.hashkv_disagreement(etcd), lambda d: d is None, timeout=15
    )
    assert agreed, gap
    assert disk.override() == {}, "an override is left"
    assert disk.asides() == [], f"left aside: {disk.asides()}"
    assert not list((disk.state_dir / "holds").glob("*")), "a hold is left"
    assert cluster.control.is_running(cluster.node(victim), "etcd")
    return members


def cmdline(disk_pid: int | None) -> list[str]:
    if disk_pid is None:
        return []
    try:
        return Path(f"/proc/{disk_pid}/cmdline").read_bytes().decode().split("\0")
    except OSError:
        return []


def restarted_with(cluster: Cluster, host: str, flag: str) -> bool:
    """Kill `host`'s etcd; true once the supervisor's restart runs with `flag`."""
    disk = member_disk(cluster, host)
    before = disk.pid()
    assert before is not None
    os.kill(before, signal.SIGKILL)
    _, ok = poll_until(
        lambda: disk.pid() not in (None, before) and flag in cmdline(disk.pid()),
        bool,
        timeout=15,
    )
    return ok


def test_override_reaches_the_member_and_outlives_its_supervisor(
    member_lab: tuple[Cluster, LabConfig], etcd: EtcdClient
) -> None:
    cluster, config = member_lab
    disk = member_disk(cluster, "etcd-1")
    try:
        overrides.write_flags(config.state_dir, disk.key, {"--max-txn-ops": "10001"})
        assert restarted_with(cluster, "etcd-1", "--max-txn-ops=10001")
        assert "--max-txn-ops=10000" not in cmdline(disk.pid())
        # The supervisor dies; `lab up` starts another, which reads the same lab state.
        supervisor = lab.supervisor_pid(config.state_dir)
        assert supervisor is not None
        os.kill(supervisor, signal.SIGKILL)
        poll_until(lambda: lab.supervisor_pid(config.state_dir), lambda p: p is None, timeout=5)
        lab.up(config, progress=lambda _m: None)
        assert "--max-txn-ops=10001" in cmdline(disk.pid())
    finally:
        disk.clear_override()
    assert restarted_with(cluster, "etcd-1", "--max-txn-ops=10000")
    healthy_and_clean(cluster, etcd, "etcd-1")


def test_the_runbook_replaces_a_follower(
    member_lab: tuple[Cluster, LabConfig], etcd: EtcdClient, tmp_path: Path
) -> None:
    cluster, _config = member_lab
    session = FaultSession(cluster, Timeline(), Ledger(tmp_path / "ledger"), log=lambda _m: None)
    with session.inject(LoseMemberDisk()) as plan:
        victim, old = plan.victims[0], plan.data["member_id"]
        assert victim != etcd.leader()
        disk = member_disk(cluster, victim)
        assert disk.is_empty() and disk.has_wal(Path(plan.data["aside"]))
        runbook = Replacement(etcd, disk)
        for _name, _what, step in runbook.plan():
            step()
        done, ok = poll_until(lambda: caught_up(etcd, victim, disk.peer_url, 3), bool, timeout=30)
        assert ok, "the new member did not catch up"
        assert done is not None and done.member_id != old
        assert disk.override()["--initial-cluster-state"] == "existing"
    # The undo found the member replaced: it only checked, cleared the override and threw the
    # lost disk away.
    assert not list((tmp_path / "ledger").glob("*.json"))
    members = healthy_and_clean(cluster, etcd, victim)
    assert old not in {m.id for m in members}


@pytest.mark.parametrize(
    ("flags", "meanings"),
    [
        # Its old flags give it its first identity: still a member if it was never replaced
        # (refused before raft begins), removed if it was, by an earlier test here (it began a
        # raft log of its own before the peers said so).
        ({}, ("still a bootstrapped member", "old identity was removed")),
        # Under its old identity with an empty raft log.
        ({"--initial-cluster-state": "existing"}, ("raft log is lost",)),
    ],
    ids=["old-flags", "existing-unreplaced"],
)
def test_the_wrong_way_is_refused_and_undone(
    member_lab: tuple[Cluster, LabConfig],
    etcd: EtcdClient,
    tmp_path: Path,
    flags: dict[str, str],
    meanings: tuple[str, ...],
) -> None:
    cluster, _config = member_lab
    session = FaultSession(cluster, Timeline(), Ledger(tmp_path / "ledger"), log=lambda _m: None)
    with session.inject(LoseMemberDisk()) as plan:
        victim, old = plan.victims[0], plan.data["member_id"]
        disk = member_disk(cluster, victim)
        others = [n for n in etcd.nodes if n != victim]
        cid = cluster_id(etcd, others)
        skip = len(disk.log_path().read_text(errors="replace").splitlines())
        disk.start_with(flags)

        def log() -> str:
            return "\n".join(disk.log_path().read_text(errors="replace").splitlines()[skip:])

        outcome, seen = poll_until(
            lambda: wrong_way_outcome(etcd, victim, log, cid), bool, timeout=20
        )
        assert seen and outcome is not None, "no refusal within 20 s"
        assert outcome.refused and any(m in outcome.meaning for m in meanings), outcome
        entry = Replacement(etcd, disk).entry()
        assert entry is not None and entry.id == old
        ran_raft = disk.raft_since_wipe()
        assert ran_raft or "raft log is lost" not in outcome.meaning
    # The undo puts the member's own data back when nothing ran raft in its data dir since;
    # else it replaces the member.
    members = healthy_and_clean(cluster, etcd, victim)
    assert (old in {m.id for m in members}) == (not ran_raft), members


POINTS = ["mid-inject", "after-wipe", "wrong-way", "after-remove", "after-add", "after-start"]


@pytest.mark.parametrize("point", POINTS)
def test_sigkill_at_any_point_then_heal(
    member_lab: tuple[Cluster, LabConfig], etcd: EtcdClient, tmp_path: Path, point: str
) -> None:
    cluster, config = member_lab
    ledger_dir = tmp_path / "ledger"
    env = {**os.environ, "KUBEDRILL_LEDGER_DIR": str(ledger_dir)}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH"), str(ROOT)) if p)
    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(config.state_dir), point],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None and child.stderr is not None
    line = child.stdout.readline().split()
    assert line[:2] == ["AT", point], child.stderr.read()
    victim, old = line[2], line[3]
    assert list(ledger_dir.glob("*.json")), "no undo record while the fault is active"
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)
    disk = member_disk(cluster, victim)
    ran_raft = bool(disk.asides()) and disk.raft_since_wipe()  # a wrong-way start's raft log
    healed = run_cli("heal", env={"KUBEDRILL_LEDGER_DIR": str(ledger_dir)}, timeout=300)
    assert healed.returncode == 0, healed.stdout + healed.stderr
    assert not list(ledger_dir.glob("*.json")), "undo record left behind"
    members = healthy_and_clean(cluster, etcd, victim)
    # Before the remove, the member's own data came back (unless a wrong-way start had begun a
    # raft log over it); after it, a new identity.
    kept = point in ("mid-inject", "after-wipe", "wrong-way") and not ran_raft
    assert (old in {m.id for m in members}) == kept, (point, members)
