"""etcd failover drills: each one reads like the runbook step it replaces."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from kubedrill.drill import Drill, Watch
from kubedrill.faults import (
    Isolate,
    KillComponent,
    NetemDelay,
    PauseComponent,
    Selector,
    StopComponent,
)
from kubedrill.probes import etcd_checks as check
from kubedrill.probes.etcd import EtcdClient
from kubedrill.server_record.compare import etcd_election
from kubedrill.workload.history import longest_unavailability, ops_between, ops_overlapping

pytestmark = [pytest.mark.etcd, pytest.mark.disruptive]


ETCD_HEALTHY = "every etcd member answers and a quorum agrees on one leader"


def watch_election(drill: Drill, new_leader: Callable[[], object]) -> Watch:
    """Watch for the new leader from before the inject: injecting can take longer than the
    election itself (a few `podman exec`s on kind: 0.3-3 s), and a probe that starts only
    after it would report the inject's time instead of the election's."""
    return drill.watch(
        "leader.elected", new_leader, budget="leader_election", record=etcd_election()
    )


def test_kill_leader(drill: Drill, etcd: EtcdClient) -> None:
    """SIGKILL the leader: a new leader within budget, writes accepted again, member rejoins.

    The supervisor restarts the killed member at once (as kubelet would), so it may well win
    the new election itself: any leader of a later term counts."""
    drill.steady_state(ETCD_HEALTHY, lambda: check.all_healthy(etcd))
    before = etcd.leader_view()
    elected = watch_election(drill, lambda: check.new_leader(etcd, before))
    with drill.fault(KillComponent("etcd", Selector.leader())) as fault:
        elected.wait()
        drill.wait_for("writes.accepted", lambda: check.accepts_write(etcd), budget="recovery")
    drill.within_budget("leader_election", "fault.injecting", "leader.elected")
    with drill.verify():
        drill.wait_for(
            "member.rejoined", lambda: check.rejoined(etcd, fault.victims[0]), budget="recovery"
        )
        drill.within_budget("recovery", "fault.injecting", "member.rejoined")
        drill.verify_etcd_data()


def test_stop_follower(drill: Drill, etcd: EtcdClient) -> None:
    """Stop a follower: writes never fail; after heal it rejoins and catches up."""
    drill.steady_state(ETCD_HEALTHY, lambda: check.all_healthy(etcd))
    writer = drill.writer()
    drill.wait_for("writes.flowing", lambda: any(op.ok for op in writer.history()), timeout=10)
    with drill.fault(StopComponent("etcd", Selector.follower())) as fault:
        drill.hold(5.0, lambda: None)  # let writes run against the degraded cluster
    last_acked = max((op.revision for op in writer.history() if op.ok), default=0)
    with drill.verify():
        drill.wait_for(
            "member.caught_up",
            lambda: check.rejoined(etcd, fault.victims[0], last_acked),
            budget="recovery",
        )
        drill.within_budget("recovery", "fault.healed", "member.caught_up")
        ops = writer.stop()
        # Every write that overlapped the fault in any way, from the first inject step to the
        # member having caught up.
        during = ops_overlapping(
            ops, drill.offset("fault.injecting"), drill.offset("member.caught_up")
        )
        drill.observe("writes_during_fault", len(during))
        failed = [op for op in during if not op.ok]
        drill.expect(bool(during), "writes overlapped the follower's outage")
        drill.expect(not failed, "no write failed while a follower was down", failed[:3])
        drill.verify_etcd_data()


@pytest.mark.partition
def test_isolate_leader(drill: Drill, etcd: EtcdClient) -> None:
    """Cut the leader off with iptables: the majority elects a new leader, the old one steps
    down, and after heal it rejoins as a follower."""
    drill.steady_state(ETCD_HEALTHY, lambda: check.all_healthy(etcd))
    before = etcd.leader_view()
    # A cut-off old leader may still claim to lead: its claim is not a new leader.
    elected = watch_election(drill, lambda: check.new_leader(etcd, before, not_the_old_one=True))
    with drill.fault(Isolate(Selector.leader())) as fault:
        old = fault.victims[0]
        elected.wait()
        drill.wait_for(
            "old_leader.stepped_down",
            lambda: check.stepped_down(etcd, old),
            budget="leader_election",
        )
    drill.within_budget("leader_election", "fault.injecting", "leader.elected")
    with drill.verify():
        drill.wait_for("old_leader.rejoined", lambda: check.rejoined(etcd, old), budget="recovery")
        drill.within_budget("recovery", "fault.healed", "old_leader.rejoined")
        drill.verify_etcd_data()


def test_pause_leader(drill: Drill, etcd: EtcdClient) -> None:
    """SIGSTOP the leader (a hung process): new leader within budget; after SIGCONT it rejoins."""
    drill.steady_state(ETCD_HEALTHY, lambda: check.all_healthy(etcd))
    before = etcd.leader_view()
    elected = watch_election(drill, lambda: check.new_leader(etcd, before, not_the_old_one=True))
    with drill.fault(PauseComponent("etcd", Selector.leader())) as fault:
        elected.wait()
    drill.within_budget("leader_election", "fault.injecting", "leader.elected")
    with drill.verify():
        drill.wait_for(
            "old_leader.rejoined", lambda: check.rejoined(etcd, fault.victims[0]), budget="recovery"
        )
        drill.within_budget("recovery", "fault.healed", "old_leader.rejoined")
        drill.verify_etcd_data()


@pytest.mark.expect_alerts("EtcdInsufficientMembers")
def test_quorum_loss(drill: Drill, etcd: EtcdClient) -> None:
    """Stop a majority: writes fail while quorum is gone (expected); after heal the cluster
    elects a leader and accepts writes within the recovery budget."""
    drill.steady_state(ETCD_HEALTHY, lambda: check.all_healthy(etcd))
    writer = drill.writer(interval=0.1)
    majority = StopComponent("etcd", Selector("majority"))
    with drill.fault(majority, allow_quorum_loss=True):
        drill.hold(4.0, lambda: None)
    with drill.verify():
        drill.wait_for("writes.accepted", lambda: check.accepts_write(etcd), budget="recovery")
        drill.wait_for("cluster.healthy", lambda: check.all_healthy(etcd), budget="recovery")
        drill.within_budget("recovery", "fault.healed", "cluster.healthy")
        ops = writer.stop()
        # From the moment the majority is down (not from the first stop: until the second
        # member is gone the cluster still has quorum and may rightly acknowledge writes).
        injected = drill.offset("fault.injected")
        healing = drill.offset("fault.healing")
        during = ops_between(ops, injected, healing)
        acked = [op for op in during if op.ok]
        drill.observe("writes_attempted_without_quorum", len(during))
        window = longest_unavailability(ops)
        drill.observe("longest_write_unavailability_s", round(window.seconds, 3) if window else 0)
        drill.expect(bool(during), "writes were attempted while quorum was lost")
        drill.expect(not acked, "no write was acknowledged without quorum", acked[:3])
        drill.verify_etcd_data()


@pytest.mark.partition
def test_peer_latency_below_election_timeout(drill: Drill, etcd: EtcdClient) -> None:
    """Delay the leader's peer traffic well below the election timeout: no leader change."""
    drill.steady_state(ETCD_HEALTHY, lambda: check.all_healthy(etcd))
    timeout_ms = drill.cluster.facts.election_timeout_ms
    delay = timeout_ms // 5
    before = etcd.leader_view()
    with drill.fault(NetemDelay(delay, Selector.leader())):
        drill.hold(8.0, lambda: check.same_leader(etcd, before))
    drill.observe("peer_delay_ms", delay)
    drill.observe("leader_term_change", etcd.leader_view().term - before.term)
    with drill.verify():
        drill.wait_for("writes.accepted", lambda: check.accepts_write(etcd), budget="recovery")
        changed = check.same_leader(etcd, before)
        assert changed is None, changed
        drill.verify_etcd_data()


