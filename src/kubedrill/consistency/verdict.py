"""The outcome of one consistency check, as a drill or a report shows it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Status = Literal["valid", "invalid", "unknown"]


@dataclass(frozen=True, kw_only=True)
class Verdict:
    """`unknown` is neither a pass nor a failure: the check could not decide (it timed out, or
    the checker itself failed), and a drill must not count it as a pass."""

    check: str  # e.g. "linearizability"
    status: Status
    detail: str  # one line a person reads: why it is invalid, or what was checked
    figures: dict[str, Any] = field(default_factory=dict)
    seconds: float  # how long the check took

    @property
    def valid(self) -> bool:
        return self.status == "valid"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
