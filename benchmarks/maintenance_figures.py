"""The rolling-restart drills' figures from their runs' summary.json files (a Markdown table).

    python benchmarks/maintenance_figures.py seed=reports/seed-1/summary.json \
        fixed=reports/maintenance/summary.json ...

One row per run: failed requests (by reason), requests made, and each host's restart time;
for the etcd drill the failed writes and each member's restart time.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def rows(label: str, path: Path) -> list[str]:
    out = []
    for drill in json.loads(path.read_text())["drills"]:
        seen: dict[str, Any] = drill.get("observations", {})
        hosts = seen.get("hosts", [])
        per_host = ", ".join(f"{h['host']} {h['total_s']:.1f}" for h in hosts)
        if drill["drill"].startswith("test_rolling_restart_control_plane"):
            apiserver = ", ".join(
                f"{c['stop_s']:.1f}/{c['ready_s']:.1f}"
                for h in hosts
                for c in h["components"]
                if c["component"] == "kube-apiserver"
            )
            reasons = "; ".join(f"{n} {r}" for r, n in seen.get("failed_by_reason", {}).items())
            out.append(
                f"| {label} | control plane | {seen.get('failed_requests', '-')} "
                f"({reasons or 'none'}) | {seen.get('requests_through_lb', '-')} | {per_host} "
                f"| {apiserver} | {drill['verdict']} |"
            )
        elif drill["drill"].startswith("test_rolling_restart_etcd"):
            failed = seen.get("etcd_failed_writes", [])
            what = "; ".join(f"{f['client']} {f['kind']} {f['outcome']}" for f in failed)
            out.append(
                f"| {label} | etcd | {len(failed)} ({what or 'none'}) | "
                f"{seen.get('etcd_writes', '-')} writes | {per_host} | - | {drill['verdict']} |"
            )
    return out


def main(argv: list[str]) -> int:
    if not argv or any("=" not in a for a in argv):
        print("usage: maintenance_figures.py LABEL=summary.json ...", file=sys.stderr)
        return 2
    print(
        "| run | drill | failed | requests | per host restart (s) | apiserver stop/ready (s) "
        "| verdict |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for arg in argv:
        label, _, path = arg.partition("=")
        print("\n".join(rows(label, Path(path))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
