"""What a drill sees of its target: nodes with roles and transports, and how to reach etcd."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from kubedrill.errors import UnknownNodeError
from kubedrill.transport import Transport, TransportSpec, transport_for

if TYPE_CHECKING:
    from kubedrill.probes.lb import LoadBalancerView
    from kubedrill.transport.step import Step


ROLES = ("etcd", "control-plane", "lb", "worker")

# The role a component runs under; finds the nodes that run it on every target.
COMPONENT_ROLE: Mapping[str, str] = {
    "etcd": "etcd",
    "kube-apiserver": "control-plane",
    "kube-controller-manager": "control-plane",
    "kube-scheduler": "control-plane",
    "haproxy": "lb",
    "nginx": "lb",
    "keepalived": "lb",
    "kwok": "worker",
}

DELAY_METHODS = ("netem", "nfqueue", "none")


@dataclass(frozen=True)
class ClusterFacts:
    """What faults, drills and reports need to know about a target, typed.

    `delay_method` is how the latency fault delays packets here: `netem` (tc), `nfqueue`
    (kubedrill's userspace delayer, for kernels without sch_netem) or `none` (the target can
    carry no latency fault; such drills are skipped with the reason). `extra` holds
    target-specific details that only reports read (inventory path, kind cluster, engine).
    """

    target: str
    topology: str
    members: int
    election_timeout_ms: int = 1000
    heartbeat_interval_ms: int = 100
    delay_method: str = "netem"
    workload_image: str = "registry.invalid/kubedrill/pause:1"
    kubectl: str | None = None
    etcd_version: str | None = None
    kubernetes_version: str | None = None
    api_server: str | None = None
    kubeconfig: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.delay_method not in DELAY_METHODS:
            raise ValueError(f"unknown delay method {self.delay_method!r}")

    def to_dict(self) -> dict[str, str]:
        """Flat strings for reports (environment.properties, summary.json)."""
        out = {
            "target": self.target,
            "topology": self.topology,
            "members": str(self.members),
            "election_timeout_ms": str(self.election_timeout_ms),
            "heartbeat_interval_ms": str(self.heartbeat_interval_ms),
            "delay_method": self.delay_method,
        }
        optional = {
            "kubectl": self.kubectl,
            "etcd_version": self.etcd_version,
            "kubernetes_version": self.kubernetes_version,
            "api_server": self.api_server,
            "kubeconfig": self.kubeconfig,
        }
        out |= {k: v for k, v in optional.items() if v}
        return out | dict(self.extra)


def natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key that orders the digit runs of a name by value: node-2 < node-10."""
    parts = re.split(r"(\d+)", name)
    return tuple((1, int(p)) if p.isdigit() else (0, p) for p in parts if p)


@dataclass(frozen=True)
class Node:
    name: str
    roles: frozenset[str]
    address: str
    transport: TransportSpec
    # The host's fault domain (the lab's lab.zones; None where the target has none or does not
    # say): a zone outage takes every node of one zone at once.
    zone: str | None = None
    # The region the node stands in, where the target has regions (the lab's `regions`
    # topology); None elsewhere, and for nodes that stand for the clients (the lab's LB).
    region: str | None = None


@dataclass(frozen=True)
class TLSFiles:
    ca: Path
    cert: Path
    key: Path


@dataclass(frozen=True)
class EtcdAccess:
    """Client URLs by node name, plus the client certificate used by kubedrill's probes."""

    endpoints: Mapping[str, str]
    tls: TLSFiles | None
    peer_port: int = 2380
    client_port: int = 2379
    metrics_urls: Mapping[str, str] = field(default_factory=dict)
    # gofail's HTTP endpoint by node name (http://address:port), where the members are built
    # with failpoints (the lab's lab.etcd.failpoints); empty elsewhere.
    failpoint_urls: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class KubeAccess:
    """The Kubernetes API: kubeconfig and client cert, the load balancer's URL and socket."""

    kubeconfig: Path
    server: str  # through the load balancer
    ca: Path
    cert: Path
    key: Path
    lb: LoadBalancerView | None = None  # the LB's own view of its backends
    # The CA that signed controller-manager's and scheduler's serving certs; None when they
    # sign their own (kubeadm's default), which kubedrill then cannot verify.
    component_ca: Path | None = None


