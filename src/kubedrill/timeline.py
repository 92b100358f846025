"""One monotonic clock per drill: marks and measured intervals.

Durations are always differences of `time.monotonic()`; wall-clock time is kept only as an
anchor so that marks can be lined up with component logs afterwards.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kubedrill.errors import KubedrillError

Clock = Callable[[], float]


@dataclass(frozen=True)
class Mark:
    event: str
    offset: float  # seconds since the timeline started
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Measurement:
    name: str
    start_event: str
    end_event: str
    seconds: float

    def within(self, budget: float) -> bool:
        return self.seconds <= budget


class Timeline:
    """Thread-safe list of marks on one monotonic clock (probes mark from worker threads)."""

    def __init__(self, clock: Clock = time.monotonic, wall: Clock = time.time) -> None:
        self._clock = clock
        self._base = clock()
        self.wall_start = wall()
        self._marks: list[Mark] = []
        self._lock = threading.Lock()
        # Called with every new mark, in the marking thread (a dry run writes them down).
        self.listeners: list[Callable[[Mark], None]] = []

    def now(self) -> float:
        return self._clock() - self._base

    def mark(self, event: str, **data: Any) -> Mark:
        mark = Mark(event, self.now(), dict(data))
        with self._lock:
            self._marks.append(mark)
        for listener in self.listeners:
            listener(mark)
        return mark

    @property
    def marks(self) -> list[Mark]:
        with self._lock:
            return list(self._marks)

    def first(self, event: str, *, after: float = -1.0) -> Mark | None:
        return next((m for m in self.marks if m.event == event and m.offset >= after), None)

    def last(self, event: str) -> Mark | None:
        found = [m for m in self.marks if m.event == event]
        return found[-1] if found else None

    def between(self, start: str, end: str, name: str | None = None) -> Measurement:
        """Interval from the first `start` mark to the first `end` mark after it."""
        start_mark = self.first(start)
        if start_mark is None:
            raise KubedrillError(f"timeline has no {start!r} mark", self._hint())
        end_mark = self.first(end, after=start_mark.offset)
        if end_mark is None:
            raise KubedrillError(f"timeline has no {end!r} mark after {start!r}", self._hint())
        return Measurement(
            name or f"{start}->{end}", start, end, end_mark.offset - start_mark.offset
        )

    def _hint(self) -> str:
        return "marks so far: " + ", ".join(f"{m.event}@{m.offset:.3f}s" for m in self.marks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "clock": "monotonic",
            "wall_start": self.wall_start,
            "marks": [
                {"event": m.event, "offset_s": round(m.offset, 6), **_jsonable(m.data)}
                for m in self.marks
            ],
        }

    def render(self) -> str:
        """Human-readable table for failure messages."""
        lines = [f"  {m.offset:9.3f}s  {m.event}{_fmt_data(m.data)}" for m in self.marks]
        return "timeline:\n" + "\n".join(lines)


def _fmt_data(data: Mapping[str, Any]) -> str:
    return ("  " + " ".join(f"{k}={v}" for k, v in data.items())) if data else ""


def _jsonable(data: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        out[key] = value if isinstance(value, str | int | float | bool | type(None)) else str(value)
    return out
