"""Planned maintenance: an in-place upgrade of the control plane to the next Kubernetes minor,
host by host as kubeadm does it (drain; etcd when its version changes, kube-apiserver,
kube-controller-manager, kube-scheduler, each stopped, its binary switched, started and ready;
uncordon), the etcd leader's host last with its leadership moved away first, while clients use
the API through the load balancer. Zero failed requests is the goal; every one that fails is
listed with its moment, backend and reason (fixtures/labs/upgrade.yaml: make drill-upgrade)."""

from __future__ import annotations

import pytest

from kubedrill.drill import Drill
from kubedrill.errors import ConfigError
from kubedrill.maintenance import upgrade
from kubedrill.maintenance.etcd_leadership import move_leader, successor
from kubedrill.maintenance.rolling import RequestAccounting, RollingRestart, report, rolling_order
from kubedrill.probes.etcd import EtcdClient
from kubedrill.probes.kube import KubeProbes

pytestmark = [pytest.mark.maintenance, pytest.mark.disruptive]

API_HEALTHY = "the API is ready through the load balancer and every backend is UP"
SETTLE_S = 3.0


def test_upgrade_control_plane(drill: Drill, kube: KubeProbes, etcd: EtcdClient) -> None:
    """Upgrade every control-plane host in turn to the next pinned minor: no request through
    the load balancer fails, and every component ends on the new release."""
    facts = drill.cluster.facts
    if not facts.kubernetes_version:
        pytest.skip(f"{drill.cluster.name}: the upgrade drill needs a Kubernetes version fact")
    try:
        plan = upgrade.plan_from(facts.kubernetes_version, facts.etcd_version)
    except ConfigError as exc:
        pytest.skip(f"{drill.cluster.name}: {exc.message}")
    hosts = [n.name for n in drill.cluster.with_role("control-plane")]
    if len(hosts) < 2 or {n.name for n in drill.cluster.with_role("etcd")} != set(hosts):
        pytest.skip("the upgrade drill needs a stacked control plane of 2 or more hosts")
    switch = upgrade.lab_switch(drill.cluster, plan, lambda line: print(line, flush=True))
    if switch is None:
        pytest.skip(f"{drill.cluster.name}: the binary switch is the lab's (its supervisor)")
    drill.observe("upgrade", plan.describe())
    drill.steady_state(API_HEALTHY, lambda: kube.ready() and kube.all_backends_up())
    leader = drill.choose("the etcd leader's host, upgraded last", etcd.leader)

    def move_leadership_away(host: str, component: str) -> None:
        if drill.dry_run or component != "etcd" or etcd.leader() != host:
            return
        to = successor(etcd, host)
        drill.act(
            f"move etcd leadership from {host} to {to}",
            lambda: move_leader(etcd, host, to),
            dry=None,
        )
        drill.wait_for("etcd.leader_moved", lambda: etcd.leader() == to, budget="leader_election")

    accounting = RequestAccounting(drill).start()
    rolling = RollingRestart(
        drill, components=plan.components, while_down=switch, before_stop=move_leadership_away
    )
    try:
        rolling.run(rolling_order(hosts, leader if isinstance(leader, str) else None))
        drill.hold(SETTLE_S, lambda: None)
    finally:
        accounting.stop()
    with drill.verify():
        failed = [] if drill.dry_run else report(drill, accounting, rolling)
        old = [
            f"{component} on {host}: {line.argv[0] if line else 'unreadable'}"
            for host in hosts
            for component in plan.components
            for line in [drill.cluster.control.command_line(drill.cluster.node(host), component)]
            if line is None or not line.argv[0].startswith(f"{switch.bin_dirs[component]}/")
        ]
        drill.expect(not old, f"every component runs {plan.target.kubernetes}", "\n".join(old))
        drill.expect(
            not failed,
            "no request through the load balancer failed during the upgrade",
            f"{len(failed)} failed:\n" + "\n".join(failed),
        )
        if plan.etcd_changes:
            drill.verify_etcd_data()
