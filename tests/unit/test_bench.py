"""kubedrill bench's aggregation: percentiles, pass rate, error against the record (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from kubedrill.bench import aggregate, base_name, percentile, render


def run(n: int, seconds: float, error: float | None, verdict: str = "passed") -> dict[str, Any]:
    records = [] if error is None else [
        {"measurement": "leader_election", "difference_s": error, "agrees": abs(error) <= 0.1}
    ]  # fmt: skip
    return {
        "drill": f"test_pause_leader[{n}-10]",
        "verdict": verdict,
        "measurements": [
            {
                "name": "leader_election",
                "seconds": seconds,
                "budget_s": 1.5,
                "within": seconds <= 1.5,
            },
        ],
        "observations": {"server_records": records},
        "recorders": {
            "runner_cpu": {
                "fault_held": {
                    "seconds": 1.0 if n < 10 else 3.0,
                    "percent_of_core": {"measuring": 3.0 + n, "workload": 9.0},
                }
            }
        },
    }


def test_repeat_ids_fold_into_one_drill() -> None:
    assert base_name("test_kill_leader[3-10]") == "test_kill_leader"
    assert base_name("test_x[pause-node-2-10]") == "test_x[pause-node]"
    assert base_name("test_gameday") == "test_gameday"


def test_nearest_rank_percentile() -> None:
    values = [float(v) for v in range(1, 21)]
    assert percentile(values, 50) == 10.0
    assert percentile(values, 95) == 19.0
    assert percentile([0.3], 95) == 0.3


def test_figures_per_drill_with_errors_and_pass_rate() -> None:
    runs = [run(n, 1.0 + n / 10, 0.02 * n) for n in range(1, 10)]
    runs.append(run(10, 2.0, None, verdict="failed"))  # over budget, no record
    figures, drills = aggregate(runs)
    (fig,) = figures
    row = fig.row()
    assert row["runs"] == 10 and row["recorded"] == 9
    assert row["pass_rate"] == 0.5  # 1.1 .. 1.5 within 1.5 s; 1.6 .. 2.0 not
    assert row["max_s"] == 2.0
    assert row["error_max_s"] == pytest.approx(0.18)
    assert row["disagreements"] == 4  # 0.12 .. 0.18 s late
    (drill,) = drills
    assert (drill.runs, drill.passed) == (10, 9)
    assert drill.row()["measuring_cpu_pct_max"] == 13.0
    # Pooled over the held windows: (4 + ... + 12) * 1 s + 13 * 3 s over 12 s.
    assert drill.row()["measuring_cpu_pct"] == pytest.approx((72 + 39) / 12, abs=1e-3)
    assert "test_pause_leader" in render(figures, drills)
