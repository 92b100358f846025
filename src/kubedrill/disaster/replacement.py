"""Member replacement (issue #13): a member's disk is lost while it is down, and the runbook
of etcd's "replacing a failed member" brings it back: `member remove` the old identity,
`member add` it again (same name, same peer URL), start it on an empty data dir with
`--initial-cluster-state=existing` and the cluster's current `--initial-cluster`, and wait
until it is a voting member that has caught up. Each step is timed.

The wrong way round -- the wiped member started again as if nothing happened -- is
`kubedrill.disaster.wrong_way`.

The fault (`LoseMemberDisk`) kills the member, holds it down and renames its data dir aside:
nothing is deleted. Its undo record replays `kubedrill etcd replace-member`
(`kubedrill.disaster.member_repair`), which finds which state a crash left the runbook in
(`repair_route`) and finishes the job.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from kubedrill.disaster.membership import (
    Member,
    MembershipError,
    add_member,
    by_peer_url,
    initial_cluster,
    list_members,
    remove_member,
)
from kubedrill.disaster.quota import RunbookStep, timed_step
from kubedrill.faults.base import FaultPlan
from kubedrill.faults.shape import Selector
from kubedrill.faults.victims import resolve_victims
from kubedrill.probes.etcd import EtcdClient
from kubedrill.targets.lab.member_disk import HERE, MemberDisk
from kubedrill.transport.step import Step

if TYPE_CHECKING:
    from kubedrill.cluster import Cluster, Node

COMPONENT = "etcd"
# The repair may replace the member from scratch after a gentle attempt failed: two waits for
# a member to catch up, and the membership calls around them.
REPAIR_TIMEOUT_S = 240.0


@runtime_checkable
class MemberDisks(Protocol):
    """A target whose etcd members' data dirs kubedrill can move aside and whose members it can
    start with other flags (the lab). Others carry no member replacement drill."""

    def member_disk(self, node: Node) -> MemberDisk: ...


def unavailable(cluster: Cluster) -> str | None:
    """Why this target cannot carry the member replacement drills (skipped), or None."""
    if not isinstance(cluster.control, MemberDisks):
        return (
            f"{cluster.name}: kubedrill cannot move an etcd member's data dir aside and start "
            "the member with other flags there; member replacement drills run on the lab"
        )
    if len(cluster.etcd.endpoints) < 3:
        return f"{cluster.name} has {len(cluster.etcd.endpoints)} etcd member(s); 3 or more needed"
    return None


def member_disk(cluster: Cluster, name: str) -> MemberDisk:
    """The data dir and starts of etcd member `name` (on a target that has them)."""
    reason = unavailable(cluster)
    if reason is not None or not isinstance(cluster.control, MemberDisks):
        raise MembershipError(reason or "no member disks here")
    return cluster.control.member_disk(cluster.node(name))


def repair_step(disk: MemberDisk, old_id: str, aside: str) -> Step:
    """The undo: finish (or undo) the replacement from whatever state it was left in
    (`kubedrill etcd replace-member`, with the interpreter that wrote the record)."""
    argv = (sys.executable, "-m", "kubedrill", "etcd", "replace-member")
    options = (f"--state-dir={disk.state_dir}", f"--host={disk.host}", f"--old-id={old_id}")
    return Step(HERE, (*argv, *options, f"--aside={aside}"), timeout=REPAIR_TIMEOUT_S)


@dataclass(frozen=True)
class LoseMemberDisk:
    """The fault: the member crashes and is held down (SIGKILL and the supervisor's hold),
    then its data dir is renamed aside: to etcd, its disk is gone."""

    victims: Selector = field(default_factory=Selector.follower)

    @property
    def name(self) -> str:
        return "lose etcd member disk"

    def available(self, cluster: Cluster) -> str | None:
        return unavailable(cluster)

    def plan(self, cluster: Cluster) -> FaultPlan:
        control = cluster.control
        assert isinstance(control, MemberDisks)
        chosen = resolve_victims(cluster, COMPONENT, self.victims)
        if len(chosen.names) != 1:
            raise MembershipError(f"one member's disk at a time, not {', '.join(chosen.names)}")
        node = cluster.node(chosen.names[0])
        disk = control.member_disk(node)
        etcd = EtcdClient(cluster.etcd, timeout=2.0)
        try:
            old = by_peer_url(list_members(etcd, etcd.nodes), disk.peer_url)
        finally:
            etcd.close()
        if old is None:
            raise MembershipError(f"no etcd member has {node.name}'s peer URL {disk.peer_url}")
        aside = disk.aside(uuid.uuid4().hex[:8])
        role = "leader " if chosen.leader == node.name else ""
        return FaultPlan(
            name=self.name,
            victims=(node.name,),
            description=f"lose the disk of {role}etcd member {node.name} "
            f"(killed, held down, data dir moved aside)",
            inject=disk.wipe_steps(aside),
            undo=(repair_step(disk, old.id, str(aside)),),
            takes_down=frozenset({(node.name, COMPONENT)}),
            claims=frozenset({f"{COMPONENT} on {node.name}"}),
            data={
                "component": COMPONENT,
                "member_id": old.id,
                "peer_url": disk.peer_url,
                "aside": str(aside),
                "leader_before": chosen.leader or "",
            },
        )


# -- the runbook -------------------------------------------------------------------------------


@dataclass
class Replacement:
    """etcd's runbook for a member whose data is lost, each step timed. `disk` is the member's
    host (started with flags, held, its data dir); the membership calls go through the other
    members."""

    etcd: EtcdClient
    disk: MemberDisk
    clock: Callable[[], float] = time.monotonic
    steps: list[RunbookStep] = field(default_factory=list)
    added: Member | None = None
    members: list[Member] = field(default_factory=list)

    @property
    def others(self) -> list[str]:
        return [n for n in self.etcd.nodes if n != self.disk.host]

    def _timed(self, name: str, action: Callable[[], str]) -> RunbookStep:
        return timed_step(self.steps, self.clock, name, action)

    def entry(self) -> Member | None:
        return by_peer_url(list_members(self.etcd, self.others), self.disk.peer_url)

    def remove(self) -> RunbookStep:
        """`member remove` the member's old identity (any member with its peer URL)."""

        def run() -> str:
            old = self.entry()
            if old is None:
                return "no member has its peer URL: nothing to remove"
            left = remove_member(self.etcd, self.others, old)
            return f"removed member {old.hex_id}; {len(left)} members left"

        return self._timed("remove", run)

    def add(self) -> RunbookStep:
        """`member add` with the same peer URL: a new identity, unstarted until it runs."""

        def run() -> str:
            self.added, self.members = add_member(self.etcd, self.others, self.disk.peer_url)
            return f"added member {self.added.hex_id} ({self.disk.peer_url})"

        return self._timed("add", run)

    def start(self) -> RunbookStep:
        """Start it on an empty data dir, joining the existing cluster: what it finds in its
        data dir after a failed start is moved aside first."""

        def run() -> str:
            if self.added is None:
                raise MembershipError("start before add: the runbook's order is broken")
            cluster = initial_cluster(self.members, self.added, self.disk.host)
            junk = self.disk.set_junk_aside()
            self.disk.start_with(
                {"--initial-cluster-state": "existing", "--initial-cluster": cluster}
            )
            moved = f"; moved {junk.name} aside" if junk is not None else ""
            return f"--initial-cluster-state=existing --initial-cluster={cluster}{moved}"

        return self._timed("start", run)

    def plan(self) -> list[tuple[str, str, Callable[[], RunbookStep]]]:
        """The steps in order, each with what it does (for the timeline and a dry run)."""
        host, url = self.disk.host, self.disk.peer_url
        return [
            ("remove", f"etcdctl member remove <{host}'s old ID>", self.remove),
            ("add", f"etcdctl member add {host} --peer-urls={url}", self.add),
            (
                "start",
                f"start {host} on an empty data dir with --initial-cluster-state=existing "
                "and the current --initial-cluster",
                self.start,
            ),
        ]

    def finish(self) -> str:
        """Once caught up: the lab's command line back as it was (the member's WAL now makes
        etcd ignore --initial-cluster*), and the lost disk thrown away."""
        self.disk.clear_override()
        gone = self.disk.discard_asides()
        return f"override cleared; discarded {', '.join(p.name for p in gone) or 'nothing'}"


# -- the repair (the fault's undo) -------------------------------------------------------------


def repair_route(
    entry: Member | None, old_id: str, aside_exists: bool, has_wal: bool, raft_since: bool
) -> str:
    """Which way the repair goes, from what a crash may have left. `has_wal`: the member's data
    dir holds a WAL; `raft_since`: a start since the wipe began a raft log (a WAL in the data dir
    or in what a failed start left, moved aside as junk).

    - "add": the old identity removed, no new one added: add, start, wait;
    - "put back": the old identity still a member, its data aside, and nothing ran raft since
      the wipe: the member was never replaced, so its own data goes back and it starts as it
      was (a start with its old flags is refused before raft begins);
    - "replace": the old identity still a member but its data gone, or something ran raft under
      it with an empty log since (the wrong way round with `existing`), which may have promised
      a vote its old data does not know of: the whole runbook, a new identity;
    - "restart": the old identity and its own data in place (the wipe never happened);
    - "start": a new identity added, never started: start it joining the cluster;
    - "wait": a new identity started: let it catch up.
    Every route that does not end caught up falls back to "replace"."""
    if entry is None:
        return "add"
    if entry.id == old_id:
        if aside_exists:
            return "replace" if raft_since else "put back"
        return "restart" if has_wal else "replace"
    return "wait" if entry.started else "start"
