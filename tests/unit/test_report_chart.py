"""The timeline chart, read back as SVG: where things are drawn and what they say."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from kubedrill.report.chart import PLOT_WIDTH, timeline_svg
from kubedrill.workload.history import Operation

NS = {"s": "http://www.w3.org/2000/svg"}


def summary(*, breach: bool = False) -> dict[str, Any]:
    marks = [
        ("steady_state.ok", 0.5),
        ("fault.injecting", 2.0),
        ("fault.injected", 2.1),
        ("leader.elected", 3.5),
        ("fault.healing", 6.0),
        ("fault.healed", 6.5),
        ("member.rejoined", 8.0),
    ]
    return {
        "drill": "test_kill_leader",
        "target": "lab",
        "faults": ["kill leader etcd on etcd-2"],
        "measurements": [
            {
                "name": "leader_election",
                "seconds": 1.5,
                "from": "fault.injecting",
                "to": "leader.elected",
                "budget": "leader_election",
                "budget_s": 1.0 if breach else 5.0,
                "within": not breach,
            }
        ],
        "timeline": {
            "marks": [
                {"event": e, "offset_s": o, **({"fault": "kill etcd"} if "fault." in e else {})}
                for e, o in marks
            ]
        },
    }


def ops_for(clients: tuple[str, ...], until: float, step: float) -> list[Operation]:
    """Clients failing between 2.0 and 3.5 s (the fault), ok otherwise."""
    ops: list[Operation] = []
    t = 0.0
    while t < until:
        outcome = "fail" if 2.0 <= t < 3.5 else "ok"
        ops.extend(Operation(c, "put", "k", "v", t, t + step / 2, outcome) for c in clients)
        t += step
    return ops


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def tick_x(root: ET.Element, seconds: str) -> float:
    tick = root.find(f".//s:g[@class='tick'][@data-seconds='{seconds}']/s:line", NS)
    assert tick is not None, f"no axis tick at {seconds} s"
    return float(tick.get("x1", "nan"))


def test_fault_window_is_drawn_where_the_fault_was() -> None:
    root = parse(timeline_svg(summary(), ops_for(("writer-1",), 9.0, 0.05)))
    windows = root.findall(".//s:g[@class='fault-window']", NS)
    assert len(windows) == 1
    rect = windows[0].find("s:rect", NS)
    assert rect is not None
    x0, x10 = tick_x(root, "0"), tick_x(root, "10")
    px_per_s = (x10 - x0) / 10
    assert float(rect.get("x", "nan")) == pytest.approx(x0 + 2.0 * px_per_s, abs=0.5)
    assert float(rect.get("width", "nan")) == pytest.approx(4.5 * px_per_s, abs=0.5)
    assert windows[0].get("data-fault") == "kill etcd"


def test_every_mark_is_a_labelled_tick() -> None:
    root = parse(timeline_svg(summary()))
    events = [g.get("data-event") for g in root.findall(".//s:g[@class='mark']", NS)]
    assert events == [m["event"] for m in summary()["timeline"]["marks"]]
    labels = {t.text for t in root.findall(".//s:text[@class='mark-label']", NS)}
    assert labels == set(events)


def test_measured_interval_is_labelled_with_seconds_budget_and_verdict() -> None:
    root = parse(timeline_svg(summary()))
    group = root.find(".//s:g[@data-name='leader_election']", NS)
    assert group is not None
    assert group.get("class") == "measurement ok"
    label = group.find("s:text[@class='measurement-label']", NS)
    assert label is not None
    assert label.text == "leader_election 1.500 s (budget 5 s) ok"
    bar = group.find("s:rect", NS)
    assert bar is not None
    px_per_s = (tick_x(root, "10") - tick_x(root, "0")) / 10
    assert float(bar.get("width", "nan")) == pytest.approx(1.5 * px_per_s, abs=0.5)


def test_a_breach_is_shown_as_a_breach() -> None:
    root = parse(timeline_svg(summary(breach=True)))
    group = root.find(".//s:g[@data-name='leader_election']", NS)
    assert group is not None
    assert group.get("class") == "measurement breach"
    label = group.find("s:text[@class='measurement-label']", NS)
    assert label is not None and label.text is not None
    assert label.text.endswith("BREACH")
    bar = group.find("s:rect", NS)
    assert bar is not None and bar.get("fill") == "#c62828"


def test_lanes_show_failures_inside_the_fault_window_only() -> None:
    root = parse(timeline_svg(summary(), ops_for(("api-reader-1", "writer-1"), 9.0, 0.05)))
    lanes = root.findall(".//s:g[@class='lane']", NS)
    assert [lane.get("data-client") for lane in lanes] == ["api-reader-1", "writer-1"]
    x0 = tick_x(root, "0")
    px_per_s = (tick_x(root, "10") - x0) / 10
    failed = lanes[1].findall("s:rect[@class='state fail']", NS)
    assert len(failed) == 1
    start = (float(failed[0].get("x", "nan")) - x0) / px_per_s
    end = start + float(failed[0].get("width", "nan")) / px_per_s
    assert start == pytest.approx(2.0, abs=0.05)
    assert end == pytest.approx(3.5, abs=0.1)


def test_zero_operations_renders_a_note_instead_of_lanes() -> None:
    root = parse(timeline_svg(summary(), ()))
    assert root.findall(".//s:g[@class='lane']", NS) == []
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "no client operations recorded" in texts


def test_many_thousands_of_operations_stay_small_and_fast() -> None:
    ops = ops_for(("a", "b", "c", "d"), 9.0, 0.001)  # 36,000 operations
    started = time.perf_counter()
    svg = timeline_svg(summary(), ops)
    elapsed = time.perf_counter() - started
    root = parse(svg)
    rects = root.findall(".//s:g[@class='lane']/s:rect", NS)
    assert len(rects) <= 4 * (PLOT_WIDTH + 1)  # bounded by pixels, not by operations
    assert len(svg) < 200_000
    assert elapsed < 5.0


def test_a_fault_never_healed_runs_to_the_end() -> None:
    s = summary()
    s["timeline"]["marks"] = [m for m in s["timeline"]["marks"] if m["event"] != "fault.healed"]
    root = parse(timeline_svg(s))
    window = root.find(".//s:g[@class='fault-window']", NS)
    assert window is not None
    assert float(window.get("data-end-s", "nan")) == pytest.approx(8.0)


def test_text_is_escaped() -> None:
    s = summary()
    s["drill"] = "test_<script>&"
    svg = timeline_svg(s)
    assert "<script>" not in svg
    assert parse(svg) is not None
