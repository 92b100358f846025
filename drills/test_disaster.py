"""Disaster drills: what a team falls back on when the cluster itself is lost (issue #13)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from kubedrill.disaster import (
    backup,
    lab_restore,
    membership,
    recovery,
    replacement,
    wrong_way,
)
from kubedrill.drill import Drill
from kubedrill.faults.base import FaultPlan
from kubedrill.probes import etcd_checks as check
from kubedrill.probes.etcd import EtcdClient
from kubedrill.probes.kube import KubeProbes, LeaseState

pytestmark = [pytest.mark.disaster]

ETCD_HEALTHY = "every etcd member answers and a quorum agrees on one leader"
MIN_ACKED_KEYS = 50  # about 5 s of the workload (etcd-kv writes a new key every 0.1 s)


def test_backup_verified(drill: Drill, etcd: EtcdClient) -> None:
    """Snapshot one member while the consistency workload writes, check the snapshot, restore
    it into a scratch member, and find there every write acknowledged at or before the
    snapshot's revision, with its value. Nothing is faulted: the lab keeps working."""
    reason = backup.EtcdTools.unavailable(drill.cluster)
    if reason is not None:
        pytest.skip(reason)
    drill.steady_state(ETCD_HEALTHY, lambda: check.all_healthy(etcd))
    if drill.dry_run:
        drill.walk.add(
            "backup",
            "etcdctl snapshot save from a follower while the workload writes",
            "etcdutl snapshot status -w json: hash, revision, total keys",
            "etcdutl snapshot restore into a scratch data dir",
            "scratch single-member etcd on 127.0.0.1 (stopped and removed on every way out)",
        )
        drill.expect(True, "every write acknowledged at or before the snapshot's revision "
                     "is restored with its value")  # fmt: skip
        return
    workload = drill.consistency
    drill.expect(workload is not None and workload.started, "the consistency workload runs")
    assert workload is not None
    tools = backup.EtcdTools.for_cluster(drill.cluster)
    drill.wait_for(
        "workload.writing",
        lambda: len(backup.required_writes(workload.etcd_ops(), 2**62)) >= MIN_ACKED_KEYS,
        timeout=30,
    )
    member = drill.choose(
        "a follower to snapshot",
        lambda: next(n for n in etcd.nodes if n != etcd.leader()),
    )
    with backup.scratch_dir() as work:
        snapshot = work / "snapshot.db"
        drill.timeline.mark("snapshot.saving", member=member)
        backup.save_snapshot(tools, drill.cluster.etcd, member, snapshot)
        drill.timeline.mark("snapshot.saved")
        status = backup.snapshot_status(tools, snapshot)
        drill.timeline.mark("snapshot.checked", **status.to_dict())
        drill.expect(status.revision > 0, "the snapshot has a revision", status)
        urls = backup.ScratchUrls.pick()
        drill.timeline.mark("restore.starting")
        backup.restore_snapshot(tools, snapshot, work / "restored", urls)
        drill.timeline.mark("restore.done")
        with backup.scratch_member(tools, work / "restored", urls) as scratch:
            drill.timeline.mark("restored.serving")
            restored = scratch.range_prefix_revisions(workload.prefix)
        size = snapshot.stat().st_size
    saved = drill.timeline.between("snapshot.saving", "snapshot.saved", "snapshot_save")
    restore = drill.timeline.between("restore.starting", "restore.done", "snapshot_restore")
    drill.within_budget("recovery", "restore.starting", "restored.serving", "restore_to_serving")
    drill.observe("snapshot_member", member)
    drill.observe("snapshot_size_bytes", size)
    drill.observe("snapshot_revision", status.revision)
    drill.observe("snapshot_hash", status.hash)
    drill.observe("snapshot_total_keys", status.total_keys)
    drill.observe("snapshot_save_s", round(saved.seconds, 3))
    drill.observe("snapshot_restore_s", round(restore.seconds, 3))
    with drill.verify():
        # Read the histories now: every write in flight at the snapshot has completed.
        drill.check_now(backup.RestoredWritesCheck(workload.etcd_ops(), restored, status.revision))


MIN_WRITES_AFTER_SNAPSHOT = 10  # acknowledged writes the restore is expected to lose (RPO)
DR_PROBE_NAMESPACE = "default"
CONTROLLER_LEASES = ("kube-controller-manager", "kube-scheduler")


