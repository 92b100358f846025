"""Control-plane drills on the lab's HA Kubernetes (topology stacked or external): what SREs
run on game days. Each checks the steady state, injects one fault, measures, heals, verifies."""

from __future__ import annotations

import time
from typing import Any

import pytest

from kubedrill.drill import Drill
from kubedrill.faults import Drain, Isolate, KillComponent, Selector, StopComponent
from kubedrill.probes import etcd_checks
from kubedrill.probes.etcd import EtcdClient
from kubedrill.probes.kube import KubeProbes
from kubedrill.server_record.compare import lb_state, lease_acquire

pytestmark = [pytest.mark.disruptive]

API_HEALTHY = "the API is ready through the load balancer and every backend is UP"


def api_healthy(kube: KubeProbes) -> bool:
    return kube.ready() and kube.all_backends_up()


@pytest.mark.apiserver
@pytest.mark.expect_alerts("APIServerDown")
def test_stop_apiserver_behind_load_balancer(drill: Drill, kube: KubeProbes) -> None:
    """Stop kube-apiserver on the first control-plane node: requests through the load balancer
    keep succeeding; the LB marks the backend DOWN within `detect`; after heal it is back UP
    within `recovery`."""
    drill.steady_state(API_HEALTHY, lambda: api_healthy(kube))
    drill.api_reader()
    victim = drill.cluster.nth("control-plane", 0)
    # Watched from before the inject: a stopped kube-apiserver may take its whole grace period
    # (30 s under kubelet) to exit, and the LB's verdict can come at any time in it.
    down = drill.watch(
        "lb.backend_down",
        lambda: kube.backend_is(victim, "DOWN"),
        budget="detect",
        record=lb_state(victim, "DOWN"),
    )
    with drill.fault(StopComponent("kube-apiserver", Selector.named(victim))):
        down.wait()
        drill.hold(2.0, lambda: None)
    drill.within_budget("detect", "fault.injecting", "lb.backend_down")
    with drill.verify():
        drill.wait_for(
            "lb.backend_up",
            lambda: kube.backend_is(victim, "UP"),
            budget="recovery",
            record=lb_state(victim, "UP"),
        )
        drill.within_budget("recovery", "fault.healed", "lb.backend_up")
        drill.assert_api_available()


@pytest.mark.controller
def test_kill_controller_manager_leader(drill: Drill, kube: KubeProbes, namespace: str) -> None:
    """Kill the kube-controller-manager leader: the Lease changes holder within
    `lease_takeover` (leaseTransitions goes up) and controllers work again (a scaled
    Deployment gets its pods) within `recovery`."""
    lease = "kube-controller-manager"
    drill.steady_state(
        f"{lease} holds its Lease and the API is ready",
        lambda: kube.ready() and bool((kube.lease(lease) or _none).node),
    )
    kube.create_deployment(namespace, "web", replicas=2)
    drill.wait_for(
        "deployment.ready", lambda: len(kube.running_pods(namespace, "app=web")) >= 2, timeout=60
    )
    before = kube.lease(lease)
    assert before is not None
    with drill.fault(KillComponent(lease, Selector.leader())):
        drill.wait_for(
            "lease.taken_over",
            lambda: kube.lease_moved(lease, before),
            budget="lease_takeover",
            record=lease_acquire(lease),
        )
    drill.within_budget("lease_takeover", "fault.injecting", "lease.taken_over")
    with drill.verify():
        kube.scale(namespace, "web", 4)
        drill.wait_for(
            "controllers.working",
            lambda: len(kube.running_pods(namespace, "app=web")) >= 4,
            budget="recovery",
        )
        drill.within_budget("recovery", "fault.injecting", "controllers.working")


@pytest.mark.scheduler
def test_kill_scheduler_leader(drill: Drill, kube: KubeProbes, namespace: str) -> None:
    """Kill the kube-scheduler leader: pods created during the outage are scheduled after
    another scheduler takes the Lease (within `lease_takeover`)."""
    lease = "kube-scheduler"
    drill.steady_state(
        f"{lease} holds its Lease and the API is ready",
        lambda: kube.ready() and bool((kube.lease(lease) or _none).node),
    )
    before = kube.lease(lease)
    assert before is not None
    with drill.fault(KillComponent(lease, Selector.leader())):
        kube.create_deployment(namespace, "late", replicas=3)
        drill.timeline.mark("pods.created")
        drill.wait_for(
            "lease.taken_over",
            lambda: kube.lease_moved(lease, before),
            budget="lease_takeover",
            record=lease_acquire(lease),
        )
        drill.wait_for(
            "pods.scheduled", lambda: scheduled(kube, namespace, "app=late", 3), budget="recovery"
        )
    drill.within_budget("lease_takeover", "fault.injecting", "lease.taken_over")
    drill.within_budget("recovery", "pods.created", "pods.scheduled")
    assert drill.offset("pods.scheduled") >= drill.offset("lease.taken_over") - 1.0


