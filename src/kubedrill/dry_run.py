"""A dry run's walk: everything a drill would do, in order, written down instead of done.

A dry run goes through the whole drill body. Every fault shows its inject and undo commands,
every wait its event and budget, every assertion its interval, every write the drill would
make; nothing is injected or written. Victims are still chosen from the cluster as it is now
(who leads, which node is third), because that is what a reviewer needs to see; choices that
depend on what the drill would observe show as a description (`Drill.choose`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class DryValue:
    """What a wait "returns" in a dry run: truthy (the drill goes on as if the event came),
    and says what it stands for when printed."""

    def __init__(self, event: str) -> None:
        self.event = event

    def __bool__(self) -> bool:
        return True

    def __repr__(self) -> str:
        return f"<dry run: value of {self.event}>"


@dataclass(frozen=True)
class DryStep:
    kind: str  # steady state, background, inject, undo, wait, watch, assert, check, ...
    what: str
    detail: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "what": self.what, "detail": list(self.detail)}


@dataclass
class DryRunWalk:
    steps: list[DryStep] = field(default_factory=list)

    def add(self, kind: str, what: str, *detail: str) -> None:
        self.steps.append(DryStep(kind, what, tuple(detail)))

    def of_kind(self, kind: str) -> list[DryStep]:
        return [s for s in self.steps if s.kind == kind]

    def render(self, indent: str = "") -> str:
        width = max((len(s.kind) for s in self.steps), default=0)
        lines: list[str] = []
        for number, step in enumerate(self.steps, 1):
            lines.append(f"{indent}{number:>3}  {step.kind:<{width}}  {step.what}")
            lines += [f"{indent}{'':>3}  {'':<{width}}    {d}" for d in step.detail]
        return "\n".join(lines)

    def to_list(self) -> list[dict[str, Any]]:
        return [s.to_dict() for s in self.steps]

    @classmethod
    def from_list(cls, raw: list[dict[str, Any]]) -> DryRunWalk:
        return cls(
            [DryStep(str(s["kind"]), str(s["what"]), tuple(map(str, s["detail"]))) for s in raw]
        )
