"""Recorded series as promtool rule-test input: a fixed-step grid, expanding notation, holds.

promtool evaluates rules on `input_series` sampled every `interval`, starting at test time 0.
Each recorded scrape falls into the grid slot nearest its offset; a slot with no scrape is `_`
(promtool, like Prometheus, then keeps using the previous sample for up to 5 minutes); a series
that vanished (its target failed, or stopped exposing it) gets `stale`, as Prometheus writes a
staleness marker, so a dead member's series disappear instead of lingering.

A *hold* repeats the state at one offset for a while: drills last seconds, the rules' `for:`
minutes. Holding the steady state for longer than the longest `for:` proves it fires nothing;
holding the fault's settled state proves the alerts would fire had the fault lasted.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from kubedrill.probes.metrics import Labels
from kubedrill.workload.metrics_recorder import Point, RecordedSeries

STALE = "stale"
Token = float | str | None  # a value, STALE, or None for a missing sample


@dataclass(frozen=True)
class Hold:
    """Repeat the state recorded at offset `at` (drill timeline) for `seconds`."""

    at: float
    seconds: float
    label: str = "held"


@dataclass(frozen=True)
class GridPoint:
    test_s: float  # time in the promtool test
    drill_s: float  # offset on the drill's timeline whose state this is
    held: str | None = None  # the hold's label while a state is held
    held_s: float = 0.0  # how long the state had been held at this point


def duration(seconds: float) -> str:
    """A promtool duration in whole milliseconds."""
    return f"{round(seconds * 1000)}ms"


def build_grid(
    start: float, end: float, step: float, holds: Sequence[Hold] = ()
) -> list[GridPoint]:
    slots = max(0, math.ceil((end - start) / step - 1e-9))
    hold_at: dict[int, list[Hold]] = {}
    for hold in holds:
        slot = min(slots, max(0, round((hold.at - start) / step)))
        hold_at.setdefault(slot, []).append(hold)
    grid: list[GridPoint] = []
    for slot in range(slots + 1):
        drill_s = start + slot * step
        grid.append(GridPoint(len(grid) * step, drill_s))
        for hold in hold_at.get(slot, []):
            for k in range(1, math.ceil(hold.seconds / step) + 1):
                grid.append(GridPoint(len(grid) * step, drill_s, hold.label, k * step))
    return grid


def slot_tokens(points: Iterable[Point], start: float, step: float) -> dict[int, Token]:
    """The last scrape falling into each slot; None values are staleness markers."""
    out: dict[int, Token] = {}
    for offset, value in sorted(points):
        slot = round((offset - start) / step)
        if value is None:
            out[slot] = STALE
        elif math.isfinite(value):
            out[slot] = value
    return out


def is_counter(name: str) -> bool:
    return name.endswith(("_total", "_bucket", "_count", "_sum"))


def tokens_on_grid(
    points: Iterable[Point],
    grid: Sequence[GridPoint],
    start: float,
    step: float,
    *,
    counter: bool = False,
    rate_window: int = 5,
) -> list[Token]:
    """The series' tokens on the grid. In a hold a gauge keeps its value and a counter keeps
    growing at the rate of its last `rate_window` slots (requests go on while a fault lasts;
    a flat counter would make every rate() zero and every latency quantile NaN); recorded
    counter values after a hold are shifted by what the hold added, so no reset appears."""
    by_slot = slot_tokens(points, start, step)
    tokens: list[Token] = []
    current: Token = None  # the state a hold repeats: last value, or nothing once stale
    recent: list[tuple[int, float]] = []
    shift, per_step = 0.0, 0.0
    for point in grid:
        if point.held is not None:
            if not isinstance(current, float):
                tokens.append(None)
                continue
            if counter:
                if point.held_s <= step:  # the hold's first point: take the recent rate
                    per_step = _per_step(recent)
                current += per_step
                shift += per_step
            tokens.append(current)
            continue
        slot = round((point.drill_s - start) / step)
        token = by_slot.get(slot)
        if isinstance(token, float) and counter:
            token += shift
            recent = [*recent[-(rate_window - 1) :], (slot, token)] if rate_window > 1 else []
        tokens.append(token)
        if token is not None:
            current = token
    return tokens


def _per_step(recent: Sequence[tuple[int, float]]) -> float:
    if len(recent) < 2 or recent[-1][1] < recent[0][1]:
        return 0.0  # too little to go on, or a reset inside the window
    return (recent[-1][1] - recent[0][1]) / (recent[-1][0] - recent[0][0])


def number(value: float) -> str:
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


def encode(tokens: Sequence[Token]) -> str:
    """promtool's expanding notation: runs of equal steps as `a+bxN` (promtool adds b N times
    in float64, and so does the check here, so the values are exact), missing samples as
    `_xN`, staleness markers as `stale`."""
    parts: list[str] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        j = i + 1
        if token is None:
            while j < len(tokens) and tokens[j] is None:
                j += 1
            parts.append("_" if j - i == 1 else f"_x{j - i}")
        elif token == STALE:
            parts.append(STALE)
        elif isinstance(token, float):
            following = tokens[j] if j < len(tokens) else None
            delta = following - token if isinstance(following, float) else 0.0
            value = token
            while j < len(tokens) and tokens[j] == value + delta:
                value += delta
                j += 1
            if j - i == 1:
                parts.append(number(token))
            else:
                sign = "-" if delta < 0 else "+"
                parts.append(f"{number(token)}{sign}{number(abs(delta))}x{j - i - 1}")
        i = j
    return " ".join(parts)


def series_selector(name: str, labels: Labels) -> str:
    def quote(value: str) -> str:
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'

    inner = ",".join(f"{k}={quote(v)}" for k, v in labels)
    return f"{name}{{{inner}}}"


def input_series(
    series: RecordedSeries, grid: Sequence[GridPoint], start: float, step: float
) -> list[dict[str, str]]:
    out = []
    for (name, labels), points in series:
        tokens = tokens_on_grid(points, grid, start, step, counter=is_counter(name))
        if any(isinstance(t, float) for t in tokens):
            out.append({"series": series_selector(name, labels), "values": encode(tokens)})
    return out
