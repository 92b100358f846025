"""Does etcd's own account of a leader change agree with what the runner measured?

The runner measures a leader change from the outside (a timeline interval, e.g. fault.injecting
-> leader.elected). etcd counts leader changes itself (`etcd_server_leader_changes_seen_total`)
and says whether it has a leader (`etcd_server_has_leader`). Within the runner's window, widened
by one scrape interval on each side, the counter must rise on some member; a dip of has_leader
to 0 is reported but is only seen when a scrape happens to land inside the election, which at a
1 s interval and a sub-second election it often does not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubedrill.checks.base import CheckContext
from kubedrill.checks.verdict import Status, Verdict
from kubedrill.workload.metrics_recorder import MetricsRecorder, Point, RecordedSeries

NAME = "leader change in etcd's metrics"


def _node(labels: tuple[tuple[str, str], ...]) -> str:
    found = dict(labels)
    return found.get("node") or found.get("instance", "?")


def counter_increase(points: list[Point], lo: float, hi: float) -> tuple[float, float | None]:
    """(increase within [lo, hi], offset of the first rise), counting a drop as a counter reset
    (a restarted member starts again from 0), as Prometheus' increase() does."""
    previous: float | None = None
    increase, first = 0.0, None
    for offset, value in points:
        if value is None:
            continue
        if offset < lo:
            previous = value
            continue
        if offset > hi:
            break
        if previous is not None:
            delta = value - previous if value >= previous else value
            if delta > 0:
                increase += delta
                first = offset if first is None else first
        previous = value
    return increase, first


def leader_change_crosscheck(
    series: RecordedSeries, start: float, end: float, *, slack: float | None = None
) -> dict[str, Any]:
    """Figures for the report; `agrees` is the verdict (the counter rose in the window)."""
    slack = series.interval if slack is None else slack
    lo, hi = start - slack, end + slack
    increases: dict[str, float] = {}
    first_rise: float | None = None
    for (_, labels), points in series.select(
        "etcd_server_leader_changes_seen_total", job="etcd"
    ).items():
        increase, first = counter_increase(points, lo, hi)
        increases[_node(labels)] = increase
        if first is not None and (first_rise is None or first < first_rise):
            first_rise = first
    no_leader: dict[str, list[float]] = {}
    vanished: dict[str, float] = {}
    for (_, labels), points in series.select("etcd_server_has_leader", job="etcd").items():
        inside = [(o, v) for o, v in points if lo <= o <= hi]
        zeros = [round(o, 3) for o, v in inside if v == 0]
        if zeros:
            no_leader[_node(labels)] = zeros
        gone = next((o for o, v in inside if v is None), None)
        if gone is not None:
            vanished[_node(labels)] = round(gone, 3)
    restarted = []
    for (_, labels), points in series.select("process_start_time_seconds", job="etcd").items():
        before = [v for o, v in points if o < lo and v is not None]
        after = [v for o, v in points if lo <= o <= hi + slack and v is not None]
        if before and after and max(after) > before[-1]:
            restarted.append(_node(labels))
    scrapes = series.select("up", job="etcd")
    return {
        "window_s": [round(start, 3), round(end, 3)],
        "slack_s": slack,
        "scrapes_in_window": max(
            (sum(1 for o, _ in p if lo <= o <= hi) for p in scrapes.values()), default=0
        ),
        "leader_changes_rose": any(v > 0 for v in increases.values()),
        "leader_changes_increase": increases,
        "first_rise_s": None if first_rise is None else round(first_rise, 3),
        "has_leader_dipped": bool(no_leader),
        "has_leader_zero_at_s": no_leader,
        "series_vanished_at_s": vanished,
        "members_restarted": sorted(restarted),
        "agrees": any(v > 0 for v in increases.values()),
    }


@dataclass
class LeaderChangeCheck:
    """The runner's `fault.injecting -> leader.elected` against etcd's counters. A drill adds
    it as advisory (`Drill.add_check(..., advisory=True)`): it judges the figure, not the
    cluster, so a disagreement is reported next to the figure and does not fail the drill."""

    metrics: MetricsRecorder
    name: str = NAME

    def run(self, ctx: CheckContext) -> Verdict | None:
        injecting = ctx.timeline.first("fault.injecting")
        elected = ctx.timeline.first("leader.elected")
        if injecting is None or elected is None:
            return None  # this drill measured no leader change
        series = self.metrics.series()
        figures = leader_change_crosscheck(series, injecting.offset, elected.offset)
        ctx.observe("leader_change_vs_metrics", figures)
        window = f"{figures['window_s']} s (+/- {figures['slack_s']} s)"
        status: Status
        if figures["agrees"]:
            status, detail = "valid", f"the counter first rose at {figures['first_rise_s']} s"
        elif not figures["leader_changes_increase"] or not figures["scrapes_in_window"]:
            # e.g. kubeadm's etcd serves metrics on 127.0.0.1 only: no series, no verdict
            status, detail = "unknown", f"no etcd leader-change series scraped in {window}"
        else:
            status, detail = "invalid", f"no member's leader-change counter rose in {window}"
        return Verdict(check=self.name, status=status, detail=detail, figures=figures, seconds=0.0)
