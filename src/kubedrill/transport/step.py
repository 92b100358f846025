"""One command on one node, as plain data: what fault plans, controls and the undo ledger are
made of. It sits at the transport level so that `cluster.py`, the controls and the ledger can use
it without importing the faults package."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubedrill.transport.base import TransportSpec


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
