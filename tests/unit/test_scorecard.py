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


def on_version(run: dict[str, Any], version: str) -> dict[str, Any]:
    return {**run, "facts": {**run["facts"], "kubernetes_version": version}}


def test_two_minors_side_by_side(tmp_path: Path) -> None:
    new = {"drills": [on_version(drill("test_kill_leader", 1.0), "v1.37.2"),
                      on_version(drill("test_only_new", 2.0), "v1.37.2")]}  # fmt: skip
    failed = drill("test_only_old", 3.0, verdict="failed")
    old = {"drills": [on_version(drill("test_kill_leader", 2.0), "v1.36.3"),
                      on_version(failed, "v1.36.3")]}  # fmt: skip
    (tmp_path / "new.json").write_text(json.dumps(new))
    (tmp_path / "old.json").write_text(json.dumps(old))
    history = tmp_path / "history.jsonl"
    index = scorecard.write(tmp_path / "new.json", tmp_path / "html", history,
                            versus=[tmp_path / "old.json"])  # fmt: skip
    page = index.read_text()
    table = page.split("<table class='versions'>")[1].split("</table>")[0]
    # One column per minor, the default's first; one row per drill either ran.
    assert table.index("data-version='v1.37.2'") < table.index("data-version='v1.36.3'")
    assert "1 passed, 1 failed" in table
    rows = dict((part.split("'", 1)[0], part) for part in table.split("<tr data-drill='")[1:])
    assert set(rows) == {"test_kill_leader", "test_only_new", "test_only_old"}
    # 2.0 s on the previous minor against 1.0 s on the default: marked slower there only.
    assert rows["test_kill_leader"].count("&#9650; slower") == 1
    assert rows["test_kill_leader"].index("1.000 s") < rows["test_kill_leader"].index("slower")
    assert "not run" in rows["test_only_new"] and "not run" in rows["test_only_old"]
    assert "failed" in rows["test_only_old"]
    # Only the default's run goes into the trend history.
    (entry,) = scorecard.read_history(history)
    assert set(entry["drills"]) == {"test_kill_leader", "test_only_new"}
    # Without another minor there is no side-by-side table.
    alone = scorecard.render(scorecard.build(new))
    assert "class='versions'" not in alone


def test_compare_marks_beyond_the_tolerance() -> None:
    base = scorecard.Figure("leader_election", 1.0, 15.0, True)
    assert scorecard.compare(base, scorecard.Figure("leader_election", 1.19, 15.0, True)) == "same"
    assert scorecard.compare(base, scorecard.Figure("leader_election", 1.3, 15.0, True)) == "slower"
    assert scorecard.compare(base, scorecard.Figure("leader_election", 0.7, 15.0, True)) == "faster"


def test_missing_versus_summary_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "new.json").write_text(json.dumps({"drills": [drill("test_a", 1.0)]}))
    with pytest.raises(ConfigError, match="cannot read"):
        scorecard.write(tmp_path / "new.json", tmp_path / "html", tmp_path / "h.jsonl",
                        versus=[tmp_path / "missing.json"])  # fmt: skip
