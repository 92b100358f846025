"""Kubernetes probes: readiness through the load balancer, Lease holders, HAProxy's view."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
from kubernetes import client as k8s

from kubedrill.cluster import KubeAccess

# What drills' Deployments run. kwok (the lab) runs no container, so any name does; on a node
# with a container runtime it must be an image the node already has (kind preloads pause).
DEFAULT_WORKLOAD_IMAGE = "registry.invalid/kubedrill/pause:1"
# Polled probes through the load balancer (readiness, Leases): a hung apiserver behind it holds
# a poll for at most this long, and the next poll is routed to another backend. A slow answer
# only means "not yet": the poll asks again.
POLL_TIMEOUT_S = 0.5


def api_client(access: KubeAccess) -> k8s.ApiClient:
    """The official client, set up from the access's own files. Not `load_kube_config`: for a
    kubeconfig with embedded certificates it writes the client key to an anonymous temp file
    that only an orderly exit removes, so a SIGKILLed run would leave keys in /tmp."""
    configuration = k8s.Configuration()
    configuration.host = access.server
    configuration.ssl_ca_cert = str(access.ca)
    configuration.cert_file = str(access.cert)
    configuration.key_file = str(access.key)
    configuration.retries = 0  # probes measure; they must not hide failures behind retries
    return k8s.ApiClient(configuration)


class ReadyzProbe:
    """GET /readyz, through the load balancer or on one apiserver, with a short timeout."""

    def __init__(self, access: KubeAccess, timeout: float = POLL_TIMEOUT_S) -> None:
        self.access = access
        self.timeout = timeout
        self.session = requests.Session()
        self.session.trust_env = False  # never through a proxy; the lab's CA only
        self.session.verify = str(access.ca)
        self.session.cert = (str(access.cert), str(access.key))

    def ready(self, server: str | None = None) -> bool:
        try:
            resp = self.session.get(f"{server or self.access.server}/readyz", timeout=self.timeout)
        except requests.RequestException:
            return False
        return resp.status_code == 200

    def close(self) -> None:
        self.session.close()


def read_json(call: Callable[..., Any], *args: Any, timeout: float) -> Any:
    """An API call's answer as plain JSON. With `_preload_content=False` the client skips
    turning it into model objects, which costs a poller more CPU than the request itself
    (a 6-Node list: ~10 ms of CPU deserialised, ~1 ms as JSON). Raises like the call does
    (an error status is an ApiException either way).

    The timeout goes as a (connect, read) pair: the client turns only an *int* into a total
    timeout and silently drops a float, so `0.5` alone meant no timeout at all and one poll
    could hang on a dead backend's connection until the load balancer cut it (60 s)."""
    response = call(*args, _request_timeout=(timeout, timeout), _preload_content=False)
    return json.loads(response.data)


@dataclass(frozen=True)
class LeaseState:
    identity: str  # '<hostname>_<uuid>': a restarted process gets a new one
    transitions: int

    @property
    def node(self) -> str | None:
        return self.identity.split("_", 1)[0] or None


def lease_state(
    api: k8s.ApiClient, name: str, namespace: str = "kube-system", *, timeout: float = 2.0
) -> LeaseState | None:
    """The Lease as the API serves it now, or None when it cannot be read (polls pass
    POLL_TIMEOUT_S; a one-off question, like who leads before a fault, waits longer)."""
    try:
        lease = read_json(
            k8s.CoordinationV1Api(api).read_namespaced_lease, name, namespace, timeout=timeout
        )
        spec = lease.get("spec") or {}
        return LeaseState(
            str(spec.get("holderIdentity") or ""), int(spec.get("leaseTransitions") or 0)
        )
    except Exception:
        return None


def lease_holder(
    api: k8s.ApiClient, name: str, namespace: str = "kube-system"
) -> tuple[str | None, int]:
    """(node holding the Lease, leaseTransitions); (None, -1) when unknown."""
    state = lease_state(api, name, namespace)
    return (None, -1) if state is None else (state.node, state.transitions)


