"""Crash a host: every process on it dies at once and stays down until heal (the host comes
back). Targets whose control can do it say so by having `crash_host` (the lab: SIGKILL to every
process in the host's namespace, the supervisor's hold files keeping them down)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from kubedrill.faults.base import FaultPlan
from kubedrill.faults.shape import Selector
from kubedrill.faults.victims import (
    resolve_victims,
    unavailable_victims,
)
from kubedrill.transport.step import Step

if TYPE_CHECKING:
    from kubedrill.cluster import Cluster, FaultSteps, Node


@runtime_checkable
class CrashesHosts(Protocol):
    def crash_host(self, node: Node) -> FaultSteps: ...

    def components(self, node: Node) -> object: ...


@dataclass(frozen=True)
class CrashHost:
    """Crash the host of the chosen node of `component` (e.g. the leader of keepalived: the LB
    host holding the VIP); every component on it is down until heal."""

    component: str
    victims: Selector = field(default_factory=Selector.leader)

    @property
    def name(self) -> str:
        return "crash host"

    def available(self, cluster: Cluster) -> str | None:
        if not isinstance(cluster.control, CrashesHosts):
            return f"the {cluster.target} target cannot crash a host (the lab can)"
        return unavailable_victims(cluster, self.component, self.victims)

    def plan(self, cluster: Cluster) -> FaultPlan:
        control = cluster.control
        assert isinstance(control, CrashesHosts), self.available(cluster)
        chosen = resolve_victims(cluster, self.component, self.victims)
        inject: list[Step] = []
        undo: list[Step] = []
        down: set[tuple[str, str]] = set()
        for name in chosen.names:
            node = cluster.node(name)
            steps = control.crash_host(node)
            inject += steps.inject
            undo += steps.undo
            down |= {(name, c) for c in cluster.control.components(node)}
        role = f" (the {self.component} leader)" if chosen.include_leader else ""
        return FaultPlan(
            name=self.name,
            victims=chosen.names,
            description=f"crash host {', '.join(chosen.names)}{role}",
            inject=tuple(inject),
            undo=tuple(undo),
            takes_down=frozenset(down),
            # The hold files of every component there: no stop fault on them at the same time.
            claims=frozenset(f"{c} on {n}" for n, c in down),
            data={"component": self.component, "selector": str(self.victims)},
        )
