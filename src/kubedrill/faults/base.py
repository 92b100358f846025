"""Fault plans are plain data: the commands that inject, and the commands that undo."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from kubedrill.transport import TransportSpec

if TYPE_CHECKING:
    from kubedrill.cluster import Cluster


@dataclass(frozen=True)
class Step:
    """One command on one node. Undo steps must be idempotent (safe to replay twice)."""

    transport: TransportSpec
    argv: tuple[str, ...]
    ignore_errors: bool = False
    timeout: float = 30.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "transport": self.transport.to_dict(),
            "argv": list(self.argv),
            "ignore_errors": self.ignore_errors,
            "timeout": self.timeout,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Step:
        return cls(
            TransportSpec.from_dict(raw["transport"]),
            tuple(str(a) for a in raw["argv"]),
            bool(raw.get("ignore_errors", False)),
            float(raw.get("timeout", 30.0)),
        )

    def render(self) -> str:
        return f"[{self.transport.node}] {' '.join(self.argv)}"


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

    def plan(self, cluster: Cluster) -> FaultPlan: ...
