"""Slow and crashing disks (issue #13), on an etcd built with gofail failpoints.

Runs on the failpoints lab (fixtures/labs/failpoints-etcd.yaml, `make drill-disk-failpoints`);
skipped with the reason on a target whose etcd has no failpoints. The consistency workload runs
through every drill and each ends with every member's HashKV compared.
"""

from __future__ import annotations

import pytest

from kubedrill.cluster import Cluster
from kubedrill.disaster import disk
from kubedrill.drill import Drill
from kubedrill.faults.disk import ThrottleDiskWrites
from kubedrill.faults.failpoint import ArmFailpoint, hit_count
from kubedrill.faults.shape import Selector
from kubedrill.probes import etcd_checks as check

pytestmark = [pytest.mark.disk, pytest.mark.disruptive]

ETCD_HEALTHY = "every etcd member answers and a quorum agrees on one leader"
STALL_MS = 1500  # each WAL save of the leader waits this long (raftBeforeSave=sleep)
STALL_HOLD_S = 8.0
BASELINE_S = 3.0
LEASE_TTL_S = 3
RECORDED_S = 1.5
DEADLINE_S = 3.0  # the second writer's time per member: twice a stalled save


@pytest.fixture(autouse=True)
def failpoints_lab(cluster: Cluster) -> None:
    if not cluster.etcd.failpoint_urls:
        pytest.skip(
            f"{cluster.name}'s etcd is not built with failpoints: these drills run on "
            "fixtures/labs/failpoints-etcd.yaml (make drill-disk-failpoints)"
        )


STALLS = [
    pytest.param("raftBeforeSave", id="raftBeforeSave-sleep"),
    # A real slow fsync: the WAL fsync histogram sees it (the failpoint sits outside the
    # timed call), so the WAL fsync alerts must fire.
    pytest.param(
        "slow-fsync",
        id="slow-fsync",
        marks=pytest.mark.expect_alerts("EtcdWALFsyncSlow", "EtcdWALFsyncVerySlow"),
    ),
]


@pytest.mark.parametrize("stall", STALLS)
def test_leader_disk_stall(drill: Drill, stall: str) -> None:
    """The leader's disk stalls for STALL_HOLD_S: each WAL save sleeps STALL_MS before it is
    written (raftBeforeSave), or its writes are throttled to 2 IOPS so every fdatasync takes
    0.5-2 s. Reported: whether the leader changed, put latency p50/p99 before and during, a
    3 s lease kept alive through it (expired or not), and what etcd's own WAL fsync and
    backend commit histograms saw on that member. Writes must still be acknowledged during
    the stall and the cluster healthy within `recovery` after it.

    Two writers, as two kinds of client. The patient one waits up to 10 s for each put: its
    latency is the figure. The stalled leader usually loses its leadership; a put it had in
    flight then waits etcd's request timeout (5 s plus twice the election timeout: 7 s here),
    and a put sent to the slow member waits for its disk even after the leadership moved, so
    its "during" figures take every put in flight during the stall, with its whole wait. The
    other gives each member DEADLINE_S before it tries the next, like a client with a request
    deadline and several endpoints: whether the cluster takes writes during the stall is
    judged on its puts, which a single stuck put cannot hide."""
    etcd = drill.etcd
    drill.steady_state(ETCD_HEALTHY, lambda: check.all_healthy(etcd))
    before = etcd.leader_view()
    writer = drill.writer(interval=0.1, attempt_timeout=10.0)
    with_deadline = drill.writer(interval=0.1, attempt_timeout=DEADLINE_S)
    keeper = disk.LeaseKeeper(
        timeline=drill.timeline,
        access=drill.cluster.etcd,
        ttl_s=LEASE_TTL_S,
        interval=LEASE_TTL_S / 3,
        name="lease-keeper",
    )
    drill.act(f"grant a lease (TTL {LEASE_TTL_S} s)", keeper.grant, dry="")
    drill.add_recorder(keeper, start=not drill.dry_run)
    drill.hold(BASELINE_S, lambda: None)  # puts before the stall, the baseline
    fault = (
        ArmFailpoint("raftBeforeSave", f"sleep({STALL_MS})", Selector.leader())
        if stall == "raftBeforeSave"
        else ThrottleDiskWrites("etcd", Selector.leader(), write_iops=2)
    )
    with drill.fault(fault) as plan:
        victim = plan.victims[0]
        url = drill.cluster.etcd.metrics_urls[victim]
        seen_before = drill.act(
            "scrape the victim's histograms", lambda: disk.scrape(url), dry=None
        )
        drill.hold(STALL_HOLD_S, lambda: None)
        seen_after = drill.act("scrape them again", lambda: disk.scrape(url), dry=None)
        if stall == "raftBeforeSave":
            fired = drill.act(
                "how often the failpoint ran",
                lambda: hit_count(drill.cluster.etcd.failpoint_urls[victim], "raftBeforeSave"),
                dry=None,
            )
            drill.observe("failpoint_hits", fired)
            drill.expect(drill.dry_run or bool(fired), "the failpoint ran on the leader", fired)
    with drill.verify():
        drill.wait_for("cluster.healthy", lambda: check.all_healthy(etcd), budget="recovery")
        if drill.dry_run:
            return
        after = etcd.leader_view()
        keeper.stop()
        lease = disk.lease_figures(keeper.history(), keeper.time_to_live())
        keeper.revoke()
        # Stopped first: a put still waiting on the deposed leader ends (answered or not)
        # before the figures are taken, else the stall's slowest put would go uncounted.
        ops = writer.stop()
        deadline_ops = with_deadline.stop()
        base = disk.latency_window(
            "before", ops, drill.offset("steady_state.ok"), drill.offset("fault.injecting")
        )
        stalled = (drill.offset("fault.injected"), drill.offset("fault.healing"))
        held = disk.latency_window("during", ops, *stalled, overlapping=True)
        histograms = disk.histogram_deltas(seen_before or {}, seen_after or {})
        drill.observe("victim", victim)
        drill.observe("leader_changed", after.leader != before.leader or after.term > before.term)
        drill.observe(
            "leader_before_after",
            f"{before.leader} (term {before.term}) -> {after.leader} (term {after.term})",
        )
        drill.observe("put_latency_before", base.to_dict())
        drill.observe("put_latency_during", held.to_dict())
        drill.observe("lease", lease.to_dict())
        drill.observe("victim_histograms_during", {k: v.to_dict() for k, v in histograms.items()})
        answered = disk.latency_window("deadline", deadline_ops, *stalled, overlapping=True)
        drill.observe(f"put_latency_during_{DEADLINE_S:g}s_deadline", answered.to_dict())
        drill.expect(
            disk.acknowledged_between(deadline_ops, *stalled) > 0,
            f"writes were acknowledged during the stall (a client with a {DEADLINE_S:g} s "
            "deadline per member)",
            answered.to_dict(),
        )
        if stall == "slow-fsync":
            fsync = histograms["wal_fsync"]
            drill.expect(
                (fsync.p99_s or 0) > 0.01,
                "the victim's own WAL fsync p99 shows the slow disk (> 10 ms)",
                fsync.to_dict(),
            )
        drill.verify_etcd_data()


