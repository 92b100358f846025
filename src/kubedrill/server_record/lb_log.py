"""The load balancer's own record of a backend state change: HAProxy logs
"Server <backend>/<server> is DOWN" (or UP) with an ISO 8601 header (`log stdout format iso`,
the lab's HAProxy config); kind's load balancer (kubedrill's Envoy-compatible kindlb) logs
"<RFC 3339 ms> health <cluster> <ip:port>: healthy -> /failed_active_hc (...)" to its container's
output, read through the container engine."""

from __future__ import annotations

import re

from kubedrill.cluster import Cluster
from kubedrill.server_record.clock import ClockOffsets
from kubedrill.server_record.record import ServerRecord, parse_time
from kubedrill.transport.container import engine_client

STATE_CHANGE = re.compile(r"^(\S+) Server ([^/\s]+)/(\S+) is (UP|DOWN)\b")
KINDLB_HEALTH = re.compile(r"^(\S+) health \S+ ([\d.]+):\d+: (\S+) -> (\S+)")


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


def kindlb_state_changes(text: str, names: dict[str, str]) -> list[tuple[float, str, str]]:
    """(time, node, UP|DOWN) of each health transition kindlb logged; `names` maps a backend's
    address to its node."""
    found = []
    for line in text.splitlines():
        match = KINDLB_HEALTH.match(line)
        if match is None:
            continue
        wall = parse_time(match.group(1))
        before, after = match.group(3), match.group(4)
        if wall is None or (before == "healthy") == (after == "healthy"):
            continue  # a flag changed, not whether the host takes traffic
        state = "UP" if after == "healthy" else "DOWN"
        found.append((wall, names.get(match.group(2), match.group(2)), state))
    return found


def _container_output(cluster: Cluster, container: str, since_wall: float) -> str:
    """The load balancer container's output since `since_wall`, through the engine kind runs
    on (the kind target shares the runner's clock)."""
    client = engine_client(cluster.facts.extra.get("docker_host"))
    try:
        raw = client.containers.get(container).logs(since=int(since_wall), stderr=True)
    finally:
        client.close()
    return raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)


def backend_state_change(
    cluster: Cluster, server: str, state: str, since_wall: float, clocks: ClockOffsets
) -> ServerRecord | None:
    """The first time a load balancer logged `server` going `state` at or after `since_wall`."""
    if cluster.target == "kind":
        names = {n.address: n.name for n in cluster.nodes if n.address}
        for lb in cluster.with_role("lb"):
            text = _container_output(cluster, lb.name, since_wall - 5)
            for wall, name, seen in kindlb_state_changes(text, names):
                if name == server and seen == state and wall >= since_wall:
                    return ServerRecord(wall, f"kind load balancer log: {name} {seen}")
        return None
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
