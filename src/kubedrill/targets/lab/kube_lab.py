"""Bring the lab's Kubernetes control plane to a usable state: API ready through HAProxy, the
control-plane hosts and kwok workers registered as Nodes, controller leases held."""

from __future__ import annotations

import functools
from collections.abc import Callable

from kubernetes import client as k8s
from kubernetes.client.rest import ApiException

from kubedrill.cluster import Cluster
from kubedrill.errors import TargetError
from kubedrill.ledger import run_steps
from kubedrill.polling import poll_until
from kubedrill.probes.kube import KubeProbes, lease_holder
from kubedrill.targets.lab.config import LabConfig
from kubedrill.targets.lab.topology import KubeNode, kube_nodes

Progress = Callable[[str], None]
# Each step below is ready within a second or two; a 1 s poll added up to a second to each.
POLL_S = 0.2
KWOK_ANNOTATION = {"kwok.x-k8s.io/node": "fake"}
CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"


def node_manifest(node: KubeNode) -> k8s.V1Node:
    """The Node as kubelet would register it, plus its zone and the site whose kwok runs it."""
    name, control_plane = node.name, node.control_plane
    labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "type": "kwok",
        **node.labels,
    }
    taints = None
    if control_plane:
        labels[CONTROL_PLANE_LABEL] = ""
        taints = [k8s.V1Taint(key=CONTROL_PLANE_LABEL, effect="NoSchedule")]
    return k8s.V1Node(
        metadata=k8s.V1ObjectMeta(name=name, labels=labels, annotations=dict(KWOK_ANNOTATION)),
        spec=k8s.V1NodeSpec(taints=taints),
        status=k8s.V1NodeStatus(
            allocatable={"cpu": "32", "memory": "256Gi", "pods": "110"},
            capacity={"cpu": "32", "memory": "256Gi", "pods": "110"},
        ),
    )


def bootstrap(cluster: Cluster, config: LabConfig, progress: Progress) -> None:
    access = cluster.kube
    assert access is not None
    probes = KubeProbes(access)
    try:
        # nginx has no view of its backends to ask (passive checks): the API answering through
        # it is all there is to wait for.
        viewed = access.lb is not None
        progress(
            "waiting for every kube-apiserver to be ready and UP in HAProxy"
            if viewed
            else "waiting for the API to be ready through the load balancer"
        )
        _, ready = poll_until(
            lambda: probes.ready() and (probes.all_backends_up() or not viewed),
            bool,
            timeout=240,
            interval=POLL_S,
        )
        if not ready:
            raise TargetError(
                f"kube-apiserver not ready behind HAProxy within 240 s ({probes.backends()})",
                "see `kubedrill lab logs control-1 --component kube-apiserver`",
            )
        nodes = kube_nodes(config)
        for node in nodes:
            _, created = poll_until(
                functools.partial(register, probes.core, node),
                bool,
                timeout=60,
                interval=POLL_S,
            )
            if not created:
                raise TargetError(f"could not register Node {node.name}", "see the apiserver logs")
        progress(f"registered {len(nodes)} Nodes; waiting for kwok to mark them Ready")
        _, ok = poll_until(probes.nodes_ready, bool, timeout=120, interval=POLL_S)
        if not ok:
            raise TargetError(
                "Nodes not Ready within 120 s", "see `kubedrill lab logs workers --component kwok`"
            )
        for lease in ("kube-controller-manager", "kube-scheduler"):
            holder = wait_for_lease(probes.api, lease)
            progress(f"{lease} leader: {holder}")
        if config.zones or config.kubernetes.edge_workers:
            restart_node_lifecycle(cluster, probes, progress)
    finally:
        probes.close()


def restart_node_lifecycle(cluster: Cluster, probes: KubeProbes, progress: Progress) -> None:
    """Hand the controller-manager's Lease to another one once every Node is Ready.

    The leader's node lifecycle controller started while the Nodes were being registered, all
    NotReady: it entered "master disruption mode" and, observed here (v1.34.4), never again
    tainted a lost zone's Nodes `unreachable:NoExecute` afterwards (only NoSchedule), so
    nothing was ever evicted from it; a leader that starts with the Nodes Ready does. Zone and
    edge drills depend on that eviction, so a lab with zones or an edge site pays one Lease
    takeover (~15-20 s) at `lab up`."""
    lease = "kube-controller-manager"
    before = probes.lease(lease)
    if before is None or before.node is None:
        raise TargetError(f"cannot read the {lease} Lease", "see the apiserver logs")
    progress(f"restarting the {lease} leader on {before.node} (its node lifecycle controller "
             "started while the Nodes were NotReady)")  # fmt: skip
    failures = run_steps(cluster.control.kill(cluster.node(before.node), lease).inject)
    if failures:
        raise TargetError(
            f"could not restart {lease} on {before.node}: {failures[0]}", "see `kubedrill lab logs`"
        )
    _, moved = poll_until(
        lambda: probes.lease_moved(lease, before), bool, timeout=120, interval=POLL_S
    )
    if not moved:
        raise TargetError(f"no new {lease} leader within 120 s", "see its logs")


def register(core: k8s.CoreV1Api, node: KubeNode) -> bool:
    """Create the Node; True once it exists (a transient API error is retried by the caller)."""
    try:
        core.create_node(node_manifest(node), _request_timeout=5)
    except ApiException as exc:
        return bool(exc.status == 409)  # already registered (idempotent up)
    except Exception:
        return False
    return True


def wait_for_lease(api: k8s.ApiClient, lease: str) -> str:
    def holder() -> str | None:
        return lease_holder(api, lease)[0]

    found, held = poll_until(holder, lambda h: h is not None, timeout=120, interval=POLL_S)
    if not held or found is None:
        raise TargetError(
            f"no {lease} leader after 120 s",
            f"see `kubedrill lab logs control-1 --component {lease}`",
        )
    return found