CRASH_POINTS = [
    disk.CrashPoint("raftBeforeSave", "leader", "put"),
    disk.CrashPoint("raftAfterSave", "leader", "put"),
    disk.CrashPoint("defragBeforeCopy", "follower", "defrag"),
    disk.CrashPoint("defragBeforeRename", "follower", "defrag"),
    disk.CrashPoint("compactBeforeCommitScheduledCompact", "follower", "compact"),
    disk.CrashPoint("compactBeforeSetFinishedCompact", "follower", "compact"),
]


@pytest.mark.parametrize("point", CRASH_POINTS, ids=lambda p: p.failpoint)
def test_member_crash_at_failpoint(drill: Drill, point: disk.CrashPoint) -> None:
    """A member panics at a disk crash point (its WAL save, a defragmentation, a compaction):
    it goes down, the lab's supervisor restarts it (as kubelet restarts a static pod), it
    rejoins, and the cluster is healthy within `recovery` of the crash; the process start time
    proves it restarted. The consistency workload's checks and every member's HashKV must hold
    (nothing acknowledged lost, no member diverged)."""
    etcd = drill.etcd
    drill.steady_state(ETCD_HEALTHY, lambda: check.all_healthy(etcd))
    view = etcd.leader_view()
    # A follower: the one up the longest. The lab's supervisor doubles its restart back-off
    # for a member that crashes again within 30 s (as kubelet's CrashLoopBackOff does): a
    # member crashed by the previous drill would add that back-off to this drill's figure.
    followers = [n for n in etcd.nodes if n != view.leader]
    victim = str(
        drill.choose(
            f"the {point.victim}" + (" up the longest" if point.victim == "follower" else ""),
            lambda: (
                view.leader
                if point.victim == "leader"
                else disk.longest_up(drill.cluster.etcd, followers)
            ),
        )
    )
    url = drill.cluster.etcd.metrics_urls.get(victim, "")
    started = drill.act(
        "the victim's start time", lambda: disk.start_time(disk.scrape(url)), dry=None
    )
    # Down: its process is gone (nothing listens on its metrics port), not merely slow.
    down = drill.watch("member.down", lambda: disk.process_gone(url))
    trigger = disk.TRIGGERS[point.trigger]
    # A dry run chose nobody (it observed nothing): it shows the selector instead.
    role = Selector.leader() if point.victim == "leader" else Selector.follower()
    chosen = role if drill.dry_run else Selector.named(victim)
    with drill.fault(ArmFailpoint(point.failpoint, "panic", chosen)):
        outcome = drill.act(
            f"trigger: {trigger.what}",
            lambda: trigger.run(etcd, victim, disk.other_member(etcd.nodes, victim)),
            dry="",
        )
        drill.observe("trigger", outcome)
        down.wait()
        drill.wait_for(
            "member.restarted",
            lambda: (disk.start_time(disk.scrape(url, timeout=0.5)) or started) != started,
            budget="recovery",
        )
        drill.wait_for(
            "member.healthy",
            lambda: disk.answers(etcd, victim) and check.all_healthy(etcd),
            budget="recovery",
        )
        # Past one metrics scrape (1 s): the state the alert rules hold is the member back,
        # not the moment before (a restarted member briefly reports no leader).
        drill.hold(RECORDED_S, lambda: None if check.all_healthy(etcd) else "unhealthy again")
    with drill.verify():
        drill.within_budget("recovery", "member.down", "member.healthy", name="crash_to_healthy")
        drill.observe("victim", f"{point.victim} {victim}")
        # The supervisor's share (its back-off and the exec) and etcd's own (replay, rejoin).
        drill.observe(
            "down_to_restarted_s",
            round(drill.offset("member.restarted") - drill.offset("member.down"), 3),
        )
        drill.observe(
            "restarted_to_healthy_s",
            round(drill.offset("member.healthy") - drill.offset("member.restarted"), 3),
        )
        drill.verify_etcd_data()
