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
    region: str | None = None


def region_name(index: int) -> str:
    return f"r{index}"


def hosts(config: LabConfig) -> list[HostRole]:
    """etcd: etcd-1..N. stacked: control-1..3 carry etcd and the control plane, lb runs
    HAProxy, workers runs kwok. external: etcd-1..N for etcd, control-1..3 for the rest.
    regions: as stacked, control-N in region rN."""
    if config.topology == "etcd":
        return [
            HostRole(f"etcd-{i}", frozenset({"etcd"}), ("etcd",))
            for i in range(1, config.members + 1)
        ]
    planes = config.kubernetes.control_planes
    if config.topology in ("stacked", "regions"):
        # regions: control-N stands in region rN (one control plane per region); the load
        # balancer and the kwok workers stand in none (they are the clients, reached from any
        # region without crossing the WAN).
        regional = config.topology == "regions"
        layout = [
            HostRole(
                f"control-{i}",
                frozenset({"etcd", "control-plane"}),
                ("etcd", *KUBE_COMPONENTS),
                region_name(i) if regional else None,
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