@pytest.mark.disruptive
def test_disaster_recovery(drill: Drill, etcd: EtcdClient) -> None:
    """Snapshot etcd while the workload writes; let more writes be acknowledged; then lose
    a majority of members with their data (the leader first). The runbook restores every
    member from the snapshot (new token, revision bumped, marked compacted), with the control
    plane stopped around it, and the drill measures RTO (fault to writes accepted again,
    through the API where there is one) and RPO: exactly which acknowledged writes after the
    snapshot are gone, from the workload's history. Every write acknowledged up to the
    snapshot must be back (a restore that lost one fails the drill); the API serves the
    restored objects and the controllers hold their Leases again."""
    reason = recovery.unavailable(drill.cluster)
    if reason is not None:
        pytest.skip(reason)
    kube = drill.kube if drill.cluster.kube is not None else None
    drill.steady_state(
        ETCD_HEALTHY + (" and the API takes writes" if kube else ""),
        lambda: check.all_healthy(etcd) and (kube is None or kube.ready()),
    )
    state_dir = recovery.lab_state_dir(drill.cluster)
    assert state_dir is not None
    restore = lab_restore.LabRestore.from_state_dir(state_dir)
    workload = drill.consistency
    if not drill.dry_run:
        drill.expect(workload is not None and workload.started, "the consistency workload runs")
        assert workload is not None
        drill.wait_for(
            "workload.writing",
            lambda: len(backup.required_writes(workload.etcd_ops(), 2**62)) >= MIN_ACKED_KEYS,
            timeout=30,
        )
    leases_before = {n: kube.lease(n) for n in CONTROLLER_LEASES} if kube else {}
    run = recovery.new_run_id()
    snapshot = restore.dr_dir(run) / "snapshot.db"
    revision = _take_snapshot(drill, etcd, snapshot)
    if workload is not None:
        drill.wait_for(
            "writes.after_snapshot",
            lambda: (
                recovery.acked_after(workload.etcd_ops(), revision) >= MIN_WRITES_AFTER_SNAPSHOT
            ),
            timeout=30,
        )
        # The history ends at the disaster: what was acknowledged until now is what the
        # restore is judged on (writes during the outage fail, or time out undecided).
        workload.stop()
    leader = drill.choose("the etcd leader (lost first)", lambda: etcd.leader() or "")
    disaster = recovery.LoseEtcdMajority(run, snapshot, leader or None)
    with drill.fault(disaster, allow_quorum_loss=True) as plan:
        drill.observe("members_lost", ", ".join(plan.victims))
        drill.wait_for("etcd.writes_refused", lambda: check.accepts_write(etcd) is None, timeout=10)
        _carry_out_runbook(drill, restore, run, snapshot)
        drill.wait_for("etcd.healthy", lambda: check.all_healthy(etcd), budget="disaster_recovery")
        drill.wait_for("writes.accepted", _write_probe(etcd, kube), budget="disaster_recovery")
        drill.within_budget("disaster_recovery", "fault.injecting", "writes.accepted", name="rto")
        drill.within_budget(
            "disaster_recovery", "runbook.started", "writes.accepted", name="runbook_to_writes"
        )
    with drill.verify("after the restore: the data, the controllers"):
        window = drill.offset("fault.injecting") - drill.offset("snapshot.saved")
        drill.observe("rpo_window_s", round(window, 3))
        if kube is not None:
            for name in CONTROLLER_LEASES:
                drill.wait_for(
                    f"{name}.leading", _lease_taken(kube, name, leases_before.get(name)),
                    budget="lease_takeover",
                )  # fmt: skip
                drill.within_budget(
                    "lease_takeover", "runbook.start_control_plane", f"{name}.leading",
                    name=f"{name}_leading",
                )  # fmt: skip
            if workload is not None and workload.api_clients and not drill.dry_run:
                created = [op for op in workload.api_ops() if op.client == "api-create"]
                _, lost_objects = recovery.api_objects_verdict(
                    "api", created, workload.list_configmaps(), revision
                )
                drill.observe("rpo_lost_configmaps", lost_objects)
        if workload is not None and not drill.dry_run:
            stored = etcd.range_prefix_revisions(workload.prefix)
            loss = recovery.writes_lost_by_restore(workload.etcd_ops(), stored, revision)
            drill.observe("rpo_lost_writes", len(loss.lost))
            # Exact, write by write (client, key under the workload's prefix, revision); the
            # full records are in the consistency verdict's figures.
            drill.observe(
                "rpo_lost",
                [
                    f"{w.client} {w.key.removeprefix(workload.prefix)}@{w.revision}"
                    for w in loss.lost
                ],
            )
            drill.observe("rpo_lost_span_s", round(loss.window_s, 3))
            # The consistency checks (after the drill) judge the history against the restore:
            # everything up to the snapshot kept, exactly what came after it lost.
            workload.restored_from = revision
        drill.verify_etcd_data()


