"""Recorded operations and what they tell: failures, unavailability windows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Operation:
    """One client operation, with invoke/complete offsets on the drill's monotonic timeline."""

    client: str
    kind: str  # "put" | "get" | "cas"
    key: str
    value: str
    invoke: float
    complete: float
    outcome: str  # "ok" | "fail" | "unknown" (timed out: may or may not have applied)
    revision: int = 0
    error: str = ""
    # Compare-and-set: `value` is the new value, `expected` the value compared against, and
    # `applied` says whether the compare held (an ok cas with applied=False changed nothing).
    # For a get, `value` is the value read ("" when the key was absent).
    expected: str = ""
    applied: bool = True

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


@dataclass(frozen=True)
class Window:
    start: float
    end: float
    failed_ops: int

    @property
    def seconds(self) -> float:
        return self.end - self.start


def unavailability_windows(ops: Sequence[Operation]) -> list[Window]:
    """Runs of consecutive failed operations (by invoke order): from the first failure's invoke
    to the next success's invoke. A run still open at the end ends at the last failure."""
    windows: list[Window] = []
    start: float | None = None
    count = 0
    last_fail = 0.0
    for op in sorted(ops, key=lambda o: o.invoke):
        if op.ok:
            if start is not None:
                windows.append(Window(start, op.invoke, count))
                start, count = None, 0
        else:
            if start is None:
                start = op.invoke
            count += 1
            last_fail = op.complete
    if start is not None:
        windows.append(Window(start, last_fail, count))
    return windows


def longest_unavailability(ops: Sequence[Operation]) -> Window | None:
    windows = unavailability_windows(ops)
    return max(windows, key=lambda w: w.seconds) if windows else None


def ops_between(ops: Sequence[Operation], start: float, end: float) -> list[Operation]:
    """Operations invoked and completed inside [start, end]."""
    return [op for op in ops if op.invoke >= start and op.complete <= end]


def ops_overlapping(ops: Sequence[Operation], start: float, end: float) -> list[Operation]:
    """Operations that were in flight at any moment of [start, end]."""
    return [op for op in ops if op.invoke <= end and op.complete >= start]
