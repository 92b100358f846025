"""The consistency workload's checks, run after heal as one check of several parts.

One check rather than one per part: the parts share reads of the healed cluster's final state
(the workload's keys, its ConfigMaps), and the workload decides which parts apply (no API
parts without Kubernetes, one `unknown` part when it never started)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from kubedrill.checks.base import CheckContext
from kubedrill.checks.verdict import Attachment, Verdict, worst
from kubedrill.consistency.workload import ConsistencyWorkload

NAME = "consistency"


@dataclass
class ConsistencyCheck:
    workload: ConsistencyWorkload
    name: str = NAME

    def run(self, ctx: CheckContext) -> Verdict:
        started = time.perf_counter()
        self.workload.stop()  # normally stopped already, as a recorder; idempotent
        parts = tuple(self.workload.check())
        ctx.timeline.mark("consistency.checked")
        ctx.observe("unavailability", self.workload.unavailability())
        # Best effort, after the verdicts: what the workload wrote goes, so the next drill
        # starts from a clean prefix.
        self.workload.cleanup()
        seconds = round(time.perf_counter() - started, 3)
        ctx.observe("consistency_check_s", seconds)
        status = worst(p.status for p in parts)
        bad = [p for p in parts if p.status == status] if status != "valid" else []
        if status == "invalid":
            detail = "violated: " + "; ".join(f"{p.check}: {p.detail}" for p in bad)
        elif status == "unknown":
            detail = "undecided: " + "; ".join(f"{p.check}: {p.detail}" for p in bad)
        else:
            detail = f"all {len(parts)} checks valid"
        return Verdict(
            check=self.name,
            status=status,
            detail=detail,
            figures={s: sum(p.status == s for p in parts) for s in ("valid", "invalid", "unknown")},
            seconds=seconds,
            parts=parts,
            # porcupine's visualization of a non-linearizable history
            attachments=tuple(
                Attachment(name, "html", html) for name, html in self.workload.evidence.items()
            ),
        )
