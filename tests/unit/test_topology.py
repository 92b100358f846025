from __future__ import annotations

import pytest

from kubedrill.errors import ConfigError
from kubedrill.targets.lab.config import KubernetesSettings, LabConfig
from kubedrill.targets.lab.topology import (
    EDGE_HOST,
    EDGE_ZONE,
    SITE_LABEL,
    ZONE_LABEL,
    hosts,
    kube_nodes,
)


def test_etcd_topology_is_members_only() -> None:
    layout = hosts(LabConfig(topology="etcd", members=5))
    assert [h.name for h in layout] == [f"etcd-{i}" for i in range(1, 6)]
    assert all(h.components == ("etcd",) for h in layout)


def test_stacked_puts_the_control_plane_next_to_etcd() -> None:
    layout = {h.name: h for h in hosts(LabConfig(topology="stacked"))}
    assert list(layout) == ["control-1", "control-2", "control-3", "lb", "workers"]
    assert layout["control-2"].roles == {"etcd", "control-plane"}
    assert layout["control-2"].components == (
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
    )
    assert layout["lb"].components == ("haproxy",)
    assert layout["workers"].components == ("kwok",)


def test_external_gives_etcd_hosts_of_its_own() -> None:
    layout = {h.name: h for h in hosts(LabConfig(topology="external", members=5))}
    assert [n for n, h in layout.items() if "etcd" in h.roles] == [f"etcd-{i}" for i in range(1, 6)]
    assert all("etcd" not in layout[f"control-{i}"].components for i in (1, 2, 3))
    assert layout["control-1"].roles == {"control-plane"}


def test_default_lab_has_no_zones_and_one_worker_host() -> None:
    layout = hosts(LabConfig(topology="stacked"))
    assert all(h.zone is None for h in layout)
    assert {n.site for n in kube_nodes(LabConfig())} == {"workers"}
    assert all(ZONE_LABEL not in n.labels for n in kube_nodes(LabConfig()))


def test_zones_put_control_planes_one_per_zone_and_a_worker_host_in_each() -> None:
    config = LabConfig(topology="stacked", zones=3)
    layout = {h.name: h for h in hosts(config)}
    assert [layout[f"control-{i}"].zone for i in (1, 2, 3)] == ["zone-a", "zone-b", "zone-c"]
    assert layout["lb"].zone is None  # one LB is shared by the zones
    workers = [h for h in layout.values() if "worker" in h.roles]
    assert [(h.name, h.zone) for h in workers] == [
        ("workers-a", "zone-a"),
        ("workers-b", "zone-b"),
        ("workers-c", "zone-c"),
    ]


def test_nodes_are_managed_by_the_kwok_of_their_zone() -> None:
    config = LabConfig(
        topology="stacked", zones=3, kubernetes=KubernetesSettings(workers=6, edge_workers=2)
    )
    nodes = {n.name: n for n in kube_nodes(config)}
    assert nodes["control-2"].labels == {ZONE_LABEL: "zone-b", SITE_LABEL: "workers-b"}
    assert nodes["control-2"].control_plane
    assert [nodes[f"worker-{i}"].zone for i in range(1, 7)] == ["zone-a", "zone-b", "zone-c"] * 2
    assert nodes["worker-4"].site == "workers-a"
    assert nodes["edge-2"].labels == {ZONE_LABEL: EDGE_ZONE, SITE_LABEL: EDGE_HOST}
    assert {h.name for h in hosts(config) if h.zone == EDGE_ZONE} == {EDGE_HOST}


def test_external_etcd_hosts_are_spread_over_the_zones_too() -> None:
    layout = {h.name: h for h in hosts(LabConfig(topology="external", members=5, zones=3))}
    assert [layout[f"etcd-{i}"].zone for i in range(1, 6)] == [
        "zone-a", "zone-b", "zone-c", "zone-a", "zone-b"
    ]  # fmt: skip


@pytest.mark.parametrize("zones", [-1, 4, 6])
def test_zone_counts_beyond_the_control_planes_are_refused(zones: int) -> None:
    with pytest.raises(ConfigError, match=r"lab\.zones"):
        LabConfig(topology="stacked", zones=zones).validate()


def test_a_kwok_lease_too_long_for_the_grace_period_is_refused() -> None:
    k = KubernetesSettings(node_monitor_grace_period_s=10, kwok_node_lease_s=40)
    with pytest.raises(ConfigError, match="kwok_node_lease_s"):
        LabConfig(kubernetes=k).validate()


def test_a_regions_lab_with_zones_puts_each_zones_workers_in_its_region() -> None:
    regional = {
        h.name: (h.zone, h.region)
        for h in hosts(LabConfig(topology="regions", zones=3, name="r").validate())
    }
    assert regional["control-1"] == ("zone-a", "r1")
    assert regional["workers-a"] == ("zone-a", "r1")
    assert regional["workers-c"] == ("zone-c", "r3")
    assert regional["lb"] == (None, None)  # the clients' way in, outside the WAN


def test_a_regions_lab_without_zones_keeps_its_workers_outside_the_regions() -> None:
    regional = {h.name: h.region for h in hosts(LabConfig(topology="regions", name="r").validate())}
    assert regional == {"control-1": "r1", "control-2": "r2", "control-3": "r3", "lb": None,
                        "workers": None}  # fmt: skip
