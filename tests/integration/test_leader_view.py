"""The quorum-decided leader view on real etcd: a paused member does not hold a poll round
for its timeout (it did: a paused leader's election was reported 1.5 s late)."""

from __future__ import annotations

import time

from kubedrill.cluster import Cluster
from kubedrill.faults import PauseComponent, Selector
from kubedrill.faults.runner import FaultSession
from kubedrill.ledger import Ledger
from kubedrill.polling import poll_until
from kubedrill.probes import etcd_checks
from kubedrill.probes.etcd import EtcdClient
from kubedrill.timeline import Timeline


def test_a_paused_leader_does_not_slow_the_view(test_lab: Cluster) -> None:
    etcd = EtcdClient(test_lab.etcd, timeout=0.8)
    try:
        _, ok = poll_until(lambda: etcd_checks.all_healthy(etcd), bool, timeout=30)
        assert ok
        before = etcd.leader_view()
        assert before.leader is not None
        session = FaultSession(test_lab, Timeline(), Ledger(), log=lambda _m: None)
        with session.inject(PauseComponent("etcd", Selector.named(before.leader))):
            rounds = []
            for _ in range(200):
                started = time.monotonic()
                view = etcd.leader_view()
                rounds.append(time.monotonic() - started)
                if view.leader not in (None, before.leader):
                    break
                time.sleep(0.02)
            # Followers answered: decided by them, not held by the paused member's timeout.
            assert before.leader in view.pending or view.statuses[before.leader] is None
            assert view.leader not in (None, before.leader), "no new leader after 4 s"
            assert view.term > before.term
            # Mid-election (followers disagree) the paused member gets 50 ms, not its timeout.
            assert max(rounds) < 0.3, [round(r, 3) for r in rounds]
            # A complete view waits for the paused member, up to the timeout.
            complete = etcd.leader_view(complete=True)
            assert complete.statuses[before.leader] is None
        _, ok = poll_until(lambda: etcd_checks.all_healthy(etcd), bool, timeout=30)
        assert ok, "the thawed member did not rejoin"
    finally:
        etcd.close()
