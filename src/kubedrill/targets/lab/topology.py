"""Which hosts a lab has and what runs on each: pure functions of the lab config."""

from __future__ import annotations

from dataclasses import dataclass

from kubedrill.targets.lab.config import LabConfig

KUBE_COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")


@dataclass(frozen=True)
class HostRole:
    name: str
    roles: frozenset[str]
    components: tuple[str, ...]
    # An LB host of a keepalived pair: its VRRP priority (the higher one takes the VIP first).
    vrrp_priority: int | None = None


def lb_hosts(config: LabConfig) -> list[HostRole]:
    """One LB host `lb` running the proxy, or a pair `lb-1`, `lb-2` each running the proxy and
    keepalived (lb-1 with the higher priority takes the VIP first)."""
    lb = config.lb
    if not lb.pair:
        return [HostRole("lb", frozenset({"lb"}), (lb.kind,))]
    return [
        HostRole(f"lb-{i}", frozenset({"lb"}), (lb.kind, "keepalived"), vrrp_priority=priority)
        for i, priority in ((1, 150), (2, 100))
    ]


def hosts(config: LabConfig) -> list[HostRole]:
    """etcd: etcd-1..N. stacked: control-1..3 carry etcd and the control plane, lb (or lb-1,
    lb-2) runs the load balancer, workers runs kwok. external: etcd-1..N for etcd,
    control-1..3 for the rest."""
    if config.topology == "etcd":
        return [
            HostRole(f"etcd-{i}", frozenset({"etcd"}), ("etcd",))
            for i in range(1, config.members + 1)
        ]
    planes = config.kubernetes.control_planes
    if config.topology == "stacked":
        layout = [
            HostRole(
                f"control-{i}", frozenset({"etcd", "control-plane"}), ("etcd", *KUBE_COMPONENTS)
            )
            for i in range(1, planes + 1)
        ]
    else:
        layout = [
            HostRole(f"etcd-{i}", frozenset({"etcd"}), ("etcd",))
            for i in range(1, config.members + 1)
        ]
        layout += [
            HostRole(f"control-{i}", frozenset({"control-plane"}), KUBE_COMPONENTS)
            for i in range(1, planes + 1)
        ]
    return [
        *layout,
        *lb_hosts(config),
        HostRole("workers", frozenset({"worker"}), ("kwok",)),
    ]


def has_kubernetes(config: LabConfig) -> bool:
    return config.topology != "etcd"
