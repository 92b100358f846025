"""kubedrill benchmarks, run on demand (`make bench`); figures are printed, never asserted.

1. lab-up and lab-down time with binaries cached, per topology and member count (the table of
   `benchmarks/lab_lifecycle.py`, which `make bench` runs too);
2. the runner's failover measurement vs the election time etcd itself logs ("became leader at
   term N"): the runner's measurement error;
3. the poll interval actually achieved (probe latency + wait).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import time
from dataclasses import asdict
from pathlib import Path

import lab_lifecycle
from kubedrill.budgets import Budgets
from kubedrill.cluster import Cluster
from kubedrill.drill import Drill
from kubedrill.faults import KillComponent, Selector
from kubedrill.ledger import Ledger
from kubedrill.probes import etcd_checks
from kubedrill.probes.etcd import EtcdClient
from kubedrill.targets.lab import lab
from kubedrill.targets.lab.config import LabConfig, load_lab_config


def quiet(_message: str) -> None:
    pass


def etcd_elected_wall(cluster: Cluster, node: str, term: int) -> float | None:
    """Wall time at which `node` logged 'became leader at term <term>'."""
    text = cluster.control.logs(cluster.node(node), "etcd")
    for line in text.splitlines():
        if f"became leader at term {term}" not in line or not line.startswith("{"):
            continue
        ts = json.loads(line).get("ts")
        if isinstance(ts, str):
            return dt.datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
    return None


def one_failover(cluster: Cluster, index: int) -> dict[str, float]:
    drill = Drill(f"bench-{index}", cluster, Budgets.defaults(), ledger=Ledger())
    etcd = drill.etcd
    try:
        drill.steady_state("healthy", lambda: etcd_checks.all_healthy(etcd))
        before = etcd.leader_view()
        with drill.fault(KillComponent("etcd", Selector.leader())):
            view = drill.wait_for(
                "leader.elected",
                lambda: etcd_checks.new_leader(etcd, before),
                budget="leader_election",
            )
        runner_s = drill.offset("leader.elected") - drill.offset("fault.injecting")
        inject_wall = drill.timeline.wall_start + drill.offset("fault.injecting")
        logged = etcd_elected_wall(cluster, view.leader or "", view.term)
        etcd_s = (logged - inject_wall) if logged else float("nan")
        drill.wait_for("healthy", lambda: etcd_checks.all_healthy(etcd), budget="recovery")
    finally:
        drill.close()
    return {"runner_s": runner_s, "etcd_logged_s": etcd_s, "error_s": runner_s - etcd_s}


def bench_failover(config: LabConfig, runs: int) -> list[dict[str, float]]:
    cluster = lab.up(config, progress=quiet)
    try:
        return [one_failover(cluster, i) for i in range(runs)]
    finally:
        lab.down(config, progress=quiet)


def bench_poll(config: LabConfig, samples: int, interval: float) -> dict[str, float]:
    cluster = lab.up(config, progress=quiet)
    etcd = EtcdClient(cluster.etcd, timeout=0.8)
    latencies, gaps = [], []
    try:
        last = time.monotonic()
        for _ in range(samples):
            started = time.monotonic()
            etcd.leader_view()
            latencies.append(time.monotonic() - started)
            time.sleep(interval)
            now = time.monotonic()
            gaps.append(now - last)
            last = now
    finally:
        etcd.close()
        lab.down(config, progress=quiet)
    lat = sorted(latencies)
    return {
        "requested_interval_s": interval,
        "probe_latency_median_s": statistics.median(lat),
        "probe_latency_p95_s": lat[int(len(lat) * 0.95) - 1],
        "achieved_interval_median_s": statistics.median(gaps[1:]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3, help="lab-up repetitions")
    parser.add_argument("--failovers", type=int, default=5, help="leader kills to time")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    results: dict[str, object] = {}

    lab_rows = [lab_lifecycle.measure(case, args.runs) for case in lab_lifecycle.CASES]
    results["lab_lifecycle"] = [asdict(row) for row in lab_rows]
    print(lab_lifecycle.render(lab_rows))

    config = load_lab_config(None, name="kdbf", topology="etcd", subnet="10.213.30.0/24")
    rows = bench_failover(config, args.failovers)
    results["failover"] = rows
    for row in rows:
        print(
            f"failover runner {row['runner_s']:.3f} s   etcd logged {row['etcd_logged_s']:.3f} s"
            f"   runner error {row['error_s'] * 1000:+.0f} ms"
        )
    errors = [r["error_s"] for r in rows if r["error_s"] == r["error_s"]]
    if errors:
        runner = statistics.median(r["runner_s"] for r in rows)
        print(
            f"failover median {runner:.3f} s; runner error median "
            f"{statistics.median(errors) * 1000:+.0f} ms, max {max(errors) * 1000:+.0f} ms "
            f"(ratio runner/etcd {runner / statistics.median(r['etcd_logged_s'] for r in rows):.3f})"  # noqa: E501
        )

    poll = bench_poll(config, 100, 0.1)
    results["poll"] = poll
    print(
        f"poll     requested {poll['requested_interval_s'] * 1000:.0f} ms, achieved "
        f"{poll['achieved_interval_median_s'] * 1000:.0f} ms; probe latency median "
        f"{poll['probe_latency_median_s'] * 1000:.1f} ms, p95 "
        f"{poll['probe_latency_p95_s'] * 1000:.1f} ms"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