@pytest.mark.partition
def test_peer_latency_above_election_timeout(drill: Drill, etcd: EtcdClient) -> None:
    """Delay the leader's peer traffic beyond the election timeout and report what happened;
    the cluster must be healthy again within the recovery budget after heal."""
    drill.steady_state(ETCD_HEALTHY, lambda: check.all_healthy(etcd))
    timeout_ms = drill.cluster.facts.election_timeout_ms
    delay = timeout_ms * 3 // 2
    before = etcd.leader_view()
    writer = drill.writer(interval=0.1)
    with drill.fault(NetemDelay(delay, Selector.leader())):
        drill.hold(8.0, lambda: None)
        during = etcd.leader_view()
    drill.observe("peer_delay_ms", delay)
    drill.observe("leader_during_fault", f"{during.leader} (term {during.term})")
    drill.observe("terms_elapsed_during_fault", during.term - before.term)
    with drill.verify():
        drill.wait_for("cluster.healthy", lambda: check.all_healthy(etcd), budget="recovery")
        drill.within_budget("recovery", "fault.healed", "cluster.healthy")
        ops = writer.stop()
        window = longest_unavailability(ops)
        drill.observe("writes_ok", sum(op.ok for op in ops))
        drill.observe("writes_failed", sum(not op.ok for op in ops))
        latencies = sorted(op.complete - op.invoke for op in ops if op.ok)
        if latencies:
            drill.observe("write_latency_p50_s", round(latencies[len(latencies) // 2], 3))
            drill.observe("write_latency_max_s", round(latencies[-1], 3))
        drill.observe("longest_write_unavailability_s", round(window.seconds, 3) if window else 0)
        drill.verify_etcd_data()
