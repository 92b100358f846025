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


def hosts(config: LabConfig) -> list[HostRole]:
    """etcd: etcd-1..N. stacked: control-1..3 carry etcd and the control plane, lb runs
    HAProxy, workers runs kwok. external: etcd-1..N for etcd, control-1..3 for the rest."""
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
        HostRole("lb", frozenset({"lb"}), ("haproxy",)),
        HostRole("workers", frozenset({"worker"}), ("kwok",)),
    ]


def has_kubernetes(config: LabConfig) -> bool:
    return config.topology != "etcd"
