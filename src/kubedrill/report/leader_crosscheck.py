"""Does etcd's own account of a leader change agree with what the runner measured?

The runner measures a leader change from the outside (a timeline interval, e.g. fault.injecting
-> leader.elected). etcd counts leader changes itself (`etcd_server_leader_changes_seen_total`)
and says whether it has a leader (`etcd_server_has_leader`). Within the runner's window, widened
by one scrape interval on each side, the counter must rise on some member; a dip of has_leader
to 0 is reported but is only seen when a scrape happens to land inside the election, which at a
1 s interval and a sub-second election it often does not.
"""

from __future__ import annotations

from typing import Any

from kubedrill.workload.metrics_recorder import Point, RecordedSeries


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
