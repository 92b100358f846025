"""Each drill's measured figures on several targets, side by side (a Markdown table).

    python benchmarks/compare_targets.py lab=reports/summary.json kind=reports/kind/summary.json \
        ssh-on-kind=reports/kind-ssh/summary.json

Reads the `summary.json` files drill runs write; prints one row per (drill, figure) with the
seconds on each target, `BREACH` where a budget was exceeded, and the verdict of drills that
measured nothing there (skipped, failed early).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def load(path: Path) -> dict[str, dict[str, Any]]:
    drills = json.loads(path.read_text())["drills"]
    return {str(d["drill"]): d for d in drills}


def cell(drill: dict[str, Any] | None, figure: str) -> str:
    if drill is None:
        return "-"
    for m in drill.get("measurements", []):
        if m["name"] == figure:
            return f"{m['seconds']:.1f}" + ("" if m["within"] else " BREACH")
    return "-" if drill.get("verdict") == "passed" else str(drill.get("verdict", "-"))


def table(runs: dict[str, dict[str, dict[str, Any]]]) -> str:
    names = list(runs)
    rows = ["| drill | figure | " + " | ".join(names) + " |"]
    rows.append("| --- | --- | " + " | ".join("---:" for _ in names) + " |")
    drills = sorted({d for run in runs.values() for d in run})
    for drill in drills:
        figures: list[str] = []
        for run in runs.values():
            for m in run.get(drill, {}).get("measurements", []):
                if m["name"] not in figures:
                    figures.append(m["name"])
        for figure in figures or ["(none)"]:
            cells = [cell(runs[n].get(drill), figure) for n in names]
            rows.append(f"| {drill} | {figure} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main(argv: list[str]) -> int:
    if not argv or any("=" not in a for a in argv):
        print("usage: compare_targets.py NAME=summary.json [NAME=summary.json ...]")
        return 2
    runs = {a.split("=", 1)[0]: load(Path(a.split("=", 1)[1])) for a in argv}
    print(table(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
