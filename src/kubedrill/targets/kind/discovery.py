"""Find a kind cluster's node containers by the labels kind puts on them.

kind labels every node container `io.x-k8s.kind.cluster=<cluster>` and
`io.x-k8s.kind.role=control-plane|worker|external-load-balancer` and names them
`<cluster>-control-plane`, `<cluster>-control-plane2`, ..., `<cluster>-worker`,
`<cluster>-external-load-balancer`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import docker

from kubedrill.errors import ConfigError, TargetError
from kubedrill.transport.container import engine_address

CLUSTER_LABEL = "io.x-k8s.kind.cluster"
ROLE_LABEL = "io.x-k8s.kind.role"
# kind's node roles -> kubedrill's roles. kind runs etcd stacked on every control-plane node.
KIND_ROLES: Mapping[str, frozenset[str]] = {
    "control-plane": frozenset({"control-plane", "etcd"}),
    "worker": frozenset({"worker"}),
    "external-load-balancer": frozenset({"lb"}),
}
CLUSTER_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


@dataclass(frozen=True)
class NodeContainer:
    name: str  # container name == node (host) name
    kind_role: str
    status: str  # running, paused, exited, ...
    address: str  # IPv4 on the cluster's network ("" when stopped)
    published_api: str  # "host:port" the engine publishes 6443 on ("" when none)

    @property
    def roles(self) -> frozenset[str]:
        return KIND_ROLES[self.kind_role]


def check_cluster_name(name: str) -> None:
    if not CLUSTER_NAME.match(name) or len(name) > 50:
        raise ConfigError(
            f"invalid kind cluster name {name!r}",
            "kind cluster names are lower-case letters, digits, '-' and '.' (e.g. kind, drills)",
        )


def node_containers(
    client: docker.DockerClient, cluster: str, docker_host: str | None = None
) -> list[NodeContainer]:
    """Every node container of `cluster`, sorted by name; TargetError when there is none."""
    check_cluster_name(cluster)
    found = client.containers.list(all=True, filters={"label": f"{CLUSTER_LABEL}={cluster}"})
    nodes = [_describe(c.name, c.labels, c.status, c.attrs) for c in found]
    if not nodes:
        raise TargetError(
            f"no kind cluster {cluster!r} on the engine at {engine_address(docker_host)}: no "
            f"container is labelled {CLUSTER_LABEL}={cluster}",
            "create it (kubedrill kind up --name ...), or check --kind-name and DOCKER_HOST",
        )
    return sorted(nodes, key=lambda n: n.name)


def _describe(
    name: str, labels: Mapping[str, str], status: str, attrs: Mapping[str, object]
) -> NodeContainer:
    role = labels.get(ROLE_LABEL, "")
    if role not in KIND_ROLES:
        raise TargetError(
            f"container {name} has {ROLE_LABEL}={role!r}, a role kubedrill does not know",
            f"known kind roles: {', '.join(KIND_ROLES)}",
        )
    return NodeContainer(name, role, status, _address(attrs), _published_api(attrs))


def _address(attrs: Mapping[str, object]) -> str:
    settings = attrs.get("NetworkSettings")
    networks = settings.get("Networks") if isinstance(settings, dict) else None
    if not isinstance(networks, dict):
        return ""
    for net in sorted(networks):  # kind puts nodes on one network ("kind")
        address = networks[net].get("IPAddress") if isinstance(networks[net], dict) else None
        if address:
            return str(address)
    return ""


def _published_api(attrs: Mapping[str, object]) -> str:
    settings = attrs.get("NetworkSettings")
    ports = settings.get("Ports") if isinstance(settings, dict) else None
    bindings = ports.get("6443/tcp") if isinstance(ports, dict) else None
    if not bindings:
        return ""
    first = bindings[0]
    host = first.get("HostIp") or "127.0.0.1"
    return f"{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{first.get('HostPort')}"
