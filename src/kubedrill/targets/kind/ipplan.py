"""Which fixed IPv4 address each kind node gets on kubedrill's podman network.

podman 4.3 hands a container a new address on every stop/start. One kind node survives that, but
an HA control plane does not: the other members keep the old peer URL and certificate SANs after
a node is stopped and started, which is exactly what a drill does. So kubedrill pins every node's
address by its container name: the load balancer .10, control-plane nodes .11 to .19, workers
from .21. Names follow kind's own node namer (`<cluster>-control-plane`,
`<cluster>-control-plane2`, ..., `<cluster>-worker`, ..., `<cluster>-external-load-balancer`),
so the plan is known before kind runs.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from kubedrill.errors import ConfigError

DEFAULT_SUBNET = "10.213.40.0/24"
LB_OFFSET = 10
CONTROL_PLANE_OFFSET = 11
MAX_CONTROL_PLANES = 9  # .11 .. .19
WORKER_OFFSET = 21
MAX_WORKERS = 99  # .21 .. .119
LB_ROLE = "external-load-balancer"


@dataclass(frozen=True)
class PlannedNode:
    name: str  # container name == node name
    role: str  # control-plane, worker or external-load-balancer
    ip: str


@dataclass(frozen=True)
class IPPlan:
    subnet: str  # normalized, e.g. 10.213.40.0/24
    gateway: str  # .1, the host's address on the network
    nodes: tuple[PlannedNode, ...]

    def ip_of(self, name: str) -> str | None:
        return next((n.ip for n in self.nodes if n.name == name), None)


def parse_subnet(text: str) -> ipaddress.IPv4Network:
    """A private IPv4 network of /16 to /24, written with its host bits clear."""
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        raise ConfigError(
            f"invalid subnet {text!r}: {exc}",
            f"give a private IPv4 network in CIDR form, e.g. --subnet {DEFAULT_SUBNET}",
        ) from exc
    if not isinstance(net, ipaddress.IPv4Network):
        raise ConfigError(
            f"subnet {text} is IPv6; kubedrill pins IPv4 node addresses",
            f"give a private IPv4 network, e.g. --subnet {DEFAULT_SUBNET}",
        )
    if not 16 <= net.prefixlen <= 24:
        raise ConfigError(
            f"subnet {text} is a /{net.prefixlen}; use a /16 to /24",
            f"e.g. --subnet {DEFAULT_SUBNET}",
        )
    if not net.is_private or net.is_loopback or net.is_link_local or net.is_multicast:
        raise ConfigError(
            f"subnet {text} is not a private network (10/8, 172.16/12, 192.168/16)",
            f"e.g. --subnet {DEFAULT_SUBNET}",
        )
    return net


def node_names(cluster: str, roles: Sequence[str]) -> list[tuple[str, str]]:
    """(name, role) of every container kind makes, as kind's namer names them; the load
    balancer exists when there is more than one control-plane node."""
    counts: dict[str, int] = {}
    out: list[tuple[str, str]] = []

    def name(role: str) -> str:
        counts[role] = counts.get(role, 0) + 1
        suffix = "" if counts[role] == 1 else str(counts[role])
        return f"{cluster}-{role}{suffix}"

    for role in roles:
        out.append((name(role), role))
    if list(roles).count("control-plane") > 1:
        out.append((name(LB_ROLE), LB_ROLE))
    return out


def plan(cluster: str, roles: Sequence[str], subnet: str) -> IPPlan:
    """The address of every node of `cluster` on `subnet`; ConfigError when they do not fit."""
    net = parse_subnet(subnet)
    control_planes = list(roles).count("control-plane")
    workers = list(roles).count("worker")
    if control_planes > MAX_CONTROL_PLANES:
        raise ConfigError(
            f"{control_planes} control-plane nodes; kubedrill pins at most {MAX_CONTROL_PLANES}"
        )
    if workers > MAX_WORKERS:
        raise ConfigError(f"{workers} workers; kubedrill pins at most {MAX_WORKERS}")
    seen = {"control-plane": 0, "worker": 0}
    nodes: list[PlannedNode] = []
    for name, role in node_names(cluster, roles):
        if role == LB_ROLE:
            offset = LB_OFFSET
        elif role == "control-plane":
            offset = CONTROL_PLANE_OFFSET + seen[role]
        else:
            offset = WORKER_OFFSET + seen[role]
        if role in seen:
            seen[role] += 1
        nodes.append(PlannedNode(name, role, str(net.network_address + offset)))
    return IPPlan(str(net), str(net.network_address + 1), tuple(nodes))
