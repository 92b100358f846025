"""Budgets: duration parsing, overrides and NAME=DURATION assignments."""

from __future__ import annotations

import math

import pytest

from kubedrill.budgets import DEFAULT_BUDGETS, Budgets, parse_assignments, parse_duration
from kubedrill.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("15", 15.0),
        ("15s", 15.0),
        ("1.5s", 1.5),
        (".5", 0.5),
        ("500ms", 0.5),
        ("1m", 60.0),
        ("2.5m", 150.0),
        ("  10 s  ", 10.0),
        (7, 7.0),
        (0.25, 0.25),
    ],
)
def test_parse_duration_accepts(text: str | float, seconds: float) -> None:
    assert parse_duration(text, field="x") == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text",
    ["", "abc", "1h", "15S", "1.", "1e3", "s", "10 seconds", "1,5"],
)
def test_parse_duration_rejects_junk(text: str) -> None:
    with pytest.raises(ConfigError, match=r"budget 'leader_election': .* is not a duration"):
        parse_duration(text, field="leader_election")


@pytest.mark.parametrize(
    "value", [0, 0.0, "0", "0s", "0ms", "-1", "-1s", -3, -0.5, math.inf, math.nan]
)
def test_parse_duration_rejects_non_positive_and_non_finite(value: str | float) -> None:
    with pytest.raises(ConfigError, match="must be a positive duration"):
        parse_duration(value, field="recovery")


@pytest.mark.parametrize("value", [True, False])
def test_parse_duration_rejects_bool(value: bool) -> None:
    with pytest.raises(ConfigError, match="is not a duration") as info:
        parse_duration(value, field="detect")
    assert "'detect'" in info.value.message
    assert info.value.hint  # tells the user how to write a duration


def test_defaults_match_seed_and_are_a_copy() -> None:
    budgets = Budgets.defaults()
    assert dict(budgets.limits) == {
        "leader_election": 15.0,
        "detect": 15.0,
        "lease_takeover": 30.0,
        "recovery": 60.0,
        "api_recovery": 60.0,
        "disaster_recovery": 300.0,
        "settle": 30.0,
        "reschedule": 90.0,
        "region_rto": 300.0,
        "region_catch_up": 300.0,
        "request": 5.0,
    }
    assert budgets.limits is not DEFAULT_BUDGETS
    assert budgets["leader_election"] == 15.0


def test_overridden_parses_and_does_not_mutate_the_original() -> None:
    base = Budgets.defaults()
    new = base.overridden({"leader_election": "5s", "recovery": 90, "detect": "250ms"})
    assert new["leader_election"] == 5.0
    assert new["recovery"] == 90.0
    assert new["detect"] == pytest.approx(0.25)
    assert new["lease_takeover"] == 30.0  # untouched names keep their value
    assert base["leader_election"] == 15.0
    assert base["recovery"] == 60.0


def test_overrides_apply_in_order_last_wins() -> None:
    budgets = (
        Budgets.defaults()
        .overridden({"leader_election": "10"})
        .overridden({"leader_election": "3s"})
    )
    assert budgets["leader_election"] == 3.0


def test_overridden_rejects_unknown_budget_and_lists_known() -> None:
    with pytest.raises(ConfigError, match="unknown budget 'leader_elcetion'") as info:
        Budgets.defaults().overridden({"leader_elcetion": "5"})
    assert "leader_election" in info.value.hint
    assert "api_recovery" in info.value.hint


def test_overridden_rejects_bad_value_naming_the_budget() -> None:
    with pytest.raises(ConfigError, match="budget 'recovery'"):
        Budgets.defaults().overridden({"recovery": "soon"})


def test_getitem_unknown_raises_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown budget 'nope'") as info:
        Budgets.defaults()["nope"]
    assert info.value.hint.startswith("known budgets: ")
    assert "recovery" in info.value.hint


def test_parse_assignments_splits_items_and_whitespace() -> None:
    parsed = parse_assignments(
        ["leader_election=10s recovery=1m", "detect=500ms"], source="kubedrill_budgets"
    )
    assert parsed == {"leader_election": "10s", "recovery": "1m", "detect": "500ms"}


def test_parse_assignments_last_duplicate_wins() -> None:
    assert parse_assignments(["recovery=1", "recovery=2"], source="--budget") == {"recovery": "2"}


def test_parse_assignments_empty() -> None:
    assert parse_assignments([], source="--budget") == {}
    assert parse_assignments(["", "   "], source="--budget") == {}


@pytest.mark.parametrize("item", ["recovery", "=5", "recovery=", "="])
def test_parse_assignments_rejects_malformed(item: str) -> None:
    with pytest.raises(ConfigError, match=r"--budget: .* is not NAME=DURATION"):
        parse_assignments([item], source="--budget")


def test_assignments_feed_overrides() -> None:
    parsed = parse_assignments(["leader_election=15", "recovery=60"], source="ini")
    budgets = Budgets.defaults().overridden(parsed)
    assert budgets["leader_election"] == 15.0
    assert budgets["recovery"] == 60.0
