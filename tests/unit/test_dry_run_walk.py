"""A dry run walks the whole drill body: every fault with its inject and undo steps (nested
faults too), every wait with its budget, assertions, marks and writes, in order; nothing is
polled, injected or written, and no figure is reported."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from kubedrill.budgets import Budgets
from kubedrill.drill import Drill, DrillFailure
from kubedrill.dry_run import DryRunWalk
from kubedrill.faults.base import FaultPlan
from kubedrill.transport.base import TransportSpec
from kubedrill.transport.step import Step
from tests.unit.fake_cluster import fake_cluster


@dataclass(frozen=True)
class CutFault:
    """A fault as plain data: it never runs in a dry run."""

    node: str

    @property
    def name(self) -> str:
        return "cut"

    def available(self, cluster: Any) -> str | None:
        return None

    def plan(self, cluster: Any) -> FaultPlan:
        spec = TransportSpec("local", self.node)
        return FaultPlan(
            "cut",
            (self.node,),
            f"cut {self.node}",
            (Step(spec, ("iptables", "-A", "X", "-j", "DROP")),),
            (Step(spec, ("iptables", "-F", "X")),),
        )


def never(_what: str) -> Any:
    raise AssertionError(f"a dry run must not poll ({_what})")


def dry_drill() -> Drill:
    return Drill("test_walk", fake_cluster(), Budgets.defaults(), dry_run=True)


def test_the_whole_body_is_walked_in_order_with_nested_faults() -> None:
    drill = dry_drill()
    drill.steady_state("healthy", lambda: never("steady state"))
    drill.timeline.mark("t1.begin")
    watched = drill.watch("leader.elected", lambda: never("watch"), budget="leader_election")
    with drill.fault(CutFault("a")):
        watched.wait()
        with drill.fault(CutFault("b"), concurrent=True):
            value = drill.wait_for("quorum", lambda: never("wait"), budget="leader_election")
            assert value  # the drill goes on as if the event came
        victim = drill.choose("the busiest node", lambda: never("choose"))
    drill.within_budget("leader_election", "t1.begin", "leader.elected")
    with drill.verify():
        drill.wait_for("rejoined", lambda: never("verify wait"), timeout=7)
    drill.finish()

    steps = [(s.kind, s.what) for s in drill.walk.steps]
    assert steps == [
        ("steady state", "healthy"),
        ("mark", "t1.begin"),
        ("watch", "leader.elected, from here on"),
        ("inject", "cut a"),
        ("wait", "leader.elected (watched since it was started)"),
        ("inject", "cut b"),
        ("wait", "quorum"),
        ("undo", "cut b"),
        ("choose", "the busiest node"),
        ("undo", "cut a"),
        ("assert", "leader_election: t1.begin -> leader.elected within leader_election (15 s)"),
        ("verify", "verify"),
        ("wait", "rejoined"),
    ]
    assert victim == "<the busiest node>"
    inject_a = drill.walk.steps[3]
    assert inject_a.detail == ("[a] iptables -A X -j DROP",)
    assert drill.walk.steps[7].detail == ("[b] iptables -F X",)
    assert "budget leader_election 15 s" in drill.walk.steps[6].detail[0]
    assert "gives up after 7 s" in drill.walk.steps[12].detail[0]
    summary = drill.summary()
    assert summary["measurements"] == [] and summary["faults"] == ["cut a", "cut b"]
    assert DryRunWalk.from_list(summary["dry_run"]).steps == drill.walk.steps


def test_a_fault_is_undone_in_the_walk_when_the_body_raises() -> None:
    drill = dry_drill()
    with pytest.raises(RuntimeError), drill.fault(CutFault("a")):
        raise RuntimeError("drill code broke")
    assert [s.kind for s in drill.walk.steps] == ["inject", "undo"]


def test_render_numbers_steps_and_indents_details() -> None:
    walk = DryRunWalk()
    walk.add("inject", "cut a", "[a] iptables -A X")
    walk.add("wait", "quorum")
    assert walk.render().splitlines() == [
        "  1  inject  cut a",
        "               [a] iptables -A X",
        "  2  wait    quorum",
    ]


def test_expect_fails_a_real_drill_with_what_was_found_and_is_written_down_in_a_dry_run() -> None:
    real = Drill("test_real", fake_cluster(), Budgets.defaults())
    real.expect(True, "no write failed")
    with pytest.raises(DrillFailure, match=r"expected: no write failed; found: \['w1'\]"):
        real.expect(False, "no write failed", ["w1"])
    real.close()
    dry = dry_drill()
    dry.expect(False, "no write failed", [])
    assert [(s.kind, s.what) for s in dry.walk.steps] == [("assert", "no write failed")]
