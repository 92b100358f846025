"""Stop (SIGTERM, held down), kill (SIGKILL, restarted by the supervisor) or pause (SIGSTOP)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kubedrill.faults.base import FaultPlan
from kubedrill.faults.shape import Selector
from kubedrill.faults.victims import (
    resolve_victims,
    unavailable_victims,
)
from kubedrill.transport.step import Step

if TYPE_CHECKING:
    from kubedrill.cluster import Cluster, FaultSteps, Node


@dataclass(frozen=True)
class _ComponentFault:
    component: str
    victims: Selector = field(default_factory=Selector.leader)
    verb = "stop"
    # Stop and pause leave the component in a state the next undo ends (the supervisor's hold
    # file, SIGSTOP) whoever asked for it; a kill leaves nothing to undo.
    holds = True

    @property
    def name(self) -> str:
        return f"{self.verb} {self.component}"

    def _steps(self, cluster: Cluster, node: Node) -> FaultSteps:
        raise NotImplementedError

    def available(self, cluster: Cluster) -> str | None:
        return unavailable_victims(cluster, self.component, self.victims)

    def plan(self, cluster: Cluster) -> FaultPlan:
        victims = resolve_victims(cluster, self.component, self.victims)
        chosen, leader = victims.names, victims.leader
        inject: list[Step] = []
        undo: list[Step] = []
        for name in chosen:
            steps = self._steps(cluster, cluster.node(name))
            inject += steps.inject
            undo += steps.undo
        role = "leader " if leader in chosen else ""
        return FaultPlan(
            name=self.name,
            victims=chosen,
            description=f"{self.verb} {role}{self.component} on {', '.join(chosen)}",
            inject=tuple(inject),
            undo=tuple(undo),
            takes_down=frozenset((n, self.component) for n in chosen),
            claims=frozenset(f"{self.component} on {n}" for n in chosen if self.holds),
            data={
                "component": self.component,
                "selector": str(self.victims),
                "leader_before": leader or "",
            },
        )


@dataclass(frozen=True)
class StopComponent(_ComponentFault):
    """SIGTERM and keep it down until heal (like `crictl stop` with the manifest moved away)."""

    verb = "stop"

    def _steps(self, cluster: Cluster, node: Node) -> FaultSteps:
        return cluster.control.stop(node, self.component)


@dataclass(frozen=True)
class KillComponent(_ComponentFault):
    """SIGKILL: a crash. The supervisor restarts it with back-off, as kubelet would."""

    verb = "kill"
    holds = False

    def _steps(self, cluster: Cluster, node: Node) -> FaultSteps:
        return cluster.control.kill(node, self.component)


@dataclass(frozen=True)
class PauseComponent(_ComponentFault):
    """SIGSTOP until heal (SIGCONT): a hung process that still holds its sockets."""

    verb = "pause"

    def _steps(self, cluster: Cluster, node: Node) -> FaultSteps:
        return cluster.control.pause(node, self.component)
