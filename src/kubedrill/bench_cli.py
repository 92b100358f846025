"""`kubedrill bench`: the CLI of kubedrill.bench (run drills N times, print their stability)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from kubedrill import bench
from kubedrill.errors import ConfigError

# kill, isolate and pause of the etcd leader: the figures the README's table carries.
DEFAULT_SELECT = "test_kill_leader or test_isolate_leader or test_pause_leader"


def add_bench_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bench_p = sub.add_parser(
        "bench",
        help="run drills N times each; print p50/p95/max, error against the cluster's own "
        "record, pass rate and runner CPU per figure",
    )
    bench_p.add_argument("--runs", type=int, default=10, help="runs of each drill (default 10)")
    bench_p.add_argument(
        "-k", dest="select", default=DEFAULT_SELECT, help=f"drills (default: {DEFAULT_SELECT})"
    )
    bench_p.add_argument(
        "--reports", type=Path, default=Path("reports/bench"), help="where the runs' reports go"
    )
    bench_p.add_argument(
        "--from",
        dest="from_reports",
        type=Path,
        help="print the table of an earlier run's reports directory; run nothing",
    )
    bench_p.add_argument(
        "pytest_args",
        nargs=argparse.REMAINDER,
        help="after --: passed to pytest (e.g. -- --lab-config fixtures/labs/x.yaml --lab-keep)",
    )
    bench_p.set_defaults(func=cmd_bench)


def cmd_bench(args: argparse.Namespace) -> int:
    if args.runs < 1:
        raise ConfigError(f"--runs must be at least 1, got {args.runs}", "e.g. --runs 10")
    reports: Path = args.from_reports or args.reports
    code = 0
    if args.from_reports is None:
        extra = [a for a in args.pytest_args if a != "--"]
        code = bench.run(runs=args.runs, select=args.select, reports=reports, pytest_args=extra)
    if not (reports / "summary.json").is_file():
        raise ConfigError(
            f"no summary.json in {reports}",
            "run `kubedrill bench` first, or name the reports directory of a drill run",
        )
    figures, drills = bench.aggregate(bench.load(reports))
    print(bench.render(figures, drills))
    out = reports / "bench.json"
    out.write_text(
        json.dumps(
            {"figures": [f.row() for f in figures], "drills": [d.row() for d in drills]},
            indent=2,
        )
    )
    print(f"\nbench figures: {out}")
    # A drill that failed a budget is a figure, not a broken bench: exit 1 says so.
    return 0 if code in (0, 1) and all(d.passed == d.runs for d in drills) else 1
