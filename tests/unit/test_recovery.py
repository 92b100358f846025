"""Disaster recovery's pure parts: what a restore lost (RPO) and kept, the API objects' split
at the snapshot, and the fault's plan (victims, undo) on a lab-shaped cluster."""

from __future__ import annotations

from pathlib import Path

from kubedrill.cluster import Cluster, ClusterFacts, EtcdAccess
from kubedrill.disaster.recovery import (
    LoseEtcdMajority,
    acked_after,
    api_objects_verdict,
    loss_verdict,
    unavailable,
    writes_lost_by_restore,
)
from kubedrill.targets.lab.control import LOCAL, LabControl
from kubedrill.workload.history import Operation


def put(key: str, value: str, rev: int, outcome: str = "ok", at: float = 1.0) -> Operation:
    return Operation("etcd-kv", "put", key, value, at - 0.1, at, outcome, rev)


HISTORY = [
    put("/p/kv/1", "1", 10),
    put("/p/kv/2", "2", 11),
    put("/p/kv/3", "3", 12, at=2.0),
    put("/p/kv/4", "4", 13, at=2.5),
    put("/p/kv/5", "5", 0, outcome="unknown"),  # timed out: no revision, cannot be placed
    Operation("etcd-cas-1", "cas", "/p/reg", "b", 0.9, 1.0, "ok", 14, expected="a", applied=False),
]


def test_writes_after_the_snapshot_are_the_loss_in_revision_order() -> None:
    restored = {"/p/kv/1": ("1", 10), "/p/kv/2": ("2", 11)}
    loss = writes_lost_by_restore(HISTORY, restored, 11)
    assert [(w.key, w.revision) for w in loss.lost] == [("/p/kv/3", 12), ("/p/kv/4", 13)]
    assert loss.kept_after == ()
    assert loss.window_s == 0.5
    assert acked_after(HISTORY, 11) == 2  # the failed compare-and-set changed nothing
    found = loss_verdict("rpo", loss)
    assert (
        found.status == "valid" and "2 writes acknowledged after revision 11 lost" in found.detail
    )


def test_a_write_after_the_snapshot_that_survived_is_invalid() -> None:
    restored = {"/p/kv/1": ("1", 10), "/p/kv/2": ("2", 11), "/p/kv/3": ("3", 12)}
    loss = writes_lost_by_restore(HISTORY, restored, 11)
    assert loss.kept_after == ("/p/kv/3@12",)
    assert loss_verdict("rpo", loss).status == "invalid"


def test_nothing_after_the_snapshot_means_nothing_lost() -> None:
    loss = writes_lost_by_restore(HISTORY, {}, 100)
    assert loss.lost == () and loss_verdict("rpo", loss).status == "valid"


def created(name: str, rev: int, value: str = "v") -> Operation:
    return Operation("api-create", "put", name, value, 0.0, 0.1, "ok", rev)


def test_api_objects_split_at_the_snapshot() -> None:
    ops = [created("a", 5), created("b", 6), created("c", 9), created("d", 10)]
    found, lost = api_objects_verdict("api", ops, {"a": "v", "b": "v"}, 8)
    assert found.status == "valid" and lost == ["c", "d"]


def test_api_object_from_before_the_snapshot_missing_is_invalid() -> None:
    ops = [created("a", 5), created("b", 6), created("c", 9)]
    found, _ = api_objects_verdict("api", ops, {"a": "v"}, 8)
    assert found.status == "invalid" and "'b'" in found.detail


def test_api_object_after_the_snapshot_still_served_is_invalid() -> None:
    found, _ = api_objects_verdict(
        "api", [created("a", 5), created("c", 9)], {"a": "v", "c": "v"}, 8
    )
    assert found.status == "invalid" and "still served" in found.detail


def lab_cluster(state_dir: Path, members: int = 3) -> Cluster:
    endpoints = {f"etcd-{i}": f"https://10.0.0.{i}:2379" for i in range(1, members + 1)}
    return Cluster(
        name="lab/t",
        target="lab",
        nodes=(),
        etcd=EtcdAccess(endpoints, None),
        control=LabControl(state_dir),
        observer=LOCAL,
        facts=ClusterFacts("lab", "etcd", members, extra={"etcdutl": "/bin/etcdutl"}),
    )


def test_the_leader_is_lost_first_then_enough_for_a_majority(tmp_path: Path) -> None:
    fault = LoseEtcdMajority("r1", tmp_path / "snap.db", leader="etcd-3")
    assert fault.victims(lab_cluster(tmp_path)) == ("etcd-3", "etcd-1")
    assert fault.victims(lab_cluster(tmp_path, 5)) == ("etcd-3", "etcd-1", "etcd-2")


def test_the_plan_loses_quorum_and_its_undo_restores(tmp_path: Path) -> None:
    cluster = lab_cluster(tmp_path)
    plan = LoseEtcdMajority("r1", tmp_path / "snap.db", leader="etcd-2").plan(cluster)
    assert plan.takes_down == {("etcd-2", "etcd"), ("etcd-1", "etcd")}
    assert plan.claims == {"etcd on etcd-2", "etcd on etcd-1"}
    moves = [s.argv[-1] for s in plan.inject if s.argv[0] == "sh"]
    assert all(str(tmp_path / "dr" / "r1" / "lost") in m for m in moves)
    (undo,) = plan.undo
    assert undo.argv[1:5] == ("-m", "kubedrill", "etcd", "restore-lab")
    assert f"--snapshot={tmp_path / 'snap.db'}" in undo.argv


def test_only_the_lab_carries_it(tmp_path: Path) -> None:
    assert unavailable(lab_cluster(tmp_path)) is None
    other = lab_cluster(tmp_path)
    other.control = object()  # type: ignore[assignment]
    assert "lab" in (unavailable(other) or "")
