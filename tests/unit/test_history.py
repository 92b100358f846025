"""Workload history: unavailability windows and operation filtering."""

from __future__ import annotations

import pytest

from kubedrill.workload.history import (
    Operation,
    Window,
    longest_unavailability,
    ops_between,
    unavailability_windows,
)


def op(
    invoke: float, outcome: str = "ok", *, complete: float | None = None, client: str = "c1"
) -> Operation:
    done = invoke + 0.01 if complete is None else complete
    return Operation(client, "put", "/k", "v", invoke, done, outcome)


def test_operation_ok() -> None:
    assert op(0).ok
    assert not op(0, "fail").ok
    assert not op(0, "unknown").ok


def test_window_seconds() -> None:
    assert Window(1.5, 4.0, 3).seconds == 2.5


def test_no_ops_no_windows() -> None:
    assert unavailability_windows([]) == []
    assert longest_unavailability([]) is None


def test_all_ok_no_windows() -> None:
    ops = [op(t) for t in (0, 1, 2, 3)]
    assert unavailability_windows(ops) == []
    assert longest_unavailability(ops) is None


def test_one_run_closed_by_next_success_invoke() -> None:
    ops = [op(0), op(1, "fail"), op(2, "unknown"), op(3, "fail"), op(4.5), op(5)]
    assert unavailability_windows(ops) == [Window(1, 4.5, 3)]


def test_several_runs() -> None:
    ops = [op(0, "fail"), op(1), op(2), op(3, "fail"), op(4, "fail"), op(6), op(7, "fail"), op(7.5)]
    windows = unavailability_windows(ops)
    assert windows == [Window(0, 1, 1), Window(3, 6, 2), Window(7, 7.5, 1)]
    assert longest_unavailability(ops) == Window(3, 6, 2)


def test_open_run_ends_at_last_failure_complete() -> None:
    ops = [op(0), op(1, "fail", complete=1.2), op(2, "fail", complete=2.7)]
    assert unavailability_windows(ops) == [Window(1, 2.7, 2)]


def test_open_run_after_closed_run() -> None:
    ops = [
        op(0, "fail", complete=0.5),
        op(1),
        op(2, "fail", complete=3.0),
        op(4, "unknown", complete=9.0),
    ]
    assert unavailability_windows(ops) == [Window(0, 1, 1), Window(2, 9.0, 2)]


def test_ops_are_ordered_by_invoke_across_clients() -> None:
    ops = [
        op(3.0, client="c2"),
        op(1.0, "fail", client="c1"),
        op(0.0, client="c2"),
        op(2.0, "fail", client="c2"),
        op(2.5, "fail", client="c1"),
    ]
    assert unavailability_windows(ops) == [Window(1.0, 3.0, 3)]


def test_longest_picks_first_of_equal_windows() -> None:
    ops = [op(0, "fail"), op(2), op(3, "fail"), op(5)]
    longest = longest_unavailability(ops)
    assert longest == Window(0, 2, 1)
    assert longest is not None
    assert longest.seconds == 2


def test_ops_between_is_inclusive_and_needs_both_ends_inside() -> None:
    a = op(1.0, complete=2.0)
    b = op(2.0, complete=3.0)
    c = op(0.5, complete=1.5)  # invoked before start
    d = op(2.5, complete=3.5)  # completed after end
    assert ops_between([a, b, c, d], 1.0, 3.0) == [a, b]
    assert ops_between([a, b, c, d], 10.0, 20.0) == []


@pytest.mark.parametrize("outcome", ["fail", "unknown"])
def test_single_failure_only(outcome: str) -> None:
    assert unavailability_windows([op(4, outcome, complete=5)]) == [Window(4, 5, 1)]
