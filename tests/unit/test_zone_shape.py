"""The zone outage's shape and the zone probes' predicates: pure functions, no cluster."""

from __future__ import annotations

import pytest

from kubedrill.errors import FaultError, UnknownNodeError
from kubedrill.faults.shape import edge_zones, pick_zone, zone_grudge, zone_members
from kubedrill.probes.zones import (
    UNREACHABLE,
    NodeView,
    PodView,
    all_tainted,
    flag_value,
    go_duration,
    moved_out,
    node_view,
    none_ready,
    per_zone,
    pod_view,
)

ZONES = {
    "control-1": "zone-a",
    "control-2": "zone-b",
    "control-3": "zone-c",
    "lb": None,
    "workers-a": "zone-a",
    "workers-b": "zone-b",
    "workers-c": "zone-c",
    "edge": "edge",
}
ROLES = {
    **{f"control-{i}": frozenset({"etcd", "control-plane"}) for i in (1, 2, 3)},
    "lb": frozenset({"lb"}),
    **{f"workers-{z}": frozenset({"worker"}) for z in "abc"},
    "edge": frozenset({"worker"}),
}


def test_the_leaders_zone_is_taken_unless_one_is_named() -> None:
    assert pick_zone(ZONES, leader="control-2") == "zone-b"
    assert pick_zone(ZONES, leader="control-2", named="zone-c") == "zone-c"
    with pytest.raises(FaultError):
        pick_zone(ZONES, leader=None)
    with pytest.raises(FaultError, match="in no zone"):
        pick_zone(ZONES, leader="lb")
    with pytest.raises(UnknownNodeError, match="zone-x"):
        pick_zone(ZONES, leader=None, named="zone-x")


def test_a_cut_zone_reaches_itself_and_nothing_else() -> None:
    grudge = zone_grudge(ZONES, "zone-a")
    assert zone_members(ZONES, "zone-a") == ("control-1", "workers-a")
    assert grudge["control-1"] == {"control-2", "control-3", "lb", "workers-b", "workers-c", "edge"}
    assert "workers-a" not in grudge["control-1"]
    assert grudge["lb"] == {"control-1", "workers-a"}  # the shared LB is outside every zone
    assert grudge["control-2"] == {"control-1", "workers-a"}


def test_edge_zones_hold_workers_only() -> None:
    assert edge_zones(ZONES, ROLES) == ["edge"]
    assert (
        edge_zones({"a": "z", "b": "z"}, {"a": frozenset({"worker"}), "b": frozenset({"lb"})}) == []
    )


def node(name: str, zone: str, ready: str = "True", *taints: str) -> NodeView:
    return NodeView(name, zone, ready, frozenset((t, "NoExecute") for t in taints))


def pod(uid: str, on: str, *, deleting: bool = False, phase: str = "Running") -> PodView:
    return PodView(uid, uid, on, phase, True, deleting, 10)


def test_lost_nodes_are_not_ready_and_tainted_only_when_all_are() -> None:
    nodes = {
        "w1": node("w1", "zone-a", "Unknown", UNREACHABLE),
        "w2": node("w2", "zone-a", "True"),
        "w3": node("w3", "zone-b"),
    }
    assert not none_ready(nodes, {"w1", "w2"})
    assert none_ready(nodes, {"w1"})
    assert not all_tainted(nodes, {"w1", "w2"}, UNREACHABLE)
    assert all_tainted(nodes, {"w1"}, UNREACHABLE)


def test_pods_moved_out_only_when_enough_run_outside_the_lost_zone() -> None:
    nodes = {"w1": node("w1", "zone-a"), "w2": node("w2", "zone-b"), "w3": node("w3", "zone-c")}
    pods = [pod("p1", "w1", deleting=True), pod("p2", "w2"), pod("p3", "w3")]
    assert per_zone(pods, nodes) == {"zone-b": 1, "zone-c": 1}
    assert moved_out(pods, nodes, {"w1"}, 2)
    assert not moved_out(pods, nodes, {"w1"}, 3)
    assert not moved_out([*pods, pod("p4", "w1")], nodes, {"w1"}, 3)
    assert not moved_out([*pods, pod("p4", "w2", phase="Pending")], nodes, {"w1"}, 3)


def test_views_read_the_api_json() -> None:
    view = node_view(
        {
            "metadata": {"name": "w1", "labels": {"topology.kubernetes.io/zone": "zone-a"}},
            "spec": {"taints": [{"key": UNREACHABLE, "effect": "NoExecute"}]},
            "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]},
        }
    )
    assert view == NodeView("w1", "zone-a", "Unknown", frozenset({(UNREACHABLE, "NoExecute")}))
    p = pod_view(
        {
            "metadata": {"name": "p", "uid": "u", "deletionTimestamp": "2026-12-02T00:00:00Z"},
            "spec": {
                "nodeName": "w1",
                "tolerations": [
                    {"key": UNREACHABLE, "effect": "NoExecute", "tolerationSeconds": 10}
                ],
            },
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}]},
        }
    )
    assert p == PodView("p", "u", "w1", "Running", False, True, 10)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("10s", 10.0), ("1m0s", 60.0), ("500ms", 0.5), ("1h", 3600.0), ("x", None)],
)
def test_go_durations(text: str, seconds: float | None) -> None:
    assert go_duration(text) == seconds


def test_flag_value_takes_the_last_one() -> None:
    argv = ["kcm", "--node-monitor-grace-period=50s", "--node-monitor-grace-period", "10s"]
    assert flag_value(argv, "--node-monitor-grace-period") == "10s"
    assert flag_value(argv, "--other") is None
