"""`kubedrill bench`: run drills N times each and print, per figure, how stable it is.

Each drill runs through pytest exactly as a user runs it (`--count N`, pytest-repeat), so the
figures are the product's own; this module only aggregates the session's summary.json. Per
figure: p50, p95 and max of the polled seconds, the error against the cluster's own record of
the moment (see kubedrill.server_record), and the pass rate against its budget; per drill the
runner's own CPU while the fault was held.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def base_name(drill: str) -> str:
    """`test_kill_leader[3-10]` -> `test_kill_leader` (pytest-repeat's id)."""
    name = re.sub(r"\[\d+-\d+\]$", "", drill)
    return re.sub(r"-\d+-\d+\]$", "]", name)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (no interpolation: every figure printed was measured)."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


@dataclass
class FigureStats:
    drill: str
    figure: str
    budget_s: float | None = None
    seconds: list[float] = field(default_factory=list)
    within: list[bool] = field(default_factory=list)
    errors: list[float] = field(default_factory=list)  # polled - server record
    unrecorded: int = 0
    disagreements: int = 0

    @property
    def runs(self) -> int:
        return len(self.seconds)

    def row(self) -> dict[str, Any]:
        abs_errors = [abs(e) for e in self.errors]
        return {
            "drill": self.drill,
            "figure": self.figure,
            "runs": self.runs,
            "p50_s": _r(percentile(self.seconds, 50)),
            "p95_s": _r(percentile(self.seconds, 95)),
            "max_s": _r(max(self.seconds, default=math.nan)),
            "budget_s": self.budget_s,
            "pass_rate": _r(sum(self.within) / len(self.within)) if self.within else None,
            "error_p50_s": _r(percentile(abs_errors, 50)),
            "error_p95_s": _r(percentile(abs_errors, 95)),
            "error_max_s": _r(max(abs_errors, default=math.nan)),
            "recorded": len(self.errors),
            "disagreements": self.disagreements,
        }


def _r(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 3)


@dataclass
class DrillStats:
    drill: str
    runs: int = 0
    passed: int = 0
    measuring_cpu: list[float] = field(default_factory=list)  # % of a core, fault held
    workload_cpu: list[float] = field(default_factory=list)
    held_seconds: list[float] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        return {
            "drill": self.drill,
            "runs": self.runs,
            "passed": self.passed,
            "measuring_cpu_pct": _r(self.pooled(self.measuring_cpu)),
            "measuring_cpu_pct_max": _r(max(self.measuring_cpu, default=math.nan)),
            "workload_cpu_pct": _r(self.pooled(self.workload_cpu)),
            "fault_held_s": _r(sum(self.held_seconds)),
        }

    def pooled(self, percents: Sequence[float]) -> float:
        """CPU over every run's held fault together (CPU-seconds over seconds): one run holds
        a fault for about a second, and the kernel counts CPU in 10 ms ticks, so a single run's
        figure is only good to about 1 % of a core; the pooled one is good to 1 % / runs."""
        if not percents or len(percents) != len(self.held_seconds):
            return math.nan
        total = sum(self.held_seconds)
        return sum(p * s for p, s in zip(percents, self.held_seconds, strict=True)) / total


def held_cpu(summary: Mapping[str, Any]) -> tuple[float, float, float] | None:
    """(measuring, workload % of a core, seconds) while the fault was held, from the drill's
    runner_cpu record; None when the drill has none."""
    record = (summary.get("recorders") or {}).get("runner_cpu") or {}
    window = record.get("fault_held") or {}
    categories = window.get("percent_of_core") or {}
    if "measuring" not in categories or not window.get("seconds"):
        return None
    return (
        float(categories["measuring"]),
        float(categories.get("workload", 0.0)),
        float(window["seconds"]),
    )


def aggregate(summaries: Iterable[Mapping[str, Any]]) -> tuple[list[FigureStats], list[DrillStats]]:
    figures: dict[tuple[str, str], FigureStats] = {}
    drills: dict[str, DrillStats] = {}
    for summary in summaries:
        name = base_name(str(summary.get("drill", "?")))
        stats = drills.setdefault(name, DrillStats(name))
        stats.runs += 1
        stats.passed += summary.get("verdict") == "passed"
        held = held_cpu(summary)
        if held is not None:
            stats.measuring_cpu.append(held[0])
            stats.workload_cpu.append(held[1])
            stats.held_seconds.append(held[2])
        rows = (summary.get("observations") or {}).get("server_records") or []
        records = {r.get("measurement"): r for r in rows}
        for m in summary.get("measurements") or []:
            key = (name, str(m["name"]))
            fig = figures.setdefault(key, FigureStats(name, str(m["name"]), m.get("budget_s")))
            fig.seconds.append(float(m["seconds"]))
            fig.within.append(bool(m.get("within")))
            record = records.get(m["name"])
            if record is None or record.get("difference_s") is None:
                fig.unrecorded += record is not None
                continue
            fig.errors.append(float(record["difference_s"]))
            fig.disagreements += record.get("agrees") is False
    return list(figures.values()), list(drills.values())


def render(figures: Sequence[FigureStats], drills: Sequence[DrillStats]) -> str:
    head = (
        f"{'drill':42s} {'figure':18s} {'runs':>4s} {'p50':>7s} {'p95':>7s} {'max':>7s} "
        f"{'budget':>6s} {'pass':>5s}  {'|err| p50':>9s} {'p95':>6s} {'max':>6s} {'rec':>4s}"
    )
    lines = [head]
    for fig in figures:
        row = fig.row()
        lines.append(
            f"{fig.drill:42s} {fig.figure:18s} {fig.runs:4d} {_s(row['p50_s'])} "
            f"{_s(row['p95_s'])} {_s(row['max_s'])} {_s(fig.budget_s, 6)} "
            f"{_pct(row['pass_rate'])}  {_s(row['error_p50_s'], 9)} {_s(row['error_p95_s'], 6)} "
            f"{_s(row['error_max_s'], 6)} {len(fig.errors):4d}"
        )
    lines += ["", f"{'drill':42s} {'runs':>4s} {'passed':>6s} {'fault held':>10s} "
              f"{'measuring CPU % (all/max run)':>30s} {'workload CPU %':>15s}"]  # fmt: skip
    for d in drills:
        row = d.row()
        lines.append(
            f"{d.drill:42s} {d.runs:4d} {d.passed:6d} {_s(row['fault_held_s'], 9)}s "
            f"{_s(row['measuring_cpu_pct'], 16)} / {_s(row['measuring_cpu_pct_max'], 11)} "
            f"{_s(row['workload_cpu_pct'], 15)}"
        )
    return "\n".join(lines)


def _s(value: float | None, width: int = 7) -> str:
    return f"{'-':>{width}s}" if value is None else f"{value:{width}.3f}"


def _pct(value: float | None) -> str:
    return f"{'-':>5s}" if value is None else f"{value * 100:4.0f}%"


def run(
    *,
    runs: int,
    select: str,
    reports: Path,
    pytest_args: Sequence[str] = (),
    drills_dir: Path = Path("drills"),
) -> int:
    """Run the selected drills `runs` times each in one pytest session; return its exit code."""
    argv = [
        sys.executable, "-m", "pytest", str(drills_dir),
        "--count", str(runs), "--repeat-scope", "function", "-k", select,
        "--kubedrill-reports", str(reports), "-q", *pytest_args,
    ]  # fmt: skip
    return subprocess.run(argv, check=False).returncode


def load(reports: Path) -> list[dict[str, Any]]:
    data = json.loads((reports / "summary.json").read_text())
    drills: list[dict[str, Any]] = data.get("drills", [])
    return drills
