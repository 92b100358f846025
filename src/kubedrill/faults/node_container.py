"""Faults on whole node containers (kind): pause (freeze), stop (with a grace), kill (SIGKILL).

The steps run `kubedrill.transport.container_ctl` on the observer, so the ledger holds plain
argv and `kubedrill heal` can replay them. Every undo unpauses first and is idempotent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from kubedrill.errors import FaultError
from kubedrill.faults.base import FaultPlan
from kubedrill.faults.shape import Selector
from kubedrill.faults.victims import resolve_victims
from kubedrill.transport.node_container import OBSERVER, ctl_argv, thaw_first
from kubedrill.transport.step import Step

if TYPE_CHECKING:
    from kubedrill.cluster import Cluster, Node


def _ctl(node: Node, verb: str, *, grace_s: int | None = None, if_exists: bool = False) -> Step:
    params = node.transport.params
    argv = ctl_argv(
        verb,
        params["container"],
        docker_host=params.get("docker_host"),
        grace_s=grace_s,
        if_exists=if_exists,
    )
    return Step(OBSERVER, argv, timeout=60 + (grace_s or 0))


@dataclass(frozen=True)
class _NodeFault:
    """Victims are node names (`Selector.named`) or a selector over `component`'s nodes."""

    victims: Selector
    component: str = "etcd"
    verb = "pause"

    @property
    def name(self) -> str:
        return f"{self.verb} node"

    def _steps(self, node: Node) -> tuple[list[Step], list[Step]]:
        raise NotImplementedError

    def available(self, cluster: Cluster) -> str | None:
        if any(n.transport.kind == "docker" for n in cluster.nodes):
            return None
        return f"{cluster.target} nodes are not containers: node-container faults need kind"

    def plan(self, cluster: Cluster) -> FaultPlan:
        if self.victims.kind == "named":
            chosen = tuple(cluster.node(n).name for n in self.victims.names)
        else:
            chosen = resolve_victims(cluster, self.component, self.victims).names
        inject: list[Step] = []
        undo: list[Step] = []
        down: set[tuple[str, str]] = set()
        for name in chosen:
            node = cluster.node(name)
            if node.transport.kind != "docker":
                raise FaultError(
                    f"{node.name} is not a container: node faults need the kind target",
                    "on other targets use StopComponent / KillComponent / PauseComponent",
                )
            i, u = self._steps(node)
            inject += i
            undo += u
            down |= {(name, c) for c in cluster.control.components(node)}
        return FaultPlan(
            name=self.name,
            victims=chosen,
            description=f"{self.verb} node container {', '.join(chosen)}",
            inject=tuple(inject),
            undo=tuple(undo),
            takes_down=frozenset(down),
            data={"selector": str(self.victims), "verb": self.verb},
            # A container has one paused/stopped state: the first undo would end both faults'.
            claims=frozenset(f"node container {n}" for n in chosen),
        )


@dataclass(frozen=True)
class PauseNode(_NodeFault):
    """Freeze every process of the node (cgroup freezer): a hung machine that keeps its IP."""

    verb = "pause"

    def _steps(self, node: Node) -> tuple[list[Step], list[Step]]:
        return [_ctl(node, "pause")], [*thaw_first(node.transport)]


@dataclass(frozen=True)
class StopNode(_NodeFault):
    """SIGTERM to the node's init, SIGKILL after the grace: an orderly shutdown; heal starts it."""

    grace_s: int = 10
    verb = "stop"

    def _steps(self, node: Node) -> tuple[list[Step], list[Step]]:
        if self.grace_s < 0:
            raise FaultError(f"stop grace must be >= 0 seconds (got {self.grace_s})")
        return (
            [_ctl(node, "stop", grace_s=self.grace_s)],
            [*thaw_first(node.transport), _ctl(node, "start", if_exists=True)],
        )


@dataclass(frozen=True)
class KillNode(_NodeFault):
    """SIGKILL to the whole node: power loss. Heal starts it again."""

    verb = "kill"

    def _steps(self, node: Node) -> tuple[list[Step], list[Step]]:
        return [_ctl(node, "kill")], [
            *thaw_first(node.transport),
            _ctl(node, "start", if_exists=True),
        ]


__all__ = ["KillNode", "PauseNode", "StopNode"]
