"""Questions drills ask etcd, as small functions that return a value or None/False."""

from __future__ import annotations

from kubedrill.probes.etcd import EtcdClient, EtcdError, LeaderView


def all_healthy(etcd: EtcdClient) -> bool:
    """Every member answers and a quorum agrees on one leader."""
    view = etcd.leader_view()
    return view.leader is not None and view.reachable == len(etcd.nodes)


def new_leader(etcd: EtcdClient, before: LeaderView) -> LeaderView | None:
    """A quorum agrees on a leader elected in a later term than `before`."""
    view = etcd.leader_view()
    if view.leader is not None and view.term > before.term:
        return view
    return None


def same_leader(etcd: EtcdClient, before: LeaderView) -> str | None:
    """None while the leader and term are unchanged; otherwise a complaint saying what changed."""
    view = etcd.leader_view()
    if view.leader == before.leader and view.term == before.term:
        return None
    return (
        f"leader changed: {before.leader} (term {before.term}) -> {view.leader} (term {view.term})"
    )


def accepts_write(etcd: EtcdClient, key: str = "/kubedrill/probe") -> int | None:
    """Revision of a successful put through any member, or None."""
    try:
        return etcd.put(key, "probe", timeout=1.0)
    except EtcdError:
        return None


def stepped_down(etcd: EtcdClient, node: str) -> bool:
    """`node` answers and no longer believes it is the leader."""
    try:
        status = etcd.status(node)
    except EtcdError:
        return False
    return not status.is_leader


def rejoined(etcd: EtcdClient, node: str, min_revision: int = 0) -> bool:
    """`node` answers, follows the quorum's leader, and has applied at least `min_revision`."""
    view = etcd.leader_view()
    status = view.statuses.get(node)
    if status is None or view.leader is None:
        return False
    leader_status = view.statuses.get(view.leader)
    if leader_status is None or status.leader_id != leader_status.member_id:
        return False
    return status.revision >= min_revision
