"""Availability spent: merged client windows, the seed's levels per month, the game day sum."""

from __future__ import annotations

from typing import Any

import pytest

from kubedrill import error_budget as eb
from kubedrill.workload.history import Operation


def op(client: str, invoke: float, outcome: str = "ok") -> Operation:
    return Operation(client, "put", "/k", "v", invoke, invoke + 0.05, outcome, 1)


def test_a_month_of_the_seed_levels() -> None:
    # The seed's yearly downtime, a twelfth of it: 99.9 % -> 8.76 h a year -> 43.8 min.
    assert eb.monthly_budget_s(99.9) == pytest.approx(43.8 * 60)
    assert eb.monthly_budget_s(99.99) == pytest.approx(52.56 * 60 / 12)


def test_overlapping_windows_count_once() -> None:
    assert eb.merged_seconds([(0, 2), (1, 3), (5, 6), (5.5, 5.8)]) == 4.0
    assert eb.merged_seconds([]) == 0.0


def test_unavailable_while_any_client_fails() -> None:
    ops = [
        op("api-a", 0.0), op("api-a", 1.0, "fail"), op("api-a", 1.5, "fail"), op("api-a", 3.0),
        op("api-b", 0.0), op("api-b", 2.0, "fail"), op("api-b", 4.0),
        op("etcd-kv", 0.0), op("etcd-kv", 10.0, "fail"), op("etcd-kv", 20.0),
        op("api-seed", -5.0, "fail"), op("api-seed", -4.0),
    ]  # fmt: skip
    budget = eb.for_operations(ops)
    # api-a fails 1.0-3.0, api-b 2.0-4.0: 3 s; etcd's 10 s and the seed are not counted.
    assert budget.through == "api" and budget.unavailable_s == pytest.approx(3.0)
    level3 = next(lv for lv in budget.levels() if lv["availability_pct"] == 99.9)
    assert level3["spent_pct"] == pytest.approx(100 * 3.0 / (43.8 * 60), abs=1e-4)


def test_etcd_clients_when_there_is_no_api() -> None:
    budget = eb.for_operations([op("etcd-kv", 0.0, "fail"), op("etcd-kv", 2.5)])
    assert budget.through == "etcd" and budget.unavailable_s == pytest.approx(2.5)
    assert budget.line().startswith("etcd unavailable 2.500 s")


def test_game_day_adds_the_drills_up() -> None:
    drills: list[dict[str, Any]] = [
        {"error_budget": eb.ErrorBudget("api", 2.0).to_dict()},
        {"error_budget": eb.ErrorBudget("etcd", 1.5).to_dict()},
        {"drill": "dry run: no budget"},
    ]
    whole = eb.game_day(drills)
    assert whole is not None and whole.through == "api" and whole.unavailable_s == 3.5
    assert eb.game_day([{"drill": "x"}]) is None
