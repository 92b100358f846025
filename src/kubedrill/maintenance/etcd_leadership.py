"""Move etcd's leadership before its member is stopped, as a careful operator does
(`etcdctl move-leader`): one planned, immediate leader change instead of an election."""

from __future__ import annotations

from kubedrill.probes.etcd import EtcdClient, EtcdError

TRANSFER_PATH = "/v3/maintenance/transfer-leadership"


def move_leader(etcd: EtcdClient, leader: str, to: str) -> None:
    """Ask `leader` to hand its leadership to the member on `to` (raises EtcdError)."""
    target = etcd.status(to).member_id
    etcd.call(leader, TRANSFER_PATH, {"targetID": target}, timeout=5.0)


def successor(etcd: EtcdClient, leader: str) -> str:
    """The follower furthest along (the least to catch up), to take over from `leader`."""
    best, index = "", -1
    for node, status in etcd.statuses().items():
        if node != leader and status is not None and status.raft_index > index:
            best, index = node, status.raft_index
    if not best:
        raise EtcdError(f"no follower of {leader} answered: leadership cannot move")
    return best
