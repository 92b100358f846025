"""Which nodes a fault hits on a real cluster: the component's nodes, its leader if the
selector needs one, then the pure choice in `shape.select_victims`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from kubedrill.cluster import COMPONENT_ROLE
from kubedrill.errors import UnknownNodeError
from kubedrill.faults.shape import Selector, select_victims

if TYPE_CHECKING:
    from kubedrill.cluster import Cluster

NEEDS_LEADER = ("leader", "follower", "minority")  # minority prefers to include the leader


@dataclass(frozen=True)
class Victims:
    names: tuple[str, ...]
    candidates: tuple[str, ...]
    leader: str | None

    @property
    def include_leader(self) -> bool:
        return self.leader is not None and self.leader in self.names


def component_nodes(cluster: Cluster, component: str) -> list[str]:
    """Names of the nodes that run `component`."""
    role = COMPONENT_ROLE.get(component)
    if role is None:
        known = ", ".join(sorted(COMPONENT_ROLE))
        raise UnknownNodeError(f"unknown component {component!r}", f"known components: {known}")
    return [n.name for n in cluster.with_role(role)]


def unavailable_victims(cluster: Cluster, component: str, selector: Selector) -> str | None:
    """Why `selector` cannot pick victims running `component` on `cluster` (no node runs it,
    or it needs the leader and the target cannot tell which one leads), or None."""
    if not component_nodes(cluster, component):
        return f"{cluster.name} has no node that runs {component}"
    if selector.kind in NEEDS_LEADER and component not in cluster.leader_locators:
        return f"{cluster.target} target cannot tell which {component} leads"
    return None


def resolve_victims(cluster: Cluster, component: str, selector: Selector) -> Victims:
    candidates = component_nodes(cluster, component)
    leader = cluster.leader(component) if selector.kind in NEEDS_LEADER else None
    names = select_victims(selector, candidates, leader=leader)
    return Victims(names, tuple(candidates), leader)
