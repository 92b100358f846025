"""The scorecard's content: one row per drill with its figures, checks and spend; trends only
against earlier runs on the same cluster; the history appended after reading."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kubedrill.error_budget import ErrorBudget
from kubedrill.errors import ConfigError
from kubedrill.report import scorecard


def drill(
    name: str,
    seconds: float,
    *,
    verdict: str = "passed",
    budget: float = 15.0,
    cluster: str = "lab/lab",
    checks: tuple[str, ...] = ("valid",),
) -> dict[str, Any]:
    return {
        "drill": name,
        "cluster": cluster,
        "verdict": verdict,
        "facts": {"target": "lab", "topology": "etcd", "etcd_version": "v3.6.16"},
        "measurements": [
            {
                "name": "leader_election",
                "seconds": seconds,
                "budget_s": budget,
                "within": seconds <= budget,
            },
        ],
        "checks": [{"check": f"check {i}", "status": s} for i, s in enumerate(checks)],
        "alerts": {"fired": ["EtcdNoLeader"]},
        "error_budget": ErrorBudget("etcd", 1.2).to_dict(),
    }


def test_rows_tiles_and_spend() -> None:
    summary = {"drills": [drill("test_kill_leader", 1.1), drill("test_slow", 20.0,
               verdict="failed", checks=("valid", "invalid"))]}  # fmt: skip
    card = scorecard.build(summary)
    assert [r.drill for r in card.rows] == ["test_kill_leader", "test_slow"]
    assert card.counts == {"passed": 1, "failed": 1}
    assert card.breaches == 1 and card.invalid_checks == 1
    assert card.unavailable_s == pytest.approx(2.4)
    page = scorecard.render(card)
    assert page.count("<tr data-drill=") == 2
    assert "BREACH" in page and "invalid</span> check 1" in page and "EtcdNoLeader" in page
    assert "allure/index.html" in page and "<script" not in page


def test_trend_against_the_same_clusters_earlier_runs() -> None:
    history = [
        scorecard.history_entry({"drills": [drill("test_kill_leader", s)]}, at=f"t{s}")
        for s in (1.0, 1.1, 1.2)
    ]
    history.append(
        scorecard.history_entry(
            {"drills": [drill("test_kill_leader", 9.0, cluster="kind/other")]}, at="x"
        )
    )
    slower = scorecard.build({"drills": [drill("test_kill_leader", 2.0)]}, history)
    (row,) = slower.rows
    assert slower.earlier_runs == 3
    kind, text = row.trend(row.figures[0])
    assert kind == "slower" and "median of 3 earlier: 1.100 s" in text
    same = scorecard.build({"drills": [drill("test_kill_leader", 1.15)]}, history).rows[0]
    assert same.trend(same.figures[0])[0] == "same"
    first = scorecard.build({"drills": [drill("test_new", 1.0)]}, history).rows[0]
    assert first.trend(first.figures[0])[0] == "new"


def test_write_compares_with_earlier_runs_then_appends(tmp_path: Path) -> None:
    summary = tmp_path / "summary.json"
    summary.write_text(json.dumps({"drills": [drill("test_kill_leader", 1.0)]}))
    history = tmp_path / "scorecard-history.jsonl"
    first = scorecard.write(summary, tmp_path / "html", history)
    assert "trend against 0 earlier run(s)" in first.read_text()
    scorecard.write(summary, tmp_path / "html", history)
    assert "trend against 1 earlier run(s)" in first.read_text()
    assert len(history.read_text().splitlines()) == 2


def test_bad_summary_and_history_are_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the run's summary"):
        scorecard.write(tmp_path / "missing.json", tmp_path, tmp_path / "h.jsonl")
    bad = tmp_path / "h.jsonl"
    bad.write_text("{}\nnot json\n")
    with pytest.raises(ConfigError, match="line 2 is not JSON"):
        scorecard.read_history(bad)
