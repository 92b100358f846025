"""Drill.finish(): recorders stopped, checks run in order, verdicts recorded; an invalid one
fails a drill that passed and only once; advisory checks report without failing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from kubedrill.budgets import Budgets
from kubedrill.checks import Check, CheckContext, Recorder, Status, Verdict
from kubedrill.drill import Drill, DrillFailure
from tests.unit.fake_cluster import fake_cluster


@dataclass
class CountingRecorder:
    name: str = "counting"
    events: list[str] = field(default_factory=list)

    def start(self) -> None:
        self.events.append("start")

    def stop(self) -> None:
        self.events.append("stop")

    def summary(self) -> dict[str, Any]:
        return {"events": list(self.events)}

    def operations(self) -> list[Any]:  # as a stand-in for the consistency workload
        return []


@dataclass
class FixedCheck:
    name: str
    status: Status | None  # None: nothing to judge
    ran: list[str] = field(default_factory=list)

    def run(self, ctx: CheckContext) -> Verdict | None:
        self.ran.append(self.name)
        ctx.observe(f"{self.name}_ran", True)
        if self.status is None:
            return None
        return Verdict(check=self.name, status=self.status, detail="because", seconds=0.0)


@dataclass
class BrokenCheck:
    name: str = "broken"

    def run(self, ctx: CheckContext) -> Verdict | None:
        raise RuntimeError("checker bug")


def new_drill() -> Drill:
    return Drill("d", fake_cluster(), Budgets.defaults())


def test_recorders_stop_before_checks_and_land_in_the_summary() -> None:
    drill = new_drill()
    recorder: Recorder = drill.add_recorder(CountingRecorder())
    order: list[str] = []

    @dataclass
    class SeesStopped:
        name: str = "sees-stopped"

        def run(self, ctx: CheckContext) -> Verdict:
            order.extend(cast(CountingRecorder, recorder).events)
            return Verdict(check=self.name, status="valid", detail="ok", seconds=0.0)

    drill.add_check(SeesStopped())
    assert [v.status for v in drill.finish()] == ["valid"]
    assert order == ["start", "stop"]
    summary = drill.summary()
    assert summary["recorders"]["counting"] == {"events": ["start", "stop"]}
    # Every drill meters its own runner's CPU.
    assert summary["recorders"]["runner_cpu"]["run"]["percent_of_core"]["total"] >= 0
    assert summary["checks"][0]["check"] == "sees-stopped"
    drill.close()  # stops again: recorders are idempotent by contract


def test_an_invalid_verdict_fails_the_drill_after_every_check_ran() -> None:
    drill = new_drill()
    checks: list[Check] = [
        FixedCheck("a", "valid"),
        FixedCheck("b", "invalid"),
        FixedCheck("c", "unknown"),
        FixedCheck("d", None),
    ]
    for check in checks:
        drill.add_check(check)
    with pytest.raises(DrillFailure, match="b: because"):
        drill.finish()
    assert [v.check for v in drill.verdicts] == ["a", "b", "c"]  # d had nothing to judge
    assert drill.observations["d_ran"] is True
    assert drill.finish() == drill.verdicts  # once only: no second failure


def test_a_drill_that_failed_gets_its_verdicts_but_is_not_failed_twice() -> None:
    drill = new_drill()
    drill.add_check(FixedCheck("bad", "invalid"))
    drill.add_check(BrokenCheck())
    verdicts = drill.finish(failed=True)
    assert [(v.check, v.status) for v in verdicts] == [("bad", "invalid"), ("broken", "unknown")]
    assert "checker bug" in drill.observations["broken_error"]


def test_an_advisory_check_reports_without_failing() -> None:
    drill = new_drill()
    drill.add_check(FixedCheck("cross-check", "invalid"), advisory=True)
    assert [v.status for v in drill.finish()] == ["invalid"]


def test_a_check_that_raises_errors_a_passing_drill_after_the_others() -> None:
    drill = new_drill()
    drill.add_check(BrokenCheck())
    later = FixedCheck("later", "valid")
    drill.add_check(later)
    with pytest.raises(RuntimeError, match="checker bug"):
        drill.finish()
    assert later.ran == ["later"]


def test_check_now_fails_at_once() -> None:
    drill = new_drill()
    with pytest.raises(DrillFailure, match="now: because"):
        drill.check_now(FixedCheck("now", "invalid"))
    assert [v.check for v in drill.verdicts] == ["now"]


def test_consistency_summary_shows_the_parts() -> None:
    drill = new_drill()
    part = Verdict(check="etcd: x", status="valid", detail="ok", seconds=0.0)
    whole = Verdict(check="consistency", status="valid", detail="ok", seconds=0.0, parts=(part,))

    @dataclass
    class Whole:
        name: str = "consistency"

        def run(self, ctx: CheckContext) -> Verdict:
            return whole

    drill.consistency = cast(Any, CountingRecorder())  # stands in for the workload
    drill.add_check(Whole())
    drill.finish()
    summary = drill.consistency_summary()
    assert summary["verdicts"] == [part.to_dict()]
    assert drill.summary()["checks"][0]["parts"] == [part.to_dict()]
