"""The load balancer's own record of a backend state change: HAProxy logs
"Server <backend>/<server> is DOWN" (or UP) with an ISO 8601 header (`log stdout format iso`,
the lab's HAProxy config)."""

from __future__ import annotations

import re

from kubedrill.cluster import Cluster
from kubedrill.server_record.clock import ClockOffsets
from kubedrill.server_record.record import ServerRecord, parse_time

STATE_CHANGE = re.compile(r"^(\S+) Server ([^/\s]+)/(\S+) is (UP|DOWN)\b")


def state_changes(text: str) -> list[tuple[float, str, str]]:
    """(time, server, state) of each state-change line with a timestamp."""
    found = []
    for line in text.splitlines():
        match = STATE_CHANGE.match(line)
        if match is None:
            continue
        wall = parse_time(match.group(1))
        if wall is not None:
            found.append((wall, match.group(3), match.group(4)))
    return found


def backend_state_change(
    cluster: Cluster, server: str, state: str, since_wall: float, clocks: ClockOffsets
) -> ServerRecord | None:
    """The first time a load balancer logged `server` going `state` at or after `since_wall`."""
    for node in cluster.with_role("lb"):
        offset = clocks.offset(node)
        text = cluster.control.logs(node, "haproxy", since_wall=since_wall - offset.seconds - 5)
        for logged, name, seen in state_changes(text):
            wall = logged - offset.seconds
            if name == server and seen == state and wall >= since_wall:
                return ServerRecord(
                    wall, f"HAProxy log on {node.name}: {name} is {state}", offset.uncertainty
                )
    return None
