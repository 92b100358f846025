"""Which hosts a lab has, what runs on each and in which fault domain: pure functions of the
lab config.

Fault domains follow the seed's plan (section 1.3: rack, power, switch and zone per control-plane
host): with `lab.zones: N` the control-plane hosts (and external etcd hosts) go one per zone,
round robin, and each zone gets a worker host of its own running the kwok that plays kubelet
for that zone's Nodes, its workers and its control-plane Nodes: a zone's outage then takes its
hosts, its processes and its Nodes' heartbeats together. An edge site (`lab.kubernetes.
edge_workers`) is a worker host of its own in zone `edge`, with no control plane. The single
load balancer stays outside the zones (like a cloud LB spanning them); a pair of LBs carries a
zone each.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, replace

from kubedrill.targets.lab.config import LabConfig

KUBE_COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
ZONE_LABEL = "topology.kubernetes.io/zone"
# Which kwok manages a Node: the worker host (site) it belongs to.
SITE_LABEL = "kubedrill.io/site"
EDGE_ZONE = "edge"
EDGE_HOST = "edge"


@dataclass(frozen=True)
class HostRole:
    name: str
    roles: frozenset[str]
    components: tuple[str, ...]
    zone: str | None = None  # its fault domain; None: the lab has no zones (or a shared host)
    region: str | None = None  # the regions topology's region (WAN between regions)

    # An LB host of a keepalived pair: its VRRP priority (the higher one takes the VIP first).
    vrrp_priority: int | None = None


def region_name(index: int) -> str:
    return f"r{index}"


@dataclass(frozen=True)
class KubeNode:
    """A Node the lab registers: its name, whether it is a control-plane Node, its zone and the
    worker host (site) whose kwok keeps it alive."""

    name: str
    control_plane: bool
    zone: str | None
    site: str

    @property
    def labels(self) -> dict[str, str]:
        labels = {SITE_LABEL: self.site}
        if self.zone is not None:
            labels[ZONE_LABEL] = self.zone
        return labels


def zone_names(count: int) -> tuple[str, ...]:
    """zone-a, zone-b, ... (the seed's AZ-A, AZ-B, AZ-C)."""
    return tuple(f"zone-{letter}" for letter in string.ascii_lowercase[:count])


def zone_of(index: int, zones: tuple[str, ...]) -> str | None:
    """The zone of the `index`-th (0-based) host of a tier: round robin over the zones."""
    return zones[index % len(zones)] if zones else None


def worker_host(zone: str | None) -> str:
    """The worker host (kwok) of a zone: `workers` without zones, `workers-a` for zone-a."""
    return "workers" if zone is None else f"workers-{zone.removeprefix('zone-')}"


def lb_hosts(config: LabConfig, zones: tuple[str, ...]) -> list[HostRole]:
    """One LB host `lb` running the proxy (outside the zones, like a cloud LB spanning them), or
    a pair `lb-1`, `lb-2` each running the proxy and keepalived (lb-1 with the higher priority
    takes the VIP first), in the first two zones when the lab has zones."""
    lb = config.lb
    if not lb.pair:
        return [HostRole("lb", frozenset({"lb"}), (lb.kind,))]
    return [
        HostRole(
            f"lb-{i}",
            frozenset({"lb"}),
            (lb.kind, "keepalived"),
            zone_of(i - 1, zones),
            vrrp_priority=priority,
        )
        for i, priority in ((1, 150), (2, 100))
    ]


def hosts(config: LabConfig) -> list[HostRole]:
    """etcd: etcd-1..N. stacked: control-1..3 carry etcd and the control plane, lb (or lb-1,
    lb-2) runs the load balancer, workers runs kwok (one worker host per zone when the lab has
    zones, plus `edge` for an edge site). external: etcd-1..N for etcd, control-1..3 for the
    rest. regions: as stacked, control-N in region rN."""
    zones = zone_names(config.zones)
    if config.topology == "etcd":
        return [
            HostRole(f"etcd-{i}", frozenset({"etcd"}), ("etcd",), zone_of(i - 1, zones))
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
                zone_of(i - 1, zones),
                region=region_name(i) if regional else None,
            )
            for i in range(1, planes + 1)
        ]
    else:
        layout = [
            HostRole(f"etcd-{i}", frozenset({"etcd"}), ("etcd",), zone_of(i - 1, zones))
            for i in range(1, config.members + 1)
        ]
        layout += [
            HostRole(
                f"control-{i}", frozenset({"control-plane"}), KUBE_COMPONENTS, zone_of(i - 1, zones)
            )
            for i in range(1, planes + 1)
        ]
    layout += lb_hosts(config, zones)
    # With zones, a regions lab's zones are its regions: each zone's worker host (and an LB
    # placed in a zone) stands in the region of that zone's control-plane host, so its traffic
    # to the other regions crosses the WAN like theirs does.
    region_of_zone: dict[str | None, str] = {
        h.zone: h.region for h in layout if h.zone and h.region
    }
    layout += [
        HostRole(
            worker_host(zone), frozenset({"worker"}), ("kwok",), zone, region_of_zone.get(zone)
        )
        for zone in (zones or (None,))
    ]
    if region_of_zone:
        layout = [
            replace(h, region=region_of_zone.get(h.zone)) if h.region is None else h for h in layout
        ]
    if config.kubernetes.edge_workers:
        layout.append(HostRole(EDGE_HOST, frozenset({"worker"}), ("kwok",), EDGE_ZONE))
    return layout


def kube_nodes(config: LabConfig) -> list[KubeNode]:
    """Every Node the lab registers: the control-plane hosts (in their zones), worker-1..N
    spread round robin over the zones, edge-1..M at the edge site."""
    zones = zone_names(config.zones)
    controls = [h for h in hosts(config) if "control-plane" in h.roles]
    nodes = [KubeNode(h.name, True, h.zone, worker_host(h.zone)) for h in controls]
    for i in range(1, config.kubernetes.workers + 1):
        zone = zone_of(i - 1, zones)
        nodes.append(KubeNode(f"worker-{i}", False, zone, worker_host(zone)))
    nodes += [
        KubeNode(f"edge-{i}", False, EDGE_ZONE, EDGE_HOST)
        for i in range(1, config.kubernetes.edge_workers + 1)
    ]
    return nodes


def has_kubernetes(config: LabConfig) -> bool:
    return config.topology != "etcd"
