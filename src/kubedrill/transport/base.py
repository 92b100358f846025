"""The Transport seam: run a command on a node and get its exit status and output."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from kubedrill.errors import CommandError


@dataclass(frozen=True)
class CommandResult:
    node: str
    argv: tuple[str, ...]
    exit_code: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def check(self) -> CommandResult:
        if not self.ok:
            raise CommandError(self.node, list(self.argv), self.exit_code, self.stdout, self.stderr)
        return self


@dataclass(frozen=True)
class TransportSpec:
    """Plain data that recreates a transport later, e.g. when `kubedrill heal` replays the ledger.

    `params` never holds secrets: an SSH spec names the key file, not the key.
    """

    kind: str  # "local" | "netns" | "ssh" | "docker"
    node: str
    params: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "node": self.node, "params": dict(self.params)}

    @classmethod
    def from_dict(cls, raw: Mapping[str, object]) -> TransportSpec:
        params = raw.get("params", {})
        if not isinstance(params, Mapping):
            raise TypeError("transport params must be a mapping")
        return cls(str(raw["kind"]), str(raw["node"]), {str(k): str(v) for k, v in params.items()})


class Transport(Protocol):
    spec: TransportSpec

    def run(
        self, argv: list[str], *, timeout: float = 30.0, input: str | None = None
    ) -> CommandResult:
        """Run argv on the node. Never raises for a non-zero exit: call `.check()`."""
        ...
