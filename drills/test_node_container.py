"""Whole-machine faults on control-plane nodes that are containers (kind): the node hangs
(`docker pause`: every process frozen, its address still there) or shuts down (`docker stop`:
SIGTERM to init, SIGKILL after the grace). Other targets skip these with the reason."""

from __future__ import annotations

import time

import pytest

from kubedrill.drill import Drill
from kubedrill.faults import PauseNode, Selector, StopNode
from kubedrill.probes import etcd_checks
from kubedrill.probes.etcd import EtcdClient
from kubedrill.probes.kube import KubeProbes
from kubedrill.server_record.compare import etcd_election, lb_state

pytestmark = [pytest.mark.node, pytest.mark.etcd, pytest.mark.disruptive]


HEALTHY = "etcd and the API are healthy, every LB backend UP"


def healthy(etcd: EtcdClient, kube: KubeProbes) -> bool:
    return etcd_checks.all_healthy(etcd) and kube.ready() and kube.all_backends_up()


def test_pause_etcd_leader_node(
    drill: Drill, kube: KubeProbes, etcd: EtcdClient, namespace: str
) -> None:
    """Freeze the node that holds the etcd leader: the others elect a leader within
    `leader_election`, the load balancer marks it DOWN within `detect`, API writes are accepted
    within `api_recovery`; after unpause it rejoins within `recovery`."""
    drill.steady_state(
        "etcd and the API are healthy, every LB backend UP", lambda: healthy(etcd, kube)
    )
    drill.api_reader()
    before = etcd.leader_view()
    with drill.fault(PauseNode(Selector.leader())) as fault:
        victim = fault.victims[0]
        drill.wait_for(
            "leader.elected",
            lambda: etcd_checks.new_leader(etcd, before, fault.victims),
            budget="leader_election",
            record=etcd_election(),
        )
        drill.wait_for(
            "lb.backend_down",
            lambda: kube.backend_is(victim, "DOWN"),
            budget="detect",
            record=lb_state(victim, "DOWN"),
        )
        drill.wait_for(
            "api.writes_accepted",
            lambda: kube.write_configmap(namespace, f"w-{time.time_ns()}"),
            budget="api_recovery",
        )
    drill.within_budget("leader_election", "fault.injecting", "leader.elected")
    drill.within_budget("detect", "fault.injecting", "lb.backend_down")
    drill.within_budget("api_recovery", "fault.injecting", "api.writes_accepted")
    with drill.verify():
        drill.wait_for("node.rejoined", lambda: healthy(etcd, kube), budget="recovery")
        drill.within_budget("recovery", "fault.healed", "node.rejoined")
        drill.verify_etcd_data()


def test_stop_control_plane_node(drill: Drill, kube: KubeProbes, etcd: EtcdClient) -> None:
    """Shut the third control-plane node down: etcd keeps a leader among the other two, the
    API through the load balancer stays available; after `docker start` the node boots, kubelet
    brings its static pods back and it rejoins within `recovery`."""
    victim = drill.cluster.nth("control-plane", 2)
    drill.steady_state(
        "etcd and the API are healthy, every LB backend UP", lambda: healthy(etcd, kube)
    )
    drill.api_reader()
    down = drill.watch(
        "lb.backend_down",
        lambda: kube.backend_is(victim, "DOWN"),
        budget="detect",
        record=lb_state(victim, "DOWN"),
    )
    with drill.fault(StopNode(Selector.named(victim))):  # returns once the node is down
        down.wait()
        drill.wait_for(
            "etcd.quorum",
            lambda: etcd.leader_view().leader not in (None, victim),
            budget="leader_election",
        )
    drill.within_budget("detect", "fault.injecting", "lb.backend_down")
    with drill.verify():
        drill.wait_for("node.rejoined", lambda: healthy(etcd, kube), budget="recovery")
        drill.within_budget("recovery", "fault.healed", "node.rejoined")
        drill.assert_api_available()
        drill.verify_etcd_data()
