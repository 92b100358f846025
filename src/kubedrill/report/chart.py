"""The drill's timeline as one self-contained SVG: what each client saw, when the fault was in,
and how long each measured interval took against its budget.

Hand-built SVG (no plotting library): it stays light for CI, needs no fonts or native code, and
its size is bounded by the chart's width, not by the number of operations -- operations are
aggregated into one bucket per pixel column before anything is drawn.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kubedrill.workload.history import Operation

WIDTH = 1000
LEFT = 170  # room for lane labels
RIGHT = 20
PLOT_WIDTH = WIDTH - LEFT - RIGHT
LANE_HEIGHT = 18
LANE_GAP = 4
ROW_HEIGHT = 14
MEASURE_HEIGHT = 20
MAX_LABEL_ROWS = 12
HOLD_S = 1.0  # how long a client's last outcome stands when no operation follows
CHAR_WIDTH = 6.0  # rough width of an 11 px sans-serif character, for label placement
FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"

COLORS = {
    "ok": "#2e7d32",
    "fail": "#c62828",
    "unknown": "#f9a825",
    "idle": "#eceff1",
    "fault": "#ef9a9a",
    "mark": "#546e7a",
    "axis": "#263238",
}
# A bucket shows the worst outcome in it, so one failed request in a busy pixel stays visible.
SEVERITY = {"ok": 1, "unknown": 2, "fail": 3}
STATE_BY_SEVERITY = {v: k for k, v in SEVERITY.items()}


@dataclass(frozen=True)
class Scale:
    """Seconds on the drill's monotonic clock to x pixels."""

    t_max: float

    def x(self, seconds: float) -> float:
        clamped = min(max(seconds, 0.0), self.t_max)
        return round(LEFT + clamped / self.t_max * PLOT_WIDTH, 2)


@dataclass(frozen=True)
class FaultWindow:
    fault: str
    start: float
    end: float
    healed: bool


@dataclass(frozen=True)
class Interval:
    name: str
    start: float
    seconds: float
    budget_s: float
    within: bool


def timeline_svg(summary: Mapping[str, Any], ops: Sequence[Operation] = ()) -> str:
    """The chart for one drill: `summary` is `Drill.summary()`, `ops` the recorded operations."""
    marks = [
        (str(m["event"]), float(m["offset_s"]), m)
        for m in summary.get("timeline", {}).get("marks", [])
    ]
    windows = fault_windows(marks, end=_end_of(marks, ops))
    intervals = measured_intervals(summary.get("measurements", []), marks)
    # The axis covers what happened, not the budgets: a 60 s budget would squash a 1 s drill.
    t_end = max([_end_of(marks, ops), *(i.start + i.seconds for i in intervals)])
    scale = Scale(t_max=_nice_ceiling(t_end * 1.02))
    lanes = lane_states(ops, scale)

    label_rows = _place_labels([(event, scale.x(offset)) for event, offset, _ in marks])
    rows_used = max((row for row in label_rows if row is not None), default=-1) + 1
    top = 34
    marks_top = top
    lanes_top = marks_top + rows_used * ROW_HEIGHT + 6
    lanes_height = max(len(lanes), 1) * (LANE_HEIGHT + LANE_GAP)
    measures_top = lanes_top + lanes_height + 6
    axis_y = measures_top + len(intervals) * MEASURE_HEIGHT + 8
    height = axis_y + 72

    svg = ET.Element(
        "svg",
        {
            "xmlns": "http://www.w3.org/2000/svg",
            "width": str(WIDTH),
            "height": str(height),
            "viewBox": f"0 0 {WIDTH} {height}",
            "font-family": FONT,
            "font-size": "11",
            "class": "kubedrill-timeline",
        },
    )
    ET.SubElement(svg, "title").text = f"timeline of {summary.get('drill', 'drill')}"
    ET.SubElement(svg, "rect", width=str(WIDTH), height=str(height), fill="#ffffff")
    title = f"{summary.get('drill', 'drill')}  ({summary.get('target', '?')})"
    faults = summary.get("faults") or []
    if faults:
        title += "  fault: " + "; ".join(str(f) for f in faults)
    _text(svg, 8, 18, title, size=13, weight="bold")

    window_top, window_height = marks_top, axis_y - marks_top
    for window in windows:
        _draw_window(svg, scale, window, window_top, window_height)
    _draw_lanes(svg, lanes, ops, lanes_top)
    for window in windows:  # outlined again over the lanes, which are opaque
        _draw_window_outline(svg, scale, window, lanes_top - 2, measures_top - lanes_top)
    for (event, offset, mark), row in zip(marks, label_rows, strict=True):
        _draw_mark(svg, scale, event, offset, mark, row, marks_top, axis_y)
    for index, interval in enumerate(intervals):
        _draw_interval(svg, scale, interval, measures_top + index * MEASURE_HEIGHT)
    _draw_axis(svg, scale, axis_y)
    _draw_legend(svg, axis_y + 34)
    ET.indent(svg)
    return ET.tostring(svg, encoding="unicode")


