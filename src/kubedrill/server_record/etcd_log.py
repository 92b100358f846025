"""etcd's own record of an election: the winner logs "<id> became leader at term <N>" (raft,
through zap, as one JSON object per line with an RFC 3339 "ts")."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from kubedrill.cluster import Cluster
from kubedrill.server_record.clock import ClockOffsets
from kubedrill.server_record.record import ServerRecord, parse_time

BECAME_LEADER = re.compile(r"\b([0-9a-f]+) became leader at term (\d+)")


@dataclass(frozen=True)
class Election:
    node: str
    member_id: str
    term: int
    wall: float  # on the node's clock


def elections_in(text: str, node: str) -> list[Election]:
    """Every "became leader" line in `text`, whatever wraps the JSON object (journald's
    prefix, a CRI log's timestamp and stream): the object starts at the first '{'."""
    found = []
    for line in text.splitlines():
        start = line.find("{")
        if start < 0 or "became leader" not in line:
            continue
        try:
            entry = json.loads(line[start:])
        except ValueError:
            continue
        match = BECAME_LEADER.search(str(entry.get("msg", "")))
        ts = entry.get("ts")
        wall = parse_time(ts) if isinstance(ts, str) else None
        if isinstance(ts, int | float):
            wall = float(ts)
        if match and wall is not None:
            found.append(Election(node, match.group(1), int(match.group(2)), wall))
    return found


def first_election_after(
    cluster: Cluster, since_wall: float, clocks: ClockOffsets
) -> ServerRecord | None:
    """The earliest election any etcd member logged at or after `since_wall` (runner's
    clock): the cluster's own moment of "a new leader"."""
    best: tuple[float, Election] | None = None
    for node in cluster.with_role("etcd"):
        offset = clocks.offset(node)
        # A few seconds of slack: logs are filtered on the node's clock, at second granularity.
        text = cluster.control.logs(node, "etcd", since_wall=since_wall - offset.seconds - 5)
        for election in elections_in(text, node.name):
            wall = election.wall - offset.seconds
            if wall >= since_wall and (best is None or wall < best[0]):
                best = (wall, election)
    if best is None:
        return None
    wall, election = best
    return ServerRecord(
        wall,
        f"etcd log on {election.node}: {election.member_id} became leader at term {election.term}",
        clocks.offset(cluster.node(election.node)).uncertainty,
    )
