"""When a restarted component is ready again, as the maintenance's next step needs it.

kube-apiserver: its own /readyz answers 200 and the load balancer routes to it again (UP).
kube-controller-manager / kube-scheduler: its /healthz answers 200 and its Lease is held
(renewed since the component was stopped, by whoever leads: the restarted one may be a
follower, and a stopped leader's last renewal does not count).
etcd: the member answers, names a leader, and has applied up to the leader's commit index.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import requests
from kubernetes import client as k8s

from kubedrill.cluster import Node
from kubedrill.drill import Drill
from kubedrill.probes.etcd import EtcdError
from kubedrill.probes.kube import POLL_TIMEOUT_S, read_json
from kubedrill.probes.metrics import CONTROLLER_MANAGER_PORT, SCHEDULER_PORT

HEALTH_PORTS = {
    "kube-controller-manager": CONTROLLER_MANAGER_PORT,
    "kube-scheduler": SCHEDULER_PORT,
}
# A member within this many raft entries of the leader has caught up (the workload keeps
# writing while it is compared).
CAUGHT_UP_ENTRIES = 50


def probe(drill: Drill, node: Node, component: str, since_wall: float) -> Callable[[], bool]:
    """Ready again; `since_wall` is when it was stopped (wall clock, as Lease times are)."""
    if component == "kube-apiserver":
        return lambda: apiserver_ready(drill, node)
    if component in HEALTH_PORTS:
        since = dt.datetime.fromtimestamp(since_wall, dt.UTC)
        return lambda: healthy(drill, node, component) and lease_held(drill, component, since)
    if component == "etcd":
        return lambda: member_caught_up(drill, node)
    return lambda: drill.cluster.control.is_running(node, component)


def up_before_stop(drill: Drill, node: Node, component: str) -> Callable[[], bool]:
    """Running (and, for the controller-manager and scheduler, healthy) right now: what a
    rolling restart waits for before it stops a component. Restarting the apiserver next to
    them can make them exit (a leader that cannot renew its Lease exits) and the supervisor
    brings them back after its back-off, as kubelet does a static pod's container."""
    if component in HEALTH_PORTS:
        return lambda: healthy(drill, node, component)
    return lambda: drill.cluster.control.is_running(node, component)


def apiserver_ready(drill: Drill, node: Node) -> bool:
    server = f"https://{node.address}:6443"
    return drill.kube.readyz.ready(server) and drill.kube.backend_is(node.name, "UP")


def healthy(drill: Drill, node: Node, component: str) -> bool:
    kube = drill.cluster.kube
    if kube is None or not drill.cluster.control.is_running(node, component):
        return False
    verify: str | bool = str(kube.component_ca) if kube.component_ca else False
    try:
        resp = requests.get(
            f"https://{node.address}:{HEALTH_PORTS[component]}/healthz",
            verify=verify,
            timeout=POLL_TIMEOUT_S,
        )
    except requests.RequestException:
        return False
    return resp.status_code == 200


def lease_held(drill: Drill, name: str, since: dt.datetime) -> bool:
    """Someone holds the Lease and renewed it after `since`."""
    try:
        lease = read_json(
            k8s.CoordinationV1Api(drill.kube.api).read_namespaced_lease,
            name,
            "kube-system",
            timeout=POLL_TIMEOUT_S,
        )
    except Exception:
        return False
    return renewed_since(lease.get("spec") or {}, since)


def renewed_since(spec: dict[str, object], since: dt.datetime) -> bool:
    """The Lease spec names a holder that renewed it at or after `since`."""
    renew = spec.get("renewTime")
    if not spec.get("holderIdentity") or not isinstance(renew, str):
        return False
    return dt.datetime.fromisoformat(renew.replace("Z", "+00:00")) >= since


def member_caught_up(drill: Drill, node: Node) -> bool:
    etcd = drill.etcd
    try:
        mine = etcd.status(node.name)
    except EtcdError:
        return False
    view = etcd.leader_view()
    leader = view.statuses.get(view.leader) if view.leader else None
    if leader is None or mine.leader_id in ("", "0"):
        return False
    return mine.raft_index >= leader.raft_index - CAUGHT_UP_ENTRIES