class KubeProbes:
    """What control-plane drills ask: readiness, HAProxy's view, leases, workloads.

    With `instead_of_writing` (a dry run) every write is handed to it as a description and
    not made; reads still go to the cluster."""

    def __init__(
        self,
        access: KubeAccess,
        workload_image: str = DEFAULT_WORKLOAD_IMAGE,
        instead_of_writing: Callable[[str], None] | None = None,
    ) -> None:
        self.access = access
        self.workload_image = workload_image
        self.instead_of_writing = instead_of_writing
        self.api = api_client(access)
        self.readyz = ReadyzProbe(access)
        self.core = k8s.CoreV1Api(self.api)
        self.apps = k8s.AppsV1Api(self.api)

    def close(self) -> None:
        self.readyz.close()
        self.api.close()

    def ready(self) -> bool:
        return self.readyz.ready()

    def backends(self) -> dict[str, str]:
        """The load balancer's view: node -> 'UP' | 'DOWN'; {} when it cannot be asked."""
        if self.access.lb is None:
            return {}
        try:
            return self.access.lb.states()
        except (OSError, requests.RequestException):
            return {}

    def backend_is(self, server: str, state: str) -> bool:
        return self.backends().get(server, "") == state

    def all_backends_up(self) -> bool:
        states = self.backends()
        return bool(states) and all(s == "UP" for s in states.values())

    def lease(self, name: str) -> LeaseState | None:
        return lease_state(self.api, name, timeout=POLL_TIMEOUT_S)

    def lease_moved(self, name: str, before: LeaseState) -> LeaseState | None:
        """The Lease has a new holder (a new identity) and its transitions went up."""
        now = self.lease(name)
        if (
            now
            and now.identity
            and now.identity != before.identity
            and (now.transitions > before.transitions)
        ):
            return now
        return None

    def nodes_ready(self) -> bool:
        try:
            nodes = read_json(self.core.list_node, timeout=3).get("items") or []
            return bool(nodes) and all(
                any(
                    c.get("type") == "Ready" and c.get("status") == "True"
                    for c in (n.get("status") or {}).get("conditions") or []
                )
                for n in nodes
            )
        except Exception:
            return False

    def running_pods(self, namespace: str, selector: str) -> list[Any]:
        try:
            pods = self.core.list_namespaced_pod(
                namespace, label_selector=selector, _request_timeout=3
            ).items
        except Exception:
            return []
        return [
            p for p in pods if p.status.phase == "Running" and p.metadata.deletion_timestamp is None
        ]

    # -- workloads the drills create ------------------------------------------------------------

    def create_deployment(
        self,
        namespace: str,
        name: str,
        replicas: int,
        *,
        spread_over: str | None = None,
        node_selector: dict[str, str] | None = None,
    ) -> None:
        """`spread_over` a Node label (a zone): a topology spread constraint, max skew 1, that
        must hold (DoNotSchedule) over the Nodes a pod could go to: tainted Nodes are left out
        (nodeTaintsPolicy Honor), so a lost zone, tainted unreachable, does not hold the
        survivors' replacements back (with the default, Ignore, its empty domain would)."""
        if self.instead_of_writing is not None:
            where = f", spread over {spread_over}" if spread_over else ""
            where += f", on Nodes {node_selector}" if node_selector else ""
            self.instead_of_writing(
                f"create Deployment {namespace}/{name}, {replicas} replicas{where}"
            )
            return
        labels = {"app": name}
        container = k8s.V1Container(name=name, image=self.workload_image)
        spread = (
            [
                k8s.V1TopologySpreadConstraint(
                    max_skew=1,
                    topology_key=spread_over,
                    when_unsatisfiable="DoNotSchedule",
                    label_selector=k8s.V1LabelSelector(match_labels=labels),
                    node_taints_policy="Honor",
                )
            ]
            if spread_over
            else None
        )
        body = k8s.V1Deployment(
            metadata=k8s.V1ObjectMeta(name=name, labels=labels),
            spec=k8s.V1DeploymentSpec(
                replicas=replicas,
                selector=k8s.V1LabelSelector(match_labels=labels),
                template=k8s.V1PodTemplateSpec(
                    metadata=k8s.V1ObjectMeta(labels=labels),
                    spec=k8s.V1PodSpec(
                        containers=[container],
                        topology_spread_constraints=spread,
                        node_selector=node_selector,
                    ),
                ),
            ),
        )
        self.apps.create_namespaced_deployment(namespace, body, _request_timeout=10)

    def scale(self, namespace: str, name: str, replicas: int) -> None:
        if self.instead_of_writing is not None:
            self.instead_of_writing(f"scale Deployment {namespace}/{name} to {replicas}")
            return
        self.apps.patch_namespaced_deployment_scale(
            name, namespace, {"spec": {"replicas": replicas}}, _request_timeout=10
        )

    def write_configmap(self, namespace: str, name: str) -> bool:
        """A write through the load balancer; True when the API acknowledged it."""
        if self.instead_of_writing is not None:
            self.instead_of_writing(f"create ConfigMap {namespace}/{name}")
            return True
        body = k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name=name), data={"k": name})
        try:
            self.core.create_namespaced_config_map(namespace, body, _request_timeout=3)
        except Exception:
            return False
        return True

    def pods(self, namespace: str, selector: str) -> list[Any]:
        try:
            items: list[Any] = self.core.list_namespaced_pod(
                namespace, label_selector=selector, _request_timeout=3
            ).items
        except Exception:
            return []
        return items

    def schedulable(self, node: str) -> bool:
        try:
            spec = read_json(self.core.read_node, node, timeout=3).get("spec") or {}
            return not spec.get("unschedulable")
        except Exception:
            return False
