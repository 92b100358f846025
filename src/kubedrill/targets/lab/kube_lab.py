"""Bring the lab's Kubernetes control plane to a usable state: API ready through HAProxy, the
control-plane hosts and kwok workers registered as Nodes, controller leases held."""

from __future__ import annotations

from collections.abc import Callable

from kubernetes import client as k8s
from kubernetes.client.rest import ApiException

from kubedrill.cluster import Cluster
from kubedrill.errors import TargetError
from kubedrill.polling import poll_until
from kubedrill.probes.kube import ReadyzProbe, api_client, lease_holder
from kubedrill.targets.lab.config import LabConfig

Progress = Callable[[str], None]
KWOK_ANNOTATION = {"kwok.x-k8s.io/node": "fake"}
CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"


def node_manifest(name: str, control_plane: bool) -> k8s.V1Node:
    labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "type": "kwok",
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
    probe = ReadyzProbe(access, timeout=2.0)
    try:
        progress("waiting for kube-apiserver /readyz through the load balancer")
        _, ready = poll_until(probe.ready, bool, timeout=240, interval=1.0)
    finally:
        probe.close()
    if not ready:
        raise TargetError(
            "kube-apiserver did not become ready through HAProxy within 240 s",
            "see `kubedrill lab logs control-1 --component kube-apiserver`",
        )
    with api_client(access) as api:
        core = k8s.CoreV1Api(api)
        names = [(n.name, True) for n in cluster.with_role("control-plane")]
        names += [(f"worker-{i}", False) for i in range(1, config.kubernetes.workers + 1)]
        for name, control in names:
            try:
                core.create_node(node_manifest(name, control))
            except ApiException as exc:
                if exc.status != 409:  # already registered (idempotent up)
                    raise
        progress(f"registered {len(names)} Nodes; waiting for kwok to mark them Ready")

        def not_ready() -> list[str]:
            nodes = core.list_node(_request_timeout=5).items
            return [
                n.metadata.name
                for n in nodes
                if not any(
                    c.type == "Ready" and c.status == "True" for c in (n.status.conditions or [])
                )
            ]

        pending, ok = poll_until(not_ready, lambda left: not left, timeout=120, interval=1.0)
        if not ok:
            raise TargetError(
                f"Nodes not Ready: {', '.join(pending)}",
                "see `kubedrill lab logs workers --component kwok`",
            )
        for lease in ("kube-controller-manager", "kube-scheduler"):
            holder = wait_for_lease(api, lease)
            progress(f"{lease} leader: {holder}")


def wait_for_lease(api: k8s.ApiClient, lease: str) -> str:
    def holder() -> str | None:
        return lease_holder(api, lease)[0]

    found, held = poll_until(holder, lambda h: h is not None, timeout=120, interval=1.0)
    if not held or found is None:
        raise TargetError(
            f"no {lease} leader after 120 s",
            f"see `kubedrill lab logs control-1 --component {lease}`",
        )
    return found
