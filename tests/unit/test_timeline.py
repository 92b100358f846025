"""Timeline: marks and measured intervals on an injected (fake) monotonic clock."""

from __future__ import annotations

import json
import threading

import pytest

from kubedrill.errors import KubedrillError
from kubedrill.timeline import Mark, Measurement, Timeline


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.value = start

    def __call__(self) -> float:
        return self.value

    def advance(self, seconds: float) -> None:
        self.value += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def timeline(clock: FakeClock) -> Timeline:
    return Timeline(clock=clock, wall=lambda: 1_700_000_000.0)


def test_offsets_are_relative_to_creation(clock: FakeClock, timeline: Timeline) -> None:
    assert timeline.now() == 0.0
    clock.advance(2.5)
    assert timeline.now() == 2.5
    mark = timeline.mark("fault.injected", node="n1")
    assert mark == Mark("fault.injected", 2.5, {"node": "n1"})
    assert timeline.wall_start == 1_700_000_000.0


def test_marks_returns_a_snapshot(clock: FakeClock, timeline: Timeline) -> None:
    timeline.mark("a")
    snapshot = timeline.marks
    snapshot.append(Mark("bogus", 9.0))
    clock.advance(1)
    timeline.mark("b")
    assert [m.event for m in timeline.marks] == ["a", "b"]


def test_first_last_and_after(clock: FakeClock, timeline: Timeline) -> None:
    timeline.mark("leader", name="n1")
    clock.advance(1)
    timeline.mark("other")
    clock.advance(1)
    timeline.mark("leader", name="n2")
    clock.advance(1)
    timeline.mark("leader", name="n3")

    first = timeline.first("leader")
    assert first is not None
    assert first.data == {"name": "n1"}
    after = timeline.first("leader", after=1.5)
    assert after is not None
    assert after.data == {"name": "n2"}
    at = timeline.first("leader", after=2.0)  # inclusive bound
    assert at is not None
    assert at.offset == 2.0
    last = timeline.last("leader")
    assert last is not None
    assert last.data == {"name": "n3"}
    assert timeline.first("leader", after=3.5) is None
    assert timeline.first("missing") is None
    assert timeline.last("missing") is None


def test_between_measures_first_start_to_first_end_after_it(
    clock: FakeClock, timeline: Timeline
) -> None:
    timeline.mark("leader.elected")  # before the fault: must be ignored
    clock.advance(3)
    timeline.mark("fault.injected")
    clock.advance(1.25)
    timeline.mark("leader.elected")
    clock.advance(4)
    timeline.mark("leader.elected")

    measured = timeline.between("fault.injected", "leader.elected")
    assert measured == Measurement(
        "fault.injected->leader.elected", "fault.injected", "leader.elected", 1.25
    )
    named = timeline.between("fault.injected", "leader.elected", name="leader_election")
    assert named.name == "leader_election"
    assert named.seconds == 1.25


def test_measurement_within_budget_is_inclusive() -> None:
    m = Measurement("x", "a", "b", 15.0)
    assert m.within(15.0)
    assert m.within(15.1)
    assert not m.within(14.999)


def test_between_missing_start_lists_marks(clock: FakeClock, timeline: Timeline) -> None:
    clock.advance(0.5)
    timeline.mark("steady")
    with pytest.raises(KubedrillError, match=r"timeline has no 'fault\.injected' mark") as info:
        timeline.between("fault.injected", "healed")
    assert info.value.hint == "marks so far: steady@0.500s"


def test_between_missing_end_after_start(clock: FakeClock, timeline: Timeline) -> None:
    timeline.mark("healed")
    clock.advance(1)
    timeline.mark("fault.injected")
    with pytest.raises(KubedrillError, match=r"no 'healed' mark after 'fault\.injected'"):
        timeline.between("fault.injected", "healed")


def test_to_dict_is_json_and_stringifies_odd_values(clock: FakeClock, timeline: Timeline) -> None:
    clock.advance(1.23456789)
    timeline.mark("probe", node="n1", ok=True, rev=7, latency=0.5, none=None, peers=("n2", "n3"))
    data = timeline.to_dict()
    assert data == {
        "clock": "monotonic",
        "wall_start": 1_700_000_000.0,
        "marks": [
            {
                "event": "probe",
                "offset_s": 1.234568,
                "node": "n1",
                "ok": True,
                "rev": 7,
                "latency": 0.5,
                "none": None,
                "peers": "('n2', 'n3')",
            }
        ],
    }
    json.dumps(data)  # must be serialisable as is


def test_render_table(clock: FakeClock, timeline: Timeline) -> None:
    timeline.mark("start")
    clock.advance(12.3456)
    timeline.mark("fault", node="n2", kind="kill")
    assert timeline.render() == (
        "timeline:\n      0.000s  start\n     12.346s  fault  node=n2 kind=kill"
    )


def test_marks_from_threads_are_all_kept(timeline: Timeline) -> None:
    def worker(i: int) -> None:
        for j in range(200):
            timeline.mark("tick", worker=i, n=j)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    marks = timeline.marks
    assert len(marks) == 1600
    assert {(m.data["worker"], m.data["n"]) for m in marks} == {
        (i, j) for i in range(8) for j in range(200)
    }
