"""One audit item's outcome: pass / warn / fail (or skip where it does not apply), with the
evidence found and the fix in one sentence."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["pass", "warn", "fail", "skip"]
SEVERITY: dict[Status, int] = {"skip": 0, "pass": 1, "warn": 2, "fail": 3}


@dataclass(frozen=True)
class Finding:
    item: str  # stable id, e.g. "etcd-flags"
    title: str  # what the seed asks for, in a few words
    status: Status
    evidence: str  # one line: what was found
    fix: str = ""  # one sentence; empty when the item passes
    details: tuple[str, ...] = ()  # per node / per flag lines behind the evidence
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "item": self.item,
            "title": self.title,
            "status": self.status,
            "evidence": self.evidence,
            "fix": self.fix,
            "details": list(self.details),
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class Judgement:
    """A pure judgement's result, before it becomes a Finding."""

    status: Status
    evidence: str
    fix: str = ""
    details: tuple[str, ...] = field(default_factory=tuple)


def worst(statuses: Iterable[Status]) -> Status:
    """fail beats warn beats pass; skip counts for nothing."""
    found = list(statuses)
    return max(found, key=lambda s: SEVERITY[s]) if found else "skip"


def exit_code(findings: Sequence[Finding]) -> int:
    """0 when nothing failed (warnings allowed), 1 when any item failed."""
    return 1 if any(f.status == "fail" for f in findings) else 0
