"""The two seams a drill is built from besides its own steps.

A `Recorder` runs through the drill (the consistency workload, the metrics scraper, the
runner's CPU meter): started before the fault, stopped by `Drill.finish()`, its `summary()`
lands in summary.json. A `Check` judges what was recorded after heal and returns a `Verdict`.
`Drill.finish()` runs both, so a script or benchmark gets the checks a pytest run gets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from kubedrill.checks.verdict import Attachment, Verdict
from kubedrill.timeline import Timeline


@dataclass(frozen=True)
class CheckContext:
    """What a check may use besides what it was built with: the drill's timeline, a way to
    report a figure next to the drill's own (summary.json `observations`), and whether the
    drill body already failed (a check may then skip costly evidence)."""

    drill: str
    timeline: Timeline
    observe: Callable[[str, Any], None]
    drill_failed: bool = False


class Check(Protocol):
    """One judgement over what a drill recorded.

    `run` returns None when the check has nothing to judge in this drill (e.g. no leader
    change was measured, so there is nothing to cross-check): no verdict is recorded then.
    It must not raise for a cluster problem: an undecidable check is an `unknown` verdict.
    """

    @property
    def name(self) -> str: ...

    def run(self, ctx: CheckContext) -> Verdict | None: ...


class Recorder(Protocol):
    """Something that records through a drill. `start` and `stop` may return anything (the
    metrics recorder returns itself and its series): the drill ignores it. `stop` must be
    idempotent: `Drill.close()` stops every recorder again on the way out."""

    @property
    def name(self) -> str: ...

    def start(self) -> object: ...

    def stop(self) -> object: ...

    def summary(self) -> dict[str, Any]: ...


@runtime_checkable
class HasAttachments(Protocol):
    """A recorder whose raw record belongs in the report (Allure), e.g. the scraped series."""

    def attachments(self) -> list[Attachment]: ...
