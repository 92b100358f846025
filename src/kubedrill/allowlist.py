"""The target allowlist: faults are injected only into clusters somebody allowed explicitly.

The local lab is allowed by default (kubedrill made it); any other target (a kube context, an
SSH inventory, a kind cluster) must be named with --allow-target or `kubedrill_allowed_targets`.
Patterns are shell-style (fnmatch) over the cluster name, e.g. `kind/kubedrill-*`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase

from kubedrill.errors import GuardError

DEFAULT_ALLOWED = ("lab/*",)


@dataclass(frozen=True)
class Allowlist:
    patterns: tuple[str, ...] = DEFAULT_ALLOWED

    @classmethod
    def of(cls, extra: Iterable[str]) -> Allowlist:
        return cls(DEFAULT_ALLOWED + tuple(p.strip() for p in extra if p.strip()))

    def allows(self, cluster: str) -> bool:
        return any(fnmatchcase(cluster, pattern) for pattern in self.patterns)

    def check(self, cluster: str) -> None:
        if not self.allows(cluster):
            raise GuardError(
                f"target {cluster!r} is not on the allowlist ({', '.join(self.patterns)}); "
                "no fault was injected",
                f"if this is the cluster you mean to break, allow it: --allow-target '{cluster}' "
                "(or kubedrill_allowed_targets in pyproject)",
            )
