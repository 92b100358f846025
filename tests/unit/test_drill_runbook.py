"""Drill.runbook: each step acted, marked and timed, its result observed; a dry run writes
the steps down and runs none of them."""

from __future__ import annotations

from kubedrill.budgets import Budgets
from kubedrill.disaster.quota import RunbookStep
from kubedrill.drill import Drill
from tests.unit.fake_cluster import fake_cluster


def test_steps_run_in_order_marked_timed_and_observed() -> None:
    ran: list[str] = []

    def step(name: str, result: object) -> object:
        ran.append(name)
        return result

    drill = Drill("d", fake_cluster(), Budgets.defaults())
    try:
        drill.runbook(
            [
                ("stop", "stop it", lambda: step("stop", "stopped 2 of 3")),
                (
                    "compact",
                    "compact",
                    lambda: step("compact", RunbookStep("compact", 0.1, "rev 9")),
                ),
                ("quiet", "says nothing", lambda: step("quiet", "")),
            ]
        )
        events = [m.event for m in drill.timeline.marks]
    finally:
        drill.close()
    assert ran == ["stop", "compact", "quiet"]
    assert events == ["runbook.started", "runbook.stop", "runbook.compact", "runbook.quiet"]
    assert drill.observations["runbook_stop"] == "stopped 2 of 3"
    assert drill.observations["runbook_compact"] == "rev 9"
    assert "runbook_quiet" not in drill.observations
    assert all(f"runbook_{n}_s" in drill.observations for n in ("stop", "compact", "quiet"))


def test_a_dry_run_runs_no_step() -> None:
    drill = Drill("d", fake_cluster(), Budgets.defaults(), dry_run=True)
    try:
        drill.runbook([("stop", "stop it", lambda: (_ for _ in ()).throw(AssertionError("ran")))])
    finally:
        drill.close()
    steps = [(s["kind"], s["what"]) for s in drill.walk.to_list()]
    assert ("act", "runbook: stop it") in steps and ("mark", "runbook.stop") in steps
