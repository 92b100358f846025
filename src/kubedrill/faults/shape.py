"""Pure functions that decide a fault's shape: who is the victim, who is cut off from whom."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from kubedrill.errors import FaultError, UnknownNodeError

SELECTOR_KINDS = ("leader", "follower", "named", "one", "minority", "majority")


@dataclass(frozen=True)
class Selector:
    """Which nodes a fault hits: Jepsen-style declarative targets."""

    kind: str
    names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in SELECTOR_KINDS:
            raise UnknownNodeError(
                f"unknown victim selector {self.kind!r}", f"use one of {', '.join(SELECTOR_KINDS)}"
            )
        if self.kind == "named" and not self.names:
            raise UnknownNodeError("a named selector needs at least one node name")
        if len(set(self.names)) != len(self.names):
            raise UnknownNodeError(
                f"node named twice in {','.join(self.names)}", "name each node once"
            )

    @classmethod
    def leader(cls) -> Selector:
        return cls("leader")

    @classmethod
    def follower(cls) -> Selector:
        return cls("follower")

    @classmethod
    def named(cls, *names: str) -> Selector:
        return cls("named", tuple(names))

    @classmethod
    def parse(cls, text: str) -> Selector:
        """'leader', 'follower', 'one', 'minority', 'majority' or a comma-separated node list."""
        if text in SELECTOR_KINDS and text != "named":
            return cls(text)
        return cls.named(*[t for t in text.split(",") if t])

    def __str__(self) -> str:
        return ",".join(self.names) if self.kind == "named" else self.kind


def quorum(members: int) -> int:
    return members // 2 + 1


def select_victims(
    selector: Selector,
    candidates: Sequence[str],
    *,
    leader: str | None,
    rng: random.Random | None = None,
) -> tuple[str, ...]:
    """Choose victims among `candidates` (sorted names). Deterministic given `rng`."""
    if not candidates:
        raise FaultError("no candidate nodes for this fault", "check the cluster's roles")
    pick = rng or random.Random(0)
    ordered = sorted(candidates)
    if selector.kind == "named":
        unknown = [n for n in selector.names if n not in ordered]
        if unknown:
            raise UnknownNodeError(
                f"unknown node(s) {', '.join(unknown)} for this fault",
                f"candidates: {', '.join(ordered)}",
            )
        return selector.names
    if selector.kind in ("leader", "follower"):
        if leader is None:
            raise FaultError(
                "there is no leader to target",
                "wait until the cluster has a leader, or name a node",
            )
        if leader not in ordered:
            raise FaultError(f"leader {leader!r} is not one of {', '.join(ordered)}")
        if selector.kind == "leader":
            return (leader,)
        followers = [n for n in ordered if n != leader]
        if not followers:
            raise FaultError("there is no follower to target")
        return (pick.choice(followers),)
    if selector.kind == "one":
        return (pick.choice(ordered),)
    size = (
        len(ordered) - quorum(len(ordered)) if selector.kind == "minority" else quorum(len(ordered))
    )
    size = max(size, 1)
    # Prefer to include the leader in a minority: that is the interesting case (old leader cut off).
    first = [leader] if leader in ordered and selector.kind == "minority" else []
    rest = [n for n in ordered if n not in first]
    pick.shuffle(rest)
    return tuple(sorted((first + rest)[:size]))


def complete_grudge(components: Sequence[Sequence[str]]) -> dict[str, frozenset[str]]:
    """Every node ignores every node outside its own component (Jepsen's complete-grudge)."""
    everyone = [n for comp in components for n in comp]
    if len(set(everyone)) != len(everyone):
        raise FaultError("a node appears in two sides of the partition")
    grudge: dict[str, frozenset[str]] = {}
    for comp in components:
        others = frozenset(n for n in everyone if n not in comp)
        for node in comp:
            grudge[node] = others
    return grudge


def isolate_grudge(victims: Sequence[str], all_nodes: Sequence[str]) -> dict[str, frozenset[str]]:
    """Victims are cut off from everyone else (and from each other: each is alone)."""
    rest = [n for n in all_nodes if n not in victims]
    return complete_grudge([[v] for v in victims] + ([rest] if rest else []))


def members_left(members: Sequence[str], down: Sequence[str]) -> int:
    return len([m for m in members if m not in down])


def loses_quorum(members: Sequence[str], down: Sequence[str]) -> bool:
    return members_left(members, down) < quorum(len(members))


def majority_side(grudge: Mapping[str, frozenset[str]], members: Sequence[str]) -> frozenset[str]:
    """The largest group of members that can all still reach each other under `grudge`."""
    best: frozenset[str] = frozenset()
    for node in members:
        side = frozenset(m for m in members if m == node or m not in grudge.get(node, frozenset()))
        if len(side) > len(best):
            best = side
    return best


def zone_members(zones: Mapping[str, str | None], zone: str) -> tuple[str, ...]:
    """The nodes of `zone` (zones: node -> its zone, None when it has none), sorted."""
    inside = tuple(sorted(n for n, z in zones.items() if z == zone))
    if not inside:
        known = sorted({z for z in zones.values() if z is not None})
        raise UnknownNodeError(
            f"no node in zone {zone!r}",
            f"zones here: {', '.join(known)}" if known else "this cluster has no zones",
        )
    return inside


def pick_zone(
    zones: Mapping[str, str | None], *, leader: str | None, named: str | None = None
) -> str:
    """The zone a zone outage takes: `named`, else the zone of `leader`'s node (the
    interesting case: the leader goes with its zone)."""
    if named is not None:
        zone_members(zones, named)
        return named
    if leader is None:
        raise FaultError("there is no leader whose zone to take", "name the zone instead")
    zone = zones.get(leader)
    if zone is None:
        raise FaultError(f"the leader {leader} is in no zone", "name the zone instead")
    return zone


def zone_grudge(zones: Mapping[str, str | None], zone: str) -> dict[str, frozenset[str]]:
    """A zone cut off: its nodes reach each other, nobody outside it (a node without a zone,
    a shared load balancer, is outside every zone)."""
    inside = zone_members(zones, zone)
    rest = sorted(n for n in zones if n not in inside)
    return complete_grudge([list(inside), rest]) if rest else {n: frozenset() for n in inside}


def edge_zones(zones: Mapping[str, str | None], roles: Mapping[str, frozenset[str]]) -> list[str]:
    """Zones that hold workers only (no control plane, no etcd, no load balancer): edge
    sites, whose partition leaves the control plane whole."""
    found: dict[str, bool] = {}
    for node, zone in zones.items():
        if zone is not None:
            found[zone] = found.get(zone, True) and roles.get(node, frozenset()) == {"worker"}
    return sorted(z for z, workers_only in found.items() if workers_only)
