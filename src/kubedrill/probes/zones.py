"""What the API says about Nodes and pods by zone: readiness, the node lifecycle's taints,
where a workload's pods are and which of them are being evicted.

One list call each (Nodes; the workload's pods), read as plain JSON and turned into small
frozen views; the predicates the zone and edge drills poll are pure functions of those views.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kubedrill.cluster import Cluster
from kubedrill.probes.kube import KubeProbes, read_json

ZONE_LABEL = "topology.kubernetes.io/zone"
UNREACHABLE = "node.kubernetes.io/unreachable"
NOT_READY = "node.kubernetes.io/not-ready"
# A poll through the load balancer during a zone outage: a request routed to a dead backend
# must not hold the poll (the next one goes elsewhere).
TIMEOUT_S = 2.0


@dataclass(frozen=True)
class NodeView:
    name: str
    zone: str | None
    ready: str  # the Ready condition's status: "True", "False" or "Unknown"
    taints: frozenset[tuple[str, str]]  # (key, effect)

    def tainted(self, key: str, effect: str = "NoExecute") -> bool:
        return (key, effect) in self.taints


@dataclass(frozen=True)
class PodView:
    name: str
    uid: str
    node: str | None
    phase: str
    ready: bool
    deleting: bool
    unreachable_toleration_s: int | None  # how long it stays on an unreachable Node


def node_view(item: Mapping[str, Any]) -> NodeView:
    meta = item.get("metadata") or {}
    status = item.get("status") or {}
    ready = next(
        (
            c.get("status", "Unknown")
            for c in status.get("conditions") or []
            if c.get("type") == "Ready"
        ),
        "Unknown",
    )
    taints = frozenset(
        (t.get("key", ""), t.get("effect", ""))
        for t in (item.get("spec") or {}).get("taints") or []
    )
    return NodeView(meta.get("name", ""), (meta.get("labels") or {}).get(ZONE_LABEL), ready, taints)


def pod_view(item: Mapping[str, Any]) -> PodView:
    meta = item.get("metadata") or {}
    spec = item.get("spec") or {}
    status = item.get("status") or {}
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
    toleration = next(
        (
            t.get("tolerationSeconds")
            for t in spec.get("tolerations") or []
            if t.get("key") == UNREACHABLE
        ),
        None,
    )
    return PodView(
        meta.get("name", ""),
        meta.get("uid", ""),
        spec.get("nodeName"),
        status.get("phase", ""),
        ready,
        meta.get("deletionTimestamp") is not None,
        None if toleration is None else int(toleration),
    )


def none_ready(nodes: Mapping[str, NodeView], names: Iterable[str]) -> bool:
    """Every one of `names` is NotReady or Unknown (the node lifecycle gave up on it)."""
    return all(nodes[n].ready != "True" for n in names if n in nodes)


def all_ready(nodes: Mapping[str, NodeView]) -> bool:
    return bool(nodes) and all(n.ready == "True" for n in nodes.values())


def all_tainted(nodes: Mapping[str, NodeView], names: Iterable[str], key: str) -> bool:
    return all(nodes[n].tainted(key) for n in names if n in nodes)


def untainted(nodes: Mapping[str, NodeView], key: str) -> bool:
    return not any(n.tainted(key) or n.tainted(key, "NoSchedule") for n in nodes.values())


def per_zone(pods: Iterable[PodView], nodes: Mapping[str, NodeView]) -> dict[str, int]:
    """Live (not terminating) pods by the zone of their Node."""
    counts = Counter(
        nodes[p.node].zone or "-" for p in pods if not p.deleting and p.node and p.node in nodes
    )
    return dict(sorted(counts.items()))


def moved_out(
    pods: Iterable[PodView], nodes: Mapping[str, NodeView], lost: set[str], replicas: int
) -> bool:
    """`replicas` pods run, Running and not terminating, none on a Node of the lost zone."""
    live = [p for p in pods if not p.deleting and p.phase == "Running" and p.node]
    return len(live) >= replicas and not any(p.node in lost for p in live)


class ZoneProbes:
    """Nodes and a workload's pods as the API serves them now; None when the API did not
    answer (a poll then asks again)."""

    def __init__(self, kube: KubeProbes) -> None:
        self.core = kube.core

    def nodes(self) -> dict[str, NodeView] | None:
        try:
            items = read_json(self.core.list_node, timeout=TIMEOUT_S).get("items") or []
        except Exception:
            return None
        views = [node_view(i) for i in items]
        return {v.name: v for v in views}

    def pods(self, namespace: str, selector: str) -> list[PodView] | None:
        listing = functools.partial(self.core.list_namespaced_pod, label_selector=selector)
        try:
            items = read_json(listing, namespace, timeout=TIMEOUT_S).get("items") or []
        except Exception:
            return None
        return [pod_view(i) for i in items]


_GO_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
# kube-controller-manager's default --node-monitor-grace-period (Kubernetes 1.32 and later).
DEFAULT_GRACE_S = 50.0


def go_duration(text: str) -> float | None:
    """Seconds of a Go duration ('10s', '1m0s', '500ms'); None when it is not one."""
    parts = _GO_DURATION.findall(text)
    if not parts or "".join(v + u for v, u in parts) != text:
        return None
    return sum(float(v) * _UNIT[u] for v, u in parts)


def flag_value(argv: Iterable[str], flag: str) -> str | None:
    """`--flag=value` or `--flag value` in a command line; the last one wins, as in pflag."""
    found = None
    args = list(argv)
    for i, arg in enumerate(args):
        if arg.startswith(f"{flag}="):
            found = arg.split("=", 1)[1]
        elif arg == flag and i + 1 < len(args):
            found = args[i + 1]
    return found


def node_monitor_grace_s(cluster: Cluster) -> float:
    """The grace period the controller-managers run with (their command lines), else the
    default: how long a silent Node stays Ready."""
    for node in cluster.with_role("control-plane"):
        line = cluster.control.command_line(node, "kube-controller-manager")
        value = flag_value(line.argv, "--node-monitor-grace-period") if line else None
        seconds = go_duration(value) if value else None
        if seconds is not None:
            return seconds
    return DEFAULT_GRACE_S
