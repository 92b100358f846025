"""The seed's control-plane-failure-test.sh as one drill, measured instead of slept: drain the
first control-plane node, stop etcd on the second, partition the third, then check the whole
cluster. The nodes are chosen by role, so on kind `docker stop etcd-control-2` becomes stopping
the etcd static pod of `<cluster>-control-plane2`."""

from __future__ import annotations

import time

import pytest

from kubedrill.drill import Drill
from kubedrill.faults import Drain, Isolate, Selector, StopComponent
from kubedrill.probes import etcd_checks
from kubedrill.probes.etcd import EtcdClient
from kubedrill.probes.kube import KubeProbes


@pytest.mark.slow
@pytest.mark.node
@pytest.mark.etcd
@pytest.mark.partition
@pytest.mark.disruptive
def test_gameday(drill: Drill, kube: KubeProbes, etcd: EtcdClient, namespace: str) -> None:
    if drill.cluster.facts.topology != "stacked":
        pytest.skip("the seed's script is written for the stacked topology (etcd on control-2)")
    drill.steady_state(
        "etcd healthy, API ready through HAProxy with every backend UP, every Node Ready",
        lambda: (
            etcd_checks.all_healthy(etcd)
            and kube.ready()
            and kube.all_backends_up()
            and kube.nodes_ready()
        ),
    )
    drill.api_reader()
    first, second, third = (drill.cluster.nth("control-plane", i) for i in range(3))

    # Test 1: drain the first (was: kubectl drain control-1; sleep 60; kubectl uncordon)
    drill.timeline.mark("t1.begin")
    with drill.fault(Drain(first)):
        drill.wait_for("t1.cordoned", lambda: not kube.schedulable(first), timeout=30)
        drill.wait_for("t1.api_ready", kube.ready, budget="api_recovery")
    drill.wait_for("t1.uncordoned", lambda: kube.schedulable(first), budget="recovery")
    drill.within_budget("recovery", "t1.begin", "t1.uncordoned", "t1 drain+uncordon")

    # Test 2: stop etcd on the second (was: docker stop etcd-control-2; sleep 120; docker start)
    drill.timeline.mark("t2.begin")
    with drill.fault(StopComponent("etcd", Selector.named(second))):
        drill.timeline.mark("t2.stopped")  # SIGTERM sent and the member gone
        drill.wait_for(
            "t2.quorum", lambda: leader_other_than(etcd, second), budget="leader_election"
        )
        drill.wait_for(
            "t2.api_writes",
            lambda: kube.ready() and kube.write_configmap(namespace, f"t2-{time.time_ns()}"),
            budget="api_recovery",
        )
    drill.wait_for("t2.rejoined", lambda: etcd_checks.rejoined(etcd, second), budget="recovery")
    drill.within_budget("leader_election", "t2.stopped", "t2.quorum", "t2 etcd quorum")
    drill.within_budget("api_recovery", "t2.begin", "t2.api_writes", "t2 API writes")
    drill.within_budget("recovery", "t2.begin", "t2.rejoined", "t2 member rejoined")

    # Test 3: partition the third (was: iptables -A INPUT -s control-3 -j DROP; sleep 120)
    drill.timeline.mark("t3.begin")
    with drill.fault(Isolate(Selector.named(third), component="kube-apiserver")):
        drill.wait_for("t3.lb_down", lambda: kube.backend_is(third, "DOWN"), budget="detect")
        drill.wait_for(
            "t3.quorum", lambda: leader_other_than(etcd, third), budget="leader_election"
        )
    drill.timeline.mark("t3.healed")
    drill.wait_for(
        "t3.rejoined",
        lambda: kube.backend_is(third, "UP") and etcd_checks.all_healthy(etcd),
        budget="recovery",
    )
    drill.within_budget("detect", "t3.begin", "t3.lb_down", "t3 LB marks the third down")
    drill.within_budget("recovery", "t3.healed", "t3.rejoined", "t3 third rejoined")

    # Verify: the whole cluster (was: kubectl get nodes; kubectl get pods -A)
    with drill.verify():
        drill.wait_for(
            "cluster.healthy",
            lambda: etcd_checks.all_healthy(etcd) and kube.all_backends_up() and kube.nodes_ready(),
            budget="recovery",
        )
        drill.assert_api_available()


def leader_other_than(etcd: EtcdClient, node: str) -> bool:
    view = etcd.leader_view()
    return view.leader is not None and view.leader != node
