"""Fault plans are plain data: the commands that inject, and the commands that undo.

`Step` (one command on one node) lives in `kubedrill.transport.step`: clusters, controls and
the ledger use it too, below the faults; it is re-exported here for fault code."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from kubedrill.transport.step import Step

if TYPE_CHECKING:
    from kubedrill.cluster import Cluster


@dataclass(frozen=True)
class FaultPlan:
    """A fault resolved against a cluster: victims chosen, commands known, nothing done yet."""

    name: str  # e.g. "kill etcd"
    victims: tuple[str, ...]
    description: str
    inject: tuple[Step, ...]
    undo: tuple[Step, ...]
    # (node, component) pairs this fault takes out of service: the quorum guard counts them.
    takes_down: frozenset[tuple[str, str]] = field(default_factory=frozenset)
    data: Mapping[str, str] = field(default_factory=dict)
    # State on a node that only one fault at a time can own, because the kernel or the target
    # keeps one of it (a device's root qdisc, a component's hold file or stop signal, a node
    # container's pause, a Node's cordon), e.g. "etcd on etcd-1". Everything else a fault makes
    # is its own (chains, queues, delayers are named per fault); the runner refuses a second
    # active fault that claims the same thing, since one's undo would undo the other.
    claims: frozenset[str] = field(default_factory=frozenset)

    def render(self) -> str:
        lines = [f"fault: {self.description}", "  inject:"]
        lines += [f"    {s.render()}" for s in self.inject]
        lines.append("  undo:")
        lines += [f"    {s.render()}" for s in self.undo]
        return "\n".join(lines)


class Fault(Protocol):
    """A fault family. `plan` may look at the cluster (e.g. find the leader) but changes nothing."""

    @property
    def name(self) -> str: ...

    def available(self, cluster: Cluster) -> str | None:
        """None when this target can carry the fault, else why not (the drill is skipped)."""
        ...

    def plan(self, cluster: Cluster) -> FaultPlan: ...