def _take_snapshot(drill: Drill, etcd: EtcdClient, snapshot: Path) -> int:
    """Save a snapshot from a follower into the lab's DR directory; its revision."""
    tools = backup.EtcdTools.for_cluster(drill.cluster)
    member = drill.choose(
        "a follower to snapshot", lambda: next(n for n in etcd.nodes if n != etcd.leader())
    )
    drill.timeline.mark("snapshot.saving", member=member)

    def save() -> None:
        snapshot.parent.mkdir(parents=True, exist_ok=True)
        backup.save_snapshot(tools, drill.cluster.etcd, str(member), snapshot)

    drill.act(f"etcdctl snapshot save from {member} into {snapshot}", save, dry=None)
    drill.timeline.mark("snapshot.saved")
    status = drill.act(
        "etcdutl snapshot status", lambda: backup.snapshot_status(tools, snapshot), dry=None
    )
    revision = status.revision if status is not None else 0
    drill.observe("snapshot_revision", revision)
    return revision


def _carry_out_runbook(
    drill: Drill, restore: lab_restore.LabRestore, run: str, snapshot: Path
) -> None:
    """Each step timed and marked; the marker says the restore is done (the fault's undo
    then only cleans up)."""
    drill.runbook((s.name, s.what, s.do) for s in lab_restore.runbook(restore, run, snapshot))
    if not drill.dry_run:
        restore.mark_restored(run)


def _write_probe(etcd: EtcdClient, kube: KubeProbes | None) -> Callable[[], object]:
    """Writes accepted again: through the API where there is one, else straight to etcd."""
    if kube is None:
        return lambda: check.accepts_write(etcd)
    return lambda: (
        kube.ready() and kube.write_configmap(DR_PROBE_NAMESPACE, f"kubedrill-dr-{time.time_ns()}")
    )


def _lease_taken(
    kube: KubeProbes, name: str, before: LeaseState | None
) -> Callable[[], LeaseState | None]:
    """A controller leads again: its Lease held by a process started after the restore."""
    if before is None:
        return lambda: kube.lease(name)
    return lambda: kube.lease_moved(name, before)


def _replacement(drill: Drill, etcd: EtcdClient, plan: FaultPlan) -> replacement.Replacement:
    return replacement.Replacement(etcd, replacement.member_disk(drill.cluster, plan.victims[0]))


def _run_runbook(drill: Drill, runbook: replacement.Replacement) -> None:
    """remove, add, start -- each timed -- then wait for a voting, caught-up member."""
    drill.runbook(runbook.plan())
    disk, expected = runbook.disk, len(drill.cluster.etcd.endpoints)
    caught = drill.wait_for(
        "member.caught_up",
        lambda: membership.caught_up(runbook.etcd, disk.host, disk.peer_url, expected),
        budget="recovery",
    )
    drill.observe("member_caught_up", str(caught))
    took = drill.within_budget("recovery", "runbook.start", "member.caught_up", name="catch_up")
    drill.observe("runbook_catch_up_s", round(took.seconds, 3))


def _verify_members(drill: Drill, etcd: EtcdClient, before: int) -> None:
    drill.wait_for("cluster.healthy", lambda: check.all_healthy(etcd), budget="recovery")
    now = drill.act(
        "etcdctl member list",
        lambda: membership.list_members(etcd, etcd.nodes),
        dry=[membership.Member("0", "dry")],
    )
    drill.observe("members_after", ", ".join(f"{m.name}={m.hex_id}" for m in now))
    drill.expect(
        len(now) == before and all(m.started and not m.is_learner for m in now),
        f"{before} started voting members, as before",
        now,
    )
    drill.verify_etcd_data()  # every member's HashKV the same at one revision


@pytest.mark.disruptive
def test_member_replaced(drill: Drill, etcd: EtcdClient) -> None:
    """A follower's disk is lost: it crashes, is held down, and its data dir is moved aside.
    The runbook -- member remove, member add (same name and peer URL), start on an empty data
    dir with --initial-cluster-state=existing and the current --initial-cluster -- brings it
    back as a new member, each step timed, and `replacement` from the wipe to a voting,
    caught-up member. The cluster ends with as many members as before, all with the same
    HashKV, and the consistency workload ran through it all."""
    reason = replacement.unavailable(drill.cluster)
    if reason is not None:
        pytest.skip(reason)
    drill.steady_state(ETCD_HEALTHY, lambda: check.all_healthy(etcd))
    before = len(drill.cluster.etcd.endpoints)
    with drill.fault(replacement.LoseMemberDisk()) as plan:
        drill.observe("victim", plan.victims[0])
        drill.observe("old_member_id", f"{int(plan.data['member_id']):x}")
        _run_runbook(drill, _replacement(drill, etcd, plan))
    took = drill.within_budget("recovery", "fault.injected", "member.caught_up", name="replacement")
    drill.observe("replacement_s", round(took.seconds, 3))
    with drill.verify():
        _verify_members(drill, etcd, before)


