"""What the runner costs in CPU during one drill-like run on the stacked lab (issue #12).

The sequence is the pytest fixture's and `test_stop_follower`'s: consistency workload and
metrics recorder on, steady state, a writer, then `StopComponent("etcd", Selector.follower())`
held for `--hold` seconds while the leader view is polled at the drill's fine interval (50 ms,
as while a drill waits for a new leader: the costliest poller), heal, wait for
the member to catch up, then `Drill.finish()` (consistency checks, alert rules). `RunnerCpu`
samples every thread throughout; printed: % of one core per category over the whole run and
while the fault was held ("fault.held" from the timeline's marks, "hold" exactly around
the poll), and the busiest threads.

Measured on a 2-core VM, stacked lab, default workload rate (one run each; figures move by a
point or two run to run; the VM was shared, load average 1.5-5). While the fault was held:
- before (c0ce2c6: prometheus_client's parser, Node objects deserialised): measuring 12.3 %,
  workload 17.9 % (53 req/s), other 0.4 %; whole run 24.6 %;
- after (783dd66): measuring 4.2-5.0 % (metrics pool ~3.5, etcd probes 0.3, this sampler
  0.1), workload 10.7-12.9 % (57 req/s), other 0.3 %; whole run 10.8-11.9 %. The workload's
  figure is not comparable: the etcd probe rewrite (6bd6bef) made its etcd clients cheaper,
  and its etcd watch failed at start in that tree (EtcdClient.session was gone).
- then (3feb0c5, leader view from the calling thread over kubedrill.probes.http11, the
  controller-manager and scheduler scraped with HEAD, the control plane every other round),
  with the leader polled every 50 ms for 20 s: measuring 4.6-5.1 % (metrics ~2, leader view
  ~1.5, main thread ~1.2). `kubedrill bench` pools every drill's held fault instead (README).

    .venv/bin/python benchmarks/runner_cpu.py --lab-config /tmp/kd/kdB-stacked.yaml --keep

The lab is brought up when it is not running (and taken down afterwards unless --keep).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from kubedrill.budgets import Budgets
from kubedrill.consistency.workload import WorkloadRates
from kubedrill.drill import Drill
from kubedrill.faults import Selector, StopComponent
from kubedrill.polling import poll_until
from kubedrill.probes import etcd_checks
from kubedrill.runner_cpu import CATEGORIES, RunnerCpu
from kubedrill.targets.lab import lab
from kubedrill.targets.lab.config import load_lab_config


def quiet(_message: str) -> None:
    pass


def drill_run(drill: Drill, cpu: RunnerCpu, hold: float, rate: float) -> None:
    etcd = drill.etcd
    drill.start_consistency(WorkloadRates().scaled(rate))
    drill.start_metrics()
    drill.steady_state("etcd healthy", lambda: etcd_checks.all_healthy(etcd))
    writer = drill.writer()
    drill.wait_for("writes.flowing", lambda: any(op.ok for op in writer.history()), timeout=10)
    with drill.fault(StopComponent("etcd", Selector.follower())) as fault, cpu.phase("hold"):
        # The costliest poller of a held fault: the leader view at the drill's fine interval
        # (50 ms), as while a drill waits for a new leader.
        poll_until(
            lambda: etcd.leader_view().leader is None,
            bool,
            timeout=hold,
            interval=drill.fine_poll_interval,
        )
    last_acked = max(op.revision for op in writer.history() if op.ok)
    drill.wait_for(
        "member.caught_up",
        lambda: etcd_checks.rejoined(etcd, fault.victims[0], last_acked),
        budget="recovery",
    )
    writer.stop()
    cpu.mark("checks")
    drill.finish()


def line(label: str, figures: dict[str, Any]) -> str:
    pct = figures["percent_of_core"]
    cells = "  ".join(f"{c} {pct[c]:5.1f}" for c in (*CATEGORIES, "unattributed", "total"))
    rate = figures.get("workload_requests_per_s")
    return f"{label:11s} {figures['seconds']:6.1f} s  {cells}  % of a core" + (
        f"  (workload {rate} req/s)" if rate is not None else ""
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lab-config", type=Path, default=None, help="stacked lab config YAML")
    parser.add_argument("--keep", action="store_true", help="leave the lab running")
    parser.add_argument("--hold", type=float, default=10.0, help="seconds the fault is held")
    parser.add_argument("--workload-rate", type=float, default=1.0, help="workload rate factor")
    parser.add_argument("--json", type=Path, help="also write RunnerCpu's summary here")
    args = parser.parse_args()
    overrides = {} if args.lab_config else {"name": "kdcpu", "subnet": "10.213.36.0/24"}
    config = load_lab_config(args.lab_config, topology="stacked", **overrides)
    cluster = lab.up(config, progress=quiet)
    drill = Drill("bench-runner-cpu", cluster, Budgets.defaults())
    # Every drill meters itself: phases from its timeline (as in a pytest run), and `hold`
    # exactly around the held fault.
    cpu = next(r for r in drill.recorders if isinstance(r, RunnerCpu))
    try:
        drill_run(drill, cpu, args.hold, args.workload_rate)
    finally:
        drill.close()
        cpu.stop()
        if not args.keep:
            lab.down(config, progress=quiet)
    summary = cpu.summary()
    print(line("whole run", summary["run"]))
    for phase, figures in summary["phases"].items():
        print(line(phase, figures))
    print("busiest threads over the run (% of a core):")
    for thread in summary["run"]["threads"]:
        print(f"  {thread['percent_of_core']:5.1f}  {thread['category']:9s}  {thread['name']}")
    held = summary["phases"]["hold"]["percent_of_core"]["measuring"]
    print(f"measuring while the fault was held: {held} % of a core (bound 5 %)")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
