"""etcd's membership through the JSON gateway (`etcdctl member list/remove/add`), and the
question the member replacement runbook ends on: is the member a voting member, caught up?

The gateway is the same path on every target and needs no etcdctl nor certificates placed
anywhere; member IDs are uint64s, which etcd's JSON writes as decimal strings.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kubedrill.errors import KubedrillError
from kubedrill.polling import poll_until
from kubedrill.probes.etcd import STATUS_PATH, EtcdClient, EtcdError


class MembershipError(KubedrillError):
    """A membership change failed, or the membership is not what the runbook expects."""


@dataclass(frozen=True)
class Member:
    id: str  # decimal, as the gateway writes it
    name: str
    peer_urls: tuple[str, ...] = ()
    client_urls: tuple[str, ...] = ()
    is_learner: bool = False

    @property
    def started(self) -> bool:
        """An added member has no name (nor client URLs) until it has started and published
        itself to the cluster."""
        return bool(self.name)

    @property
    def hex_id(self) -> str:
        """The ID as etcd's logs and etcdctl print it."""
        return f"{int(self.id):x}"


def parse_member(raw: Mapping[str, Any]) -> Member:
    return Member(
        id=str(raw.get("ID", "")),
        name=str(raw.get("name", "")),
        peer_urls=tuple(raw.get("peerURLs") or ()),
        client_urls=tuple(raw.get("clientURLs") or ()),
        is_learner=bool(raw.get("isLearner", False)),
    )


def parse_members(data: Mapping[str, Any]) -> list[Member]:
    """A member/list (or member/add, member/remove) answer's `members`."""
    return [parse_member(m) for m in data.get("members") or ()]


def by_peer_url(members: Iterable[Member], peer_url: str) -> Member | None:
    """The member with this peer URL: the one identity a replaced member keeps (its ID changes
    and an added member has no name until it starts)."""
    return next((m for m in members if peer_url in m.peer_urls), None)


def initial_cluster(members: Sequence[Member], new: Member, name: str) -> str:
    """The `--initial-cluster` a member added as `new` must start with: every member's
    name=peerURL, `name` for the new one (as `etcdctl member add` prints it). Another member
    that has not started has no name yet, and no flag could name it: refused."""
    parts = []
    for member in members:
        member_name = name if member.id == new.id else member.name
        if not member_name:
            raise MembershipError(
                f"member {member.hex_id} ({', '.join(member.peer_urls)}) was added but never "
                "started: the new member's --initial-cluster cannot name it",
                "start or remove that member first (etcdctl member list)",
            )
        parts += [f"{member_name}={url}" for url in member.peer_urls]
    return ",".join(parts)


def _first(etcd: EtcdClient, via: Sequence[str], path: str, body: Mapping[str, Any]) -> Any:
    errors = []
    for node in via:
        try:
            return etcd.call(node, path, body, timeout=5.0)
        except EtcdError as exc:
            errors.append(str(exc))
    raise MembershipError(
        f"{path} failed through {', '.join(via) or 'no member'}: {'; '.join(errors)}",
        "a quorum of the other members must answer (kubedrill lab status)",
    )


def list_members(etcd: EtcdClient, via: Sequence[str]) -> list[Member]:
    return parse_members(_first(etcd, via, "/v3/cluster/member/list", {"linearizable": True}))


def remove_member(etcd: EtcdClient, via: Sequence[str], member: Member) -> list[Member]:
    """`etcdctl member remove`; the members left."""
    return parse_members(_first(etcd, via, "/v3/cluster/member/remove", {"ID": member.id}))


# etcd refuses a voting member unless every voting member has been connected to the one asked
# for its last 5 s (`--strict-reconfig-check`, on by default: "etcdserver: unhealthy cluster");
# right after the remove, or after a peer connection was re-made, it is asked again.
UNHEALTHY = "unhealthy cluster"
ADD_RETRY_S = 15.0


