"""Availability spent: a drill's (and a game day's) client-observed unavailability against the
seed's HA levels, as a share of each level's monthly error budget.

The seed gives its levels as yearly downtime (99 % = 87.6 h a year ... 99.99 % = 52.6 min);
a month here is a twelfth of its 365-day year, so 99.9 % allows 43.8 min a month.

Unavailability is what clients saw: the time during which at least one client's requests
were failing (each client's failure windows, `workload.history.unavailability_windows`, merged
across clients). Through the API where the drill had API clients (the consistency workload's
ConfigMap clients, the drill's API readers), else through etcd's own clients. A moment when
one client failed while another got through counts: for that client the API was down.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kubedrill.workload.history import Operation, unavailability_windows

# The seed's HA levels (section 1.2), by name and availability in percent.
HA_LEVELS: tuple[tuple[str, float], ...] = (
    ("Level 1", 99.0),
    ("Level 2", 99.5),
    ("Level 3", 99.9),
    ("Level 4", 99.95),
    ("Level 5", 99.99),
)
YEAR_S = 365 * 86400
MONTH_S = YEAR_S / 12


def monthly_budget_s(availability_pct: float) -> float:
    """Downtime a level allows in a month, in seconds."""
    return (100.0 - availability_pct) / 100.0 * MONTH_S


def merged_seconds(intervals: Iterable[tuple[float, float]]) -> float:
    """The total length covered by the intervals (overlaps counted once)."""
    total = 0.0
    end = float("-inf")
    for start, stop in sorted(intervals):
        if stop <= end:
            continue
        total += stop - max(start, end)
        end = stop
    return total


def unavailable_seconds(ops: Sequence[Operation]) -> float:
    """Seconds during which at least one client's requests were failing."""
    windows = []
    for client in {op.client for op in ops}:
        mine = [op for op in ops if op.client == client]
        windows += [(w.start, w.end) for w in unavailability_windows(mine)]
    return merged_seconds(windows)


def client_operations(ops: Sequence[Operation]) -> tuple[str, list[Operation]]:
    """The operations the budget is counted on: ("api", the API clients') when there are
    any, else ("etcd", etcd clients'). Seed writes (before the drill) are left out."""
    real = [op for op in ops if not op.client.endswith("seed")]
    api = [op for op in real if op.client.startswith("api")]
    return ("api", api) if api else ("etcd", real)


@dataclass(frozen=True)
class ErrorBudget:
    through: str  # "api" or "etcd"
    unavailable_s: float

    def levels(self) -> list[dict[str, Any]]:
        return [
            {
                "level": name,
                "availability_pct": pct,
                "monthly_budget_s": round(monthly_budget_s(pct), 1),
                "spent_pct": round(100.0 * self.unavailable_s / monthly_budget_s(pct), 4),
            }
            for name, pct in HA_LEVELS
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "through": self.through,
            "unavailable_s": round(self.unavailable_s, 3),
            "month_s": MONTH_S,
            "levels": self.levels(),
        }

    def line(self) -> str:
        """`API unavailable 1.234 s: 99.9 % 0.047 % of a month's budget, 99.99 % 0.47 %`."""
        spent = {lv["availability_pct"]: lv["spent_pct"] for lv in self.levels()}
        return (
            f"{self.through.upper() if self.through == 'api' else 'etcd'} unavailable "
            f"{self.unavailable_s:.3f} s: of a month's budget "
            + ", ".join(f"{pct:g} % {spent[pct]:.3g} %" for pct in (99.9, 99.95, 99.99))
        )


def for_operations(ops: Sequence[Operation]) -> ErrorBudget:
    through, counted = client_operations(ops)
    return ErrorBudget(through, unavailable_seconds(counted))


def game_day(drills: Sequence[Mapping[str, Any]]) -> ErrorBudget | None:
    """The whole run's: drills run one after the other, so their unavailability adds up.
    Through the API when any drill counted through it (an etcd-only drill of the same game
    day adds its etcd unavailability: the API would have been down then too)."""
    budgets = [d["error_budget"] for d in drills if d.get("error_budget")]
    if not budgets:
        return None
    through = "api" if any(b["through"] == "api" for b in budgets) else "etcd"
    return ErrorBudget(through, sum(float(b["unavailable_s"]) for b in budgets))