# -- data ----------------------------------------------------------------------------------------


def fault_windows(marks: Sequence[tuple[str, float, Any]], *, end: float) -> list[FaultWindow]:
    """fault.injecting .. fault.healed per fault; a fault never healed runs to the chart's end."""
    open_faults: dict[str, float] = {}
    windows: list[FaultWindow] = []
    for event, offset, mark in marks:
        fault = str(mark.get("fault", "")) if isinstance(mark, Mapping) else ""
        if event == "fault.injecting":
            open_faults[fault] = offset
        elif event == "fault.healed":
            key = fault if fault in open_faults else next(iter(open_faults), None)
            if key is not None:
                windows.append(FaultWindow(key, open_faults.pop(key), offset, healed=True))
    windows.extend(FaultWindow(f, start, end, healed=False) for f, start in open_faults.items())
    return sorted(windows, key=lambda w: w.start)


def measured_intervals(
    measurements: Iterable[Mapping[str, Any]], marks: Sequence[tuple[str, float, Any]]
) -> list[Interval]:
    """Each measurement placed at its start mark (the first `from` mark, as Timeline.between)."""
    found: list[Interval] = []
    for m in measurements:
        start = next((offset for event, offset, _ in marks if event == m.get("from")), None)
        if start is None:
            continue  # a measurement with no start mark cannot be placed on the time axis
        found.append(
            Interval(
                name=str(m.get("name", "?")),
                start=start,
                seconds=float(m.get("seconds", 0.0)),
                budget_s=float(m.get("budget_s", math.inf)),
                within=bool(m.get("within", True)),
            )
        )
    return found


def lane_states(ops: Sequence[Operation], scale: Scale) -> dict[str, list[int]]:
    """Per client, the worst outcome in each pixel column (0: the client was not running).

    A client's state holds from one operation until its next one (at most HOLD_S later), so a
    client polling every 50 ms draws a continuous lane rather than a comb of thin requests.
    """
    by_client: dict[str, list[Operation]] = {}
    for op in ops:
        by_client.setdefault(op.client, []).append(op)
    lanes: dict[str, list[int]] = {}
    for client, client_ops in sorted(by_client.items()):
        buckets = lanes[client] = [0] * PLOT_WIDTH
        client_ops.sort(key=lambda o: o.invoke)
        for op, following in zip(client_ops, [*client_ops[1:], None], strict=True):
            end = max(op.complete, op.invoke)
            if following is not None:
                end = max(end, min(following.invoke, end + HOLD_S))
            first, last = _bucket(op.invoke, scale), _bucket(end, scale)
            severity = SEVERITY.get(op.outcome, SEVERITY["unknown"])
            for i in range(first, max(first, last) + 1):
                buckets[i] = max(buckets[i], severity)
    return lanes


def _bucket(seconds: float, scale: Scale) -> int:
    return min(PLOT_WIDTH - 1, max(0, int(scale.x(seconds) - LEFT)))


def _end_of(marks: Sequence[tuple[str, float, Any]], ops: Sequence[Operation]) -> float:
    ends = [offset for _, offset, _ in marks] + [op.complete for op in ops]
    return max(ends, default=1.0)


def _nice_ceiling(seconds: float) -> float:
    """Round the axis end up to a round number, so its ten ticks fall on readable values."""
    if seconds <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(seconds))
    for step in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if seconds <= step * power:
            return step * power
    return 10 * power


def _place_labels(labels: Sequence[tuple[str, float]]) -> list[int | None]:
    """Greedy rows so that mark labels do not overlap; a label with no free row is dropped
    (its tick and tooltip stay)."""
    row_ends: list[float] = []
    rows: list[int | None] = []
    for text, x in labels:
        width = len(text) * CHAR_WIDTH + 6
        for row, end in enumerate(row_ends):
            if x >= end:
                row_ends[row] = x + width
                rows.append(row)
                break
        else:
            if len(row_ends) < MAX_LABEL_ROWS:
                row_ends.append(x + width)
                rows.append(len(row_ends) - 1)
            else:
                rows.append(None)
    return rows


# -- drawing -------------------------------------------------------------------------------------


def _text(
    parent: ET.Element,
    x: float,
    y: float,
    text: str,
    *,
    size: int = 11,
    anchor: str = "start",
    fill: str = "#212121",
    weight: str = "normal",
    cls: str = "",
) -> ET.Element:
    attrs = {
        "x": f"{x:g}",
        "y": f"{y:g}",
        "font-size": str(size),
        "text-anchor": anchor,
        "fill": fill,
    }
    if weight != "normal":
        attrs["font-weight"] = weight
    if cls:
        attrs["class"] = cls
    element = ET.SubElement(parent, "text", attrs)
    element.text = text
    return element


