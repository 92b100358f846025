"""Planned maintenance: a rolling restart of the control plane, one host at a time, the way a
kubeadm upgrade goes (drain, restart each static pod, wait ready, uncordon), while clients use
the API through the load balancer. Zero failed requests is the goal; every one that fails is
listed with its moment, backend and reason. The same for etcd, the leader last, with the
consistency workload writing: no failed write."""

from __future__ import annotations

import pytest

from kubedrill.drill import Drill
from kubedrill.maintenance.etcd_leadership import move_leader, successor
from kubedrill.maintenance.rolling import (
    RequestAccounting,
    RollingRestart,
    during,
    report,
    rolling_order,
)
from kubedrill.probes import etcd_checks
from kubedrill.probes.etcd import EtcdClient
from kubedrill.probes.kube import KubeProbes
from kubedrill.workload.history import Operation

pytestmark = [pytest.mark.maintenance, pytest.mark.disruptive]

API_HEALTHY = "the API is ready through the load balancer and every backend is UP"
SETTLE_S = 3.0  # requests keep going this long after the last host, to see its aftermath


def test_rolling_restart_control_plane(drill: Drill, kube: KubeProbes) -> None:
    """Restart kube-apiserver, kube-controller-manager and kube-scheduler on every
    control-plane host in turn: no request through the load balancer fails."""
    drill.steady_state(API_HEALTHY, lambda: kube.ready() and kube.all_backends_up())
    hosts = [n.name for n in drill.cluster.with_role("control-plane")]
    if len(hosts) < 2:
        pytest.skip("a rolling restart needs 2 or more control-plane hosts")
    accounting = RequestAccounting(drill).start()
    rolling = RollingRestart(drill)
    failed: list[str] = []
    try:
        rolling.run(hosts)
        drill.hold(SETTLE_S, lambda: None)
    finally:
        accounting.stop()
        # Reported on every way out: a restart that never got ready still lists what failed.
        failed = [] if drill.dry_run else report(drill, accounting, rolling)
    with drill.verify():
        drill.expect(
            not failed,
            "no request through the load balancer failed during the rolling restart",
            f"{len(failed)} failed:\n" + "\n".join(failed),
        )


def test_rolling_restart_etcd(drill: Drill, etcd: EtcdClient) -> None:
    """Restart every etcd member in turn, the leader last, its leadership moved away first
    (`etcdctl move-leader`): no write of the consistency workload fails."""
    drill.steady_state("etcd is healthy", lambda: etcd_checks.all_healthy(etcd))
    hosts = [n.name for n in drill.cluster.with_role("etcd")]
    if len(hosts) < 3:
        pytest.skip("a rolling restart of etcd needs 3 or more members (one down keeps quorum)")
    leader = drill.choose("the etcd leader, restarted last", etcd.leader)

    order = rolling_order(hosts, leader if isinstance(leader, str) else None)

    def move_leadership_away(host: str, _component: str) -> None:
        if drill.dry_run:
            if host == order[-1]:
                drill.act("move etcd leadership to the follower furthest along", str, dry="")
            return
        if etcd.leader() != host:
            return
        to = successor(etcd, host)
        drill.act(
            f"move etcd leadership from {host} to {to}",
            lambda: move_leader(etcd, host, to),
            dry=None,
        )
        drill.wait_for("etcd.leader_moved", lambda: etcd.leader() == to, budget="leader_election")

    rolling = RollingRestart(
        drill, components=("etcd",), drain=False, before_stop=move_leadership_away
    )
    rolling.run(order)
    drill.hold(SETTLE_S, lambda: None)
    with drill.verify():
        ops = drill.consistency.etcd_ops() if drill.consistency else []
        failed = [op for op in ops if is_failed_write(op)]
        drill.observe("etcd_writes", sum(op.kind in ("put", "cas") for op in ops))
        drill.observe(
            "etcd_failed_writes",
            [{**vars(op), "during": during(op.invoke, rolling.phases)} for op in failed],
        )
        drill.observe("hosts", [h.to_dict() for h in rolling.hosts])
        drill.observe("per_host_restart_s", {h.host: round(h.total_s, 3) for h in rolling.hosts})
        drill.expect(
            not failed,
            "no etcd write failed during the rolling restart",
            "\n".join(
                f"+{op.invoke:.3f} s {op.client} {op.kind} {op.key}: {op.outcome} {op.error} -- "
                f"{during(op.invoke, rolling.phases)}"
                for op in failed
            ),
        )
        drill.verify_etcd_data()


def is_failed_write(op: Operation) -> bool:
    return op.kind in ("put", "cas") and not op.ok
