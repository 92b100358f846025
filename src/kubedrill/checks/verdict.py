"""The outcome of one check, as a drill or a report shows it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["valid", "invalid", "unknown"]
AttachmentKind = Literal["text", "json", "html", "svg"]


@dataclass(frozen=True)
class Attachment:
    """Evidence for the report (Allure), too big or too raw for summary.json."""

    name: str
    kind: AttachmentKind
    body: Any  # str for text/html/svg; any JSON-able value for json


@dataclass(frozen=True, kw_only=True)
class Verdict:
    """`unknown` is neither a pass nor a failure: the check could not decide (it timed out, or
    the checker itself failed), and a drill must not count it as a pass."""

    check: str  # e.g. "linearizability"
    status: Status
    detail: str  # one line a person reads: why it is invalid, or what was checked
    figures: dict[str, Any] = field(default_factory=dict)
    seconds: float  # how long the check took
    # A check made of several (the consistency workload's) keeps each one's verdict here;
    # its own status is the worst of them (see `worst`).
    parts: tuple[Verdict, ...] = ()
    attachments: tuple[Attachment, ...] = ()

    @property
    def valid(self) -> bool:
        return self.status == "valid"

    def to_dict(self) -> dict[str, Any]:
        # Attachments go to Allure only: summary.json stays small and readable.
        out: dict[str, Any] = {
            "check": self.check,
            "status": self.status,
            "detail": self.detail,
            "figures": self.figures,
            "seconds": self.seconds,
        }
        if self.parts:
            out["parts"] = [p.to_dict() for p in self.parts]
        return out


def worst(statuses: Iterable[Status]) -> Status:
    """invalid beats unknown beats valid: one violation is a violation, and an undecided part
    keeps the whole from counting as a pass."""
    found = set(statuses)
    if "invalid" in found:
        return "invalid"
    if "unknown" in found:
        return "unknown"
    return "valid"