@pytest.mark.etcd
@pytest.mark.apiserver
def test_stop_etcd_leader_api_recovers(
    drill: Drill, kube: KubeProbes, etcd: EtcdClient, namespace: str
) -> None:
    """Stop the etcd leader: /readyz through the load balancer is OK and API writes are
    acknowledged again within `api_recovery`."""
    drill.steady_state(
        "etcd and the API are healthy", lambda: etcd_checks.all_healthy(etcd) and api_healthy(kube)
    )
    with drill.fault(StopComponent("etcd", Selector.leader())):
        drill.wait_for(
            "api.writes_accepted",
            lambda: kube.ready() and kube.write_configmap(namespace, f"w-{time.time_ns()}"),
            budget="api_recovery",
        )
    drill.within_budget("api_recovery", "fault.injecting", "api.writes_accepted")
    with drill.verify():
        drill.wait_for("etcd.healthy", lambda: etcd_checks.all_healthy(etcd), budget="recovery")
        drill.within_budget("recovery", "fault.healed", "etcd.healthy")
        drill.verify_etcd_data()


@pytest.mark.node
def test_drain_worker(drill: Drill, kube: KubeProbes, namespace: str) -> None:
    """Drain a worker (cordon + evictions): its pods run elsewhere within `recovery`; heal
    uncordons it."""
    drill.steady_state("every Node is Ready", kube.nodes_ready)
    kube.create_deployment(namespace, "web", replicas=4)
    pods = drill.wait_for(
        "deployment.ready", lambda: at_least(kube, namespace, "app=web", 4), timeout=60
    )
    victim = drill.choose(
        "the node running most web pods",
        lambda: max(
            {p.spec.node_name for p in pods},
            key=lambda n: sum(p.spec.node_name == n for p in pods),
        ),
    )
    with drill.fault(Drain(victim)):
        drill.wait_for(
            "pods.moved", lambda: moved_off(kube, namespace, victim, 4), budget="recovery"
        )
        assert not kube.schedulable(victim), f"{victim} should be cordoned while drained"
    drill.within_budget("recovery", "fault.injecting", "pods.moved")
    with drill.verify():
        drill.wait_for("node.uncordoned", lambda: kube.schedulable(victim), timeout=30)


@pytest.mark.node
@pytest.mark.partition
def test_isolate_control_plane_node(drill: Drill, kube: KubeProbes, etcd: EtcdClient) -> None:
    """Cut the third control-plane node off with iptables (the seed's test 3): the API through
    the load balancer stays available, etcd keeps quorum, leases held there move away; after
    heal it rejoins."""
    victim = drill.cluster.nth("control-plane", 2)
    drill.steady_state(
        "etcd and the API are healthy", lambda: etcd_checks.all_healthy(etcd) and api_healthy(kube)
    )
    drill.api_reader()
    held = {
        name: (kube.lease(name) or _none).node
        for name in ("kube-controller-manager", "kube-scheduler")
    }
    drill.observe("leases_on_victim", ",".join(n for n, h in held.items() if h == victim) or "none")
    with drill.fault(Isolate(Selector.named(victim), component="kube-apiserver")):
        drill.wait_for(
            "lb.backend_down",
            lambda: kube.backend_is(victim, "DOWN"),
            budget="detect",
            record=lb_state(victim, "DOWN"),
        )
        drill.wait_for(
            "etcd.quorum", lambda: quorum_without(etcd, victim), budget="leader_election"
        )
        drill.wait_for(
            "leases.off_victim",
            lambda: all((kube.lease(n) or _none).node not in (None, victim) for n in held),
            budget="lease_takeover",
        )
    drill.within_budget("detect", "fault.injecting", "lb.backend_down")
    drill.within_budget("lease_takeover", "fault.injecting", "leases.off_victim")
    with drill.verify():
        drill.wait_for(
            "victim.rejoined",
            lambda: kube.backend_is(victim, "UP") and etcd_checks.all_healthy(etcd),
            budget="recovery",
        )
        drill.within_budget("recovery", "fault.healed", "victim.rejoined")
        drill.assert_api_available()


class _NoLease:
    node: str | None = None


_none = _NoLease()


def scheduled(kube: KubeProbes, namespace: str, selector: str, count: int) -> bool:
    pods = kube.pods(namespace, selector)
    return len(pods) >= count and all(p.spec.node_name for p in pods)


def moved_off(kube: KubeProbes, namespace: str, node: str, count: int) -> bool:
    running = kube.running_pods(namespace, "app=web")
    return len(running) >= count and all(p.spec.node_name != node for p in running)


def quorum_without(etcd: EtcdClient, victim: str) -> bool:
    view = etcd.leader_view()
    return view.leader is not None and view.leader != victim


def at_least(kube: KubeProbes, namespace: str, selector: str, count: int) -> list[Any] | None:
    running = kube.running_pods(namespace, selector)
    return running if len(running) >= count else None
