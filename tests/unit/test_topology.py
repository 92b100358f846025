from __future__ import annotations

from kubedrill.targets.lab.config import LabConfig
from kubedrill.targets.lab.topology import hosts


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