@dataclass(frozen=True)
class CommandLine:
    """A component's command line as the node runs it, and where it was read (a pid's
    /proc/PID/cmdline, a static pod manifest, the lab's components.json): evidence for the
    audit."""

    argv: tuple[str, ...]
    source: str


@dataclass(frozen=True)
class FaultSteps:
    """Commands that inject a fault and the commands that undo it (plain data, replayable)."""

    inject: tuple[Step, ...]
    undo: tuple[Step, ...]


class ComponentControl(Protocol):
    """How a target stops, kills and pauses a component on a node (supervisor, crictl, systemd)."""

    def stop(self, node: Node, component: str) -> FaultSteps: ...

    def kill(self, node: Node, component: str) -> FaultSteps: ...

    def pause(self, node: Node, component: str) -> FaultSteps: ...

    def is_running(self, node: Node, component: str) -> bool: ...

    def components(self, node: Node) -> Sequence[str]: ...

    def logs(self, node: Node, component: str, *, since_wall: float | None = None) -> str: ...

    def command_line(self, node: Node, component: str) -> CommandLine | None:
        """The component's command line on `node` (read only), or None when it cannot be read."""
        ...


@runtime_checkable
class PowerControl(Protocol):
    """A target that can take a host's power away, component by component (the lab's
    supervisor: SIGKILL and held down until the power returns)."""

    def power_off(self, node: Node, component: str) -> FaultSteps: ...


LeaderLocator = Callable[[], str | None]


@dataclass
class Cluster:
    name: str
    target: str  # "lab" | "ssh" | "kind"
    nodes: tuple[Node, ...]
    etcd: EtcdAccess
    control: ComponentControl
    observer: TransportSpec  # where kubedrill itself runs commands that are not on a node
    kube: KubeAccess | None = None
    leader_locators: dict[str, LeaderLocator] = field(default_factory=dict)
    facts: ClusterFacts = field(default_factory=lambda: ClusterFacts("lab", "etcd", 0))

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        known = ", ".join(n.name for n in self.nodes)
        raise UnknownNodeError(f"unknown node {name!r} in {self.name}", f"known nodes: {known}")

    def with_role(self, role: str) -> list[Node]:
        """The nodes with `role`, in their natural order (control-2 before control-10)."""
        if role not in ROLES:
            raise UnknownNodeError(f"unknown role {role!r}", f"known roles: {', '.join(ROLES)}")
        return sorted((n for n in self.nodes if role in n.roles), key=lambda n: natural_key(n.name))

    def nth(self, role: str, index: int) -> str:
        """The name of the `index`-th node (0-based) with `role`: how drills name victims, so
        one drill file runs on the lab (control-1..3), kind (<name>-control-plane, ...2, ...3)
        and SSH (whatever the inventory calls them)."""
        found = self.with_role(role)
        if not 0 <= index < len(found):
            raise UnknownNodeError(
                f"{self.name} has {len(found)} {role} node(s); a drill needs {index + 1}",
                "run this drill on a cluster with more of them",
            )
        return found[index].name

    def zones(self) -> list[str]:
        """The zones the nodes are in, sorted; [] on a target without zones."""
        return sorted({n.zone for n in self.nodes if n.zone is not None})

    def in_zone(self, zone: str) -> list[Node]:
        """Every node of `zone`, in natural order."""
        return sorted((n for n in self.nodes if n.zone == zone), key=lambda n: natural_key(n.name))

    def transport(self, node: str | Node) -> Transport:
        found = node if isinstance(node, Node) else self.node(node)
        return transport_for(found.transport)

    def leader(self, component: str) -> str | None:
        """Name of the node whose `component` currently leads, or None when there is none."""
        locate = self.leader_locators.get(component)
        if locate is None:
            raise UnknownNodeError(
                f"{self.target} target cannot tell the leader of {component!r}",
                f"components with leaders here: {', '.join(sorted(self.leader_locators))}",
            )
        return locate()