# How long kubedrill waits for etcd to refuse a wiped member started the wrong way. etcd says so
# within a second or two of the start; the bound keeps a silent member from hanging the drill.
WRONG_WAY_S = 20.0
# The wrong ways, tried one after the other on the same wiped member: (name, how, its flags).
WRONG_WAYS: tuple[tuple[str, str, dict[str, str]], ...] = (
    # Started again with the lab's own command line: --initial-cluster-state=new.
    ("old_flags", "its old flags", {}),
    # Told to join the existing cluster, but under its old identity, never removed and added.
    (
        "existing",
        "--initial-cluster-state=existing, never removed and added",
        {"--initial-cluster-state": "existing"},
    ),
)


def _wrong_way(
    drill: Drill,
    etcd: EtcdClient,
    runbook: replacement.Replacement,
    old_id: str,
    cluster_id: str,
    way: tuple[str, str, dict[str, str]],
) -> None:
    """Start the wiped member the wrong way; etcd must refuse it and kubedrill say why, within
    WRONG_WAY_S; nothing changes in the membership. Then stop it and move what the start left
    in its data dir aside: the next try starts on an empty data dir again."""
    name, how, flags = way
    victim = runbook.disk.host
    node = drill.cluster.node(victim)
    since = time.time()
    drill.act(
        f"start {victim} as if nothing happened: an empty data dir, {how}",
        lambda: runbook.disk.start_with(flags),
        dry=None,
    )
    drill.timeline.mark(f"wrong_way.{name}.started")
    outcome = drill.wait_for(
        f"wrong_way.{name}.reported",
        lambda: wrong_way.wrong_way_outcome(
            etcd,
            victim,
            lambda: drill.cluster.control.logs(node, "etcd", since_wall=since),
            cluster_id,
        ),
        timeout=WRONG_WAY_S,
    )
    drill.observe(f"wrong_way_{name}", str(outcome))
    refused = isinstance(outcome, wrong_way.Refusal) and outcome.refused
    drill.expect(refused, f"etcd refuses {victim} started with {how}, and says why", outcome)
    dry: membership.Member | None = membership.Member(old_id, "")
    entry = drill.act("etcdctl member list", runbook.entry, dry=dry)
    drill.expect(
        entry is not None and entry.id == old_id,
        f"{victim}'s old identity is still the member (nothing changed behind the refusal)",
        entry,
    )

    def stop() -> None:
        runbook.disk.stop()
        runbook.disk.set_junk_aside()

    drill.act(f"stop {victim} again; move what it left in its data dir aside", stop, dry=None)


@pytest.mark.disruptive
def test_member_wrong_way_caught(drill: Drill, etcd: EtcdClient) -> None:
    """A follower's disk is lost, and it is started again as if nothing happened -- an empty
    data dir under its old identity -- first with its old flags, then with
    --initial-cluster-state=existing. Each time etcd must refuse it, and kubedrill must say so,
    with etcd's reason, within WRONG_WAY_S (a member that serves instead fails the drill, and
    nothing is waited for without a bound). Then the right runbook repairs it, and the cluster
    ends as healthy as the replacement drill's."""
    reason = replacement.unavailable(drill.cluster)
    if reason is not None:
        pytest.skip(reason)
    drill.steady_state(ETCD_HEALTHY, lambda: check.all_healthy(etcd))
    before = len(drill.cluster.etcd.endpoints)
    with drill.fault(replacement.LoseMemberDisk()) as plan:
        runbook = _replacement(drill, etcd, plan)
        cluster_id = drill.act(
            "read the cluster ID", lambda: wrong_way.cluster_id(etcd, runbook.others), dry=""
        )
        for way in WRONG_WAYS:
            _wrong_way(drill, etcd, runbook, plan.data["member_id"], cluster_id, way)
        _run_runbook(drill, runbook)
    for name, _how, _flags in WRONG_WAYS:
        seen = drill.within_budget(
            "detect", f"wrong_way.{name}.started", f"wrong_way.{name}.reported", f"wrong_way_{name}"
        )
        drill.observe(f"wrong_way_{name}_detect_s", round(seen.seconds, 3))
    with drill.verify():
        _verify_members(drill, etcd, before)
