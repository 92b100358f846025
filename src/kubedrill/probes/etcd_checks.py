"""Questions drills ask etcd, as small functions that return a value or None/False."""

from __future__ import annotations

from collections.abc import Sequence

from kubedrill.probes.etcd import EtcdClient, EtcdError, LeaderView


def all_healthy(etcd: EtcdClient) -> bool:
    """Every member answers and a quorum agrees on one leader."""
    view = etcd.leader_view(complete=True)
    return view.leader is not None and view.reachable == len(etcd.nodes)


def new_leader(
    etcd: EtcdClient,
    before: LeaderView,
    exclude: Sequence[str] = (),
    *,
    not_the_old_one: bool = False,
) -> LeaderView | None:
    """A quorum agrees on a leader elected in a later term than `before`, and it is none of
    `exclude` (the fault's victims: a cut-off old leader may still claim to lead) nor, with
    `not_the_old_one`, `before`'s leader (for a probe started before the victims are known)."""
    view = etcd.leader_view()
    excluded = {*exclude, *([before.leader] if not_the_old_one and before.leader else [])}
    if view.leader is not None and view.term > before.term and view.leader not in excluded:
        return view
    return None


def same_leader(etcd: EtcdClient, before: LeaderView) -> str | None:
    """None while nothing says the leader changed; otherwise a complaint saying what changed.

    A member that does not answer in time says nothing (a slow probe on a busy machine is not
    a leader change); any answer with a later term or another leader is a change."""
    view = etcd.leader_view()
    for status in view.statuses.values():
        if status is None:
            continue
        if status.raft_term != before.term or (view.leader and view.leader != before.leader):
            return (
                f"leader changed: {before.leader} (term {before.term}) -> {view.leader} "
                f"(term {max(view.term, status.raft_term)}, seen by {status.node})"
            )
    return None


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
    view = etcd.leader_view(complete=True)
    status = view.statuses.get(node)
    if status is None or view.leader is None:
        return False
    leader_status = view.statuses.get(view.leader)
    if leader_status is None or status.leader_id != leader_status.member_id:
        return False
    return status.revision >= min_revision


def hashkv_disagreement(etcd: EtcdClient) -> str | None:
    """None when every member reports the same HashKV (and compact revision) at the lowest
    revision all of them have applied; otherwise what differs. Members that do not answer make
    the check inconclusive, which is reported too."""
    statuses = etcd.statuses()
    if any(s is None for s in statuses.values()):
        return "not every member answered"
    revision = min(s.revision for s in statuses.values() if s is not None)
    try:
        hashes = {node: etcd.hashkv(node, revision) for node in statuses}
    except EtcdError as exc:
        return f"hashkv failed: {exc}"
    if len(set(hashes.values())) == 1:
        return None
    return f"members disagree at revision {revision}: " + ", ".join(
        f"{n}=hash {h} (compacted at {c})" for n, (h, c) in sorted(hashes.items())
    )