def _draw_window(
    svg: ET.Element, scale: Scale, window: FaultWindow, top: float, height: float
) -> None:
    x0, x1 = scale.x(window.start), scale.x(window.end)
    group = ET.SubElement(
        svg,
        "g",
        {
            "class": "fault-window",
            "data-fault": window.fault,
            "data-start-s": f"{window.start:.3f}",
            "data-end-s": f"{window.end:.3f}",
        },
    )
    state = "healed" if window.healed else "never healed"
    ET.SubElement(
        group, "title"
    ).text = f"fault {window.fault}: {window.start:.3f} s .. {window.end:.3f} s ({state})"
    ET.SubElement(
        group,
        "rect",
        {
            "x": f"{x0:g}",
            "y": f"{top:g}",
            "width": f"{max(x1 - x0, 1.0):g}",
            "height": f"{height:g}",
            "fill": COLORS["fault"],
            "fill-opacity": "0.35",
        },
    )
    _text(group, x0 + 2, top + height - 3, f"fault: {window.fault}", size=9, fill="#b71c1c")


def _draw_window_outline(
    svg: ET.Element, scale: Scale, window: FaultWindow, top: float, height: float
) -> None:
    x0, x1 = scale.x(window.start), scale.x(window.end)
    ET.SubElement(
        svg,
        "rect",
        {
            "class": "fault-outline",
            "x": f"{x0:g}",
            "y": f"{top:g}",
            "width": f"{max(x1 - x0, 1.0):g}",
            "height": f"{height:g}",
            "fill": "none",
            "stroke": "#b71c1c",
            "stroke-width": "1.5",
            "stroke-dasharray": "5,3",
        },
    )


def _draw_lanes(
    svg: ET.Element, lanes: Mapping[str, list[int]], ops: Sequence[Operation], top: float
) -> None:
    if not lanes:
        _text(svg, LEFT + 4, top + 13, "no client operations recorded", fill="#757575")
        return
    counts: dict[str, tuple[int, int]] = {}
    for op in ops:
        total, bad = counts.get(op.client, (0, 0))
        counts[op.client] = (total + 1, bad + (not op.ok))
    for index, (client, buckets) in enumerate(lanes.items()):
        y = top + index * (LANE_HEIGHT + LANE_GAP)
        total, bad = counts[client]
        group = ET.SubElement(svg, "g", {"class": "lane", "data-client": client})
        ET.SubElement(group, "title").text = f"{client}: {total} operations, {bad} not ok"
        _text(group, LEFT - 6, y + 13, f"{client} ({total}, {bad} ✗)", anchor="end")
        ET.SubElement(
            group,
            "rect",
            {
                "x": str(LEFT),
                "y": f"{y:g}",
                "width": str(PLOT_WIDTH),
                "height": str(LANE_HEIGHT),
                "fill": COLORS["idle"],
            },
        )
        for start, length, severity in _runs(buckets):
            state = STATE_BY_SEVERITY[severity]
            ET.SubElement(
                group,
                "rect",
                {
                    "class": f"state {state}",
                    "x": str(LEFT + start),
                    "y": f"{y:g}",
                    "width": str(length),
                    "height": str(LANE_HEIGHT),
                    "fill": COLORS[state],
                },
            )


def _runs(buckets: Sequence[int]) -> list[tuple[int, int, int]]:
    """(start, length, severity) of each run of equal non-empty buckets."""
    runs: list[tuple[int, int, int]] = []
    start = 0
    for i in range(1, len(buckets) + 1):
        if i == len(buckets) or buckets[i] != buckets[start]:
            if buckets[start]:
                runs.append((start, i - start, buckets[start]))
            start = i
    return runs


def _draw_mark(
    svg: ET.Element,
    scale: Scale,
    event: str,
    offset: float,
    mark: Mapping[str, Any],
    row: int | None,
    marks_top: float,
    axis_y: float,
) -> None:
    x = scale.x(offset)
    group = ET.SubElement(
        svg, "g", {"class": "mark", "data-event": event, "data-offset-s": f"{offset:.6f}"}
    )
    extra = " ".join(f"{k}={v}" for k, v in mark.items() if k not in ("event", "offset_s"))
    ET.SubElement(group, "title").text = f"{offset:.3f} s  {event}  {extra}".rstrip()
    label_y = marks_top + (row if row is not None else 0) * ROW_HEIGHT + 10
    ET.SubElement(
        group,
        "line",
        {
            "x1": f"{x:g}",
            "x2": f"{x:g}",
            "y1": f"{label_y + 2:g}",
            "y2": f"{axis_y:g}",
            "stroke": COLORS["mark"],
            "stroke-width": "0.8",
            "stroke-dasharray": "2,2",
        },
    )
    if row is not None:
        label = _text(group, x + 2, label_y, event, size=10, fill=COLORS["mark"], cls="mark-label")
        # A halo: where marks crowd (a game day's first second), other marks' ticks run
        # through the labels below theirs and made them unreadable; the halo hides them.
        label.attrib.update({"stroke": "#ffffff", "stroke-width": "3", "paint-order": "stroke"})


