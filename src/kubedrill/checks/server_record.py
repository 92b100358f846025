"""Each budgeted figure next to the cluster's own record of its end event (advisory).

The drill names, when it waits for an event, where the cluster records it (see
`Drill.wait_for(..., record=...)`); this check looks the records up after heal, so reading
logs and Leases costs nothing while the fault is held. It never fails a drill: the budget is
judged on the polled figure (kubedrill.server_record.compare says why). A figure further from
its record than the probe interval is `invalid` and says so in the report.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kubedrill.checks.base import CheckContext
from kubedrill.checks.verdict import Status, Verdict
from kubedrill.cluster import Cluster
from kubedrill.server_record.clock import ClockOffsets
from kubedrill.server_record.compare import RecordContext, Recorded, compare
from kubedrill.timeline import Measurement


@dataclass(frozen=True)
class Expected:
    """Where the cluster records one event, what the probe returned at it (asked after heal: a
    background watch has it only once it saw the event), and the interval it was polled at."""

    recorded: Recorded
    value: Callable[[], object]
    interval: float


@dataclass
class ServerRecordCheck:
    cluster: Cluster
    measurements: Callable[[], Sequence[Measurement]]
    expected: Mapping[str, Expected]  # end event -> where it is recorded
    name: str = "server_record"

    def run(self, ctx: CheckContext) -> Verdict | None:
        started = time.perf_counter()
        clocks = ClockOffsets(self.cluster)
        rows: list[dict[str, Any]] = []
        for measurement in self.measurements():
            expected = self.expected.get(measurement.end_event)
            start = ctx.timeline.first(measurement.start_event)
            if expected is None or start is None:
                continue
            since = ctx.timeline.wall_start + start.offset
            try:
                record = expected.recorded.find(
                    RecordContext(self.cluster, clocks, since), expected.value()
                )
            except Exception as exc:  # a record we cannot read is no record, never a failure
                record = None
                ctx.observe(
                    f"server_record_error_{measurement.name}", f"{type(exc).__name__}: {exc}"
                )
            rows.append(
                compare(
                    measurement, ctx.timeline, record, expected.interval, expected.recorded.what
                )
            )
        if not rows:
            return None
        ctx.observe("server_records", rows)
        return _verdict(rows, time.perf_counter() - started)


def _verdict(rows: Sequence[dict[str, Any]], seconds: float) -> Verdict:
    lines = [_line(row) for row in rows]
    status: Status
    if any(row["agrees"] is False for row in rows):
        status = "invalid"
    elif any(row["agrees"] is None for row in rows):
        status = "unknown"
    else:
        status = "valid"
    return Verdict(
        check="server record",
        status=status,
        detail="; ".join(lines),
        figures={"rows": list(rows)},
        seconds=round(seconds, 3),
    )


def _line(row: Mapping[str, Any]) -> str:
    if row["server_s"] is None:
        return f"{row['measurement']} {row['polled_s']:.3f} s polled; {row['source']}"
    verdict = (
        "agrees"
        if row["agrees"]
        else f"DISAGREES (beyond the {row['probe_interval_s']} s interval and a round trip)"
    )
    return (
        f"{row['measurement']} {row['polled_s']:.3f} s polled, {row['server_s']:.3f} s by "
        f"{row['source']} ({row['difference_s']:+.3f} s, {verdict})"
    )