def add_member(
    etcd: EtcdClient, via: Sequence[str], peer_url: str, *, retry_s: float = ADD_RETRY_S
) -> tuple[Member, list[Member]]:
    """`etcdctl member add` (a voting member): the new member and every member now. Asked
    again while etcd answers that the cluster is not healthy enough for a new voting member."""

    def attempt() -> dict[str, Any] | MembershipError:
        try:
            data: dict[str, Any] = _first(
                etcd, via, "/v3/cluster/member/add", {"peerURLs": [peer_url]}
            )
        except MembershipError as exc:
            return exc
        return data

    found, added = poll_until(
        attempt,
        lambda r: not isinstance(r, MembershipError) or UNHEALTHY not in r.message,
        timeout=retry_s,
        interval=0.25,
    )
    if isinstance(found, MembershipError):
        # An add whose answer was lost (a timeout, then asked again) finds its own member.
        members = list_members(etcd, via) if "exists" in found.message else []
        earlier = by_peer_url(members, peer_url)
        if earlier is not None and not earlier.started:
            return earlier, members
        if not added:  # still unhealthy: say for how long it was asked
            found.message += f" (asked for {retry_s:g} s)"
        raise found
    return parse_member(found["member"]), parse_members(found)


# -- caught up ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaughtUp:
    """A replaced member as the runbook's last step finds it."""

    node: str
    member_id: str
    applied_index: int
    leader_index: int

    def __str__(self) -> str:
        return (
            f"{self.node} (member {int(self.member_id):x}) votes and has applied index "
            f"{self.applied_index} >= the leader's commit index {self.leader_index}"
        )


def catch_up_gap(
    members: Sequence[Member],
    node: str,
    peer_url: str,
    expected: int,
    leader: Mapping[str, Any],
    status: Mapping[str, Any],
) -> str | None:
    """What still keeps `node` from being a voting, caught-up member (None: nothing).

    `leader` is the leader's status read *before* `status`, the node's: having applied the
    leader's committed index of a moment earlier means the node has everything that was
    committed when the question was asked."""
    entry = by_peer_url(members, peer_url)
    if entry is None:
        return f"no member has peer URL {peer_url}"
    if not entry.started:
        return f"member {entry.hex_id} has not started (published) yet"
    if entry.is_learner:
        return f"member {entry.hex_id} is a learner, not a voting member"
    if len(members) != expected:
        return f"{len(members)} members, {expected} expected"
    unstarted = [m.hex_id for m in members if not m.started]
    if unstarted:
        return f"member(s) {', '.join(unstarted)} not started"
    node_id = str(status.get("header", {}).get("member_id", ""))
    if node_id != entry.id:
        return f"{node} answers as member {node_id}, the membership says {entry.id}"
    leader_id = str(leader.get("header", {}).get("member_id", ""))
    if str(status.get("leader", "")) != leader_id:
        return f"{node} does not follow the leader {leader_id}"
    applied = int(status.get("raftAppliedIndex", 0))
    committed = int(leader.get("raftIndex", 0))
    if applied < committed:
        return f"{node} applied index {applied} < the leader's commit index {committed}"
    return None


def caught_up(etcd: EtcdClient, node: str, peer_url: str, expected: int) -> CaughtUp | None:
    """`node` is a voting member that has applied all the leader had committed a moment ago,
    with `expected` members in all, every one started; None while not (or not answering)."""
    return caught_up_or_gap(etcd, node, peer_url, expected)[0]


def caught_up_or_gap(
    etcd: EtcdClient, node: str, peer_url: str, expected: int
) -> tuple[CaughtUp | None, str]:
    try:
        view = etcd.leader_view()
        if view.leader is None:
            return None, "no leader agreed by a quorum"
        leader = etcd.call(view.leader, STATUS_PATH, {})
        status = etcd.call(node, STATUS_PATH, {})
        members = list_members(etcd, [view.leader])
    except (EtcdError, MembershipError) as exc:
        return None, str(exc)
    gap = catch_up_gap(members, node, peer_url, expected, leader, status)
    if gap is not None:
        return None, gap
    return CaughtUp(
        node,
        str(status["header"]["member_id"]),
        int(status.get("raftAppliedIndex", 0)),
        int(leader.get("raftIndex", 0)),
    ), ""