def _draw_interval(svg: ET.Element, scale: Scale, interval: Interval, y: float) -> None:
    verdict = "ok" if interval.within else "BREACH"
    color = COLORS["ok"] if interval.within else COLORS["fail"]
    x0, x1 = scale.x(interval.start), scale.x(interval.start + interval.seconds)
    group = ET.SubElement(
        svg,
        "g",
        {
            "class": f"measurement {'ok' if interval.within else 'breach'}",
            "data-name": interval.name,
            "data-seconds": f"{interval.seconds:.3f}",
            "data-budget-s": f"{interval.budget_s:g}",
        },
    )
    label = f"{interval.name} {interval.seconds:.3f} s (budget {interval.budget_s:g} s) {verdict}"
    ET.SubElement(group, "title").text = label
    _text(group, LEFT - 6, y + 12, interval.name, anchor="end")
    ET.SubElement(
        group,
        "rect",
        {
            "x": f"{x0:g}",
            "y": f"{y + 3:g}",
            "width": f"{max(x1 - x0, 2.0):g}",
            "height": str(MEASURE_HEIGHT - 8),
            "fill": color,
            "fill-opacity": "0.8",
        },
    )
    if interval.start + interval.budget_s <= scale.t_max:  # else off the chart: label only
        xb = scale.x(interval.start + interval.budget_s)
        ET.SubElement(
            group,
            "line",
            {
                "class": "budget",
                "x1": f"{xb:g}",
                "x2": f"{xb:g}",
                "y1": f"{y + 1:g}",
                "y2": f"{y + MEASURE_HEIGHT - 3:g}",
                "stroke": COLORS["axis"],
                "stroke-width": "2",
            },
        )
    _label_interval(group, label, color, x0, max(x1, x0 + 2), y + 12)


def _label_interval(
    group: ET.Element, label: str, color: str, x0: float, x1: float, y: float
) -> None:
    """Right of the bar if it fits, else inside it, else left of it."""
    width = len(label) * CHAR_WIDTH
    if x1 + 4 + width <= WIDTH - RIGHT:
        _text(group, x1 + 4, y, label, fill=color, weight="bold", cls="measurement-label")
    elif x1 - x0 >= width + 8:
        _text(
            group,
            x1 - 4,
            y,
            label,
            anchor="end",
            fill="#ffffff",
            weight="bold",
            cls="measurement-label",
        )
    else:
        _text(
            group,
            max(x0 - 4, LEFT + width),
            y,
            label,
            anchor="end",
            fill=color,
            weight="bold",
            cls="measurement-label",
        )


def _draw_axis(svg: ET.Element, scale: Scale, y: float) -> None:
    group = ET.SubElement(svg, "g", {"class": "axis"})
    ET.SubElement(
        group,
        "line",
        {
            "x1": str(LEFT),
            "x2": str(LEFT + PLOT_WIDTH),
            "y1": f"{y:g}",
            "y2": f"{y:g}",
            "stroke": COLORS["axis"],
        },
    )
    step = scale.t_max / 10
    for i in range(11):
        seconds = step * i
        x = scale.x(seconds)
        tick = ET.SubElement(group, "g", {"class": "tick", "data-seconds": f"{seconds:g}"})
        ET.SubElement(
            tick,
            "line",
            {
                "x1": f"{x:g}",
                "x2": f"{x:g}",
                "y1": f"{y:g}",
                "y2": f"{y + 5:g}",
                "stroke": COLORS["axis"],
            },
        )
        _text(tick, x, y + 17, f"{seconds:g} s", size=10, anchor="middle")


def _draw_legend(svg: ET.Element, y: float) -> None:
    group = ET.SubElement(svg, "g", {"class": "legend"})
    x = float(LEFT)
    entries = [
        ("ok", "request ok"),
        ("fail", "failed"),
        ("unknown", "unknown (timed out)"),
        ("idle", "client not running"),
        ("fault", "fault injected"),
    ]
    for key, text in entries:
        ET.SubElement(
            group,
            "rect",
            {"x": f"{x:g}", "y": f"{y - 9:g}", "width": "12", "height": "10", "fill": COLORS[key]},
        )
        _text(group, x + 16, y, text, size=10)
        x += 16 + len(text) * CHAR_WIDTH + 18
    _text(group, x, y, "| a pixel shows the worst outcome in it", size=10)
    _text(group, LEFT, y + 16, "bars: measured intervals; black line: the budget", size=10)
