"""Lab lifecycle figures (`make bench`): how long `lab up` and `lab down` take, per topology and
member count, with the binaries already cached. Each lab is brought up and down `--runs` times;
after every down, whatever it left behind (namespace, link, state dir, process) is listed, and a
lab that left anything makes the run fail (exit 1).

Labs of their own (kdb3e, kdb5e, kdb7e, kdb3s, kdb5s, kdb3x), so a lab you keep up is left alone.

    python benchmarks/lab_lifecycle.py [--runs 5] [--kube-runs 3] [--only etcd] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from kubedrill.targets.lab import lab, network, topology
from kubedrill.targets.lab.config import LabConfig, load_lab_config


@dataclass(frozen=True)
class Case:
    name: str
    topology: str
    members: int
    subnet: str


# Subnets kept for this benchmark; the external lab reuses the stacked one (one lab at a time).
CASES = (
    Case("kdb3e", "etcd", 3, "10.213.23.0/24"),
    Case("kdb5e", "etcd", 5, "10.213.25.0/24"),
    Case("kdb7e", "etcd", 7, "10.213.27.0/24"),
    Case("kdb3s", "stacked", 3, "10.213.74.0/24"),
    Case("kdb5s", "stacked", 5, "10.213.75.0/24"),
    Case("kdb3x", "external", 3, "10.213.74.0/24"),
)


@dataclass(frozen=True)
class Row:
    topology: str
    members: int
    hosts: int
    runs: int
    up_median_s: float
    up_max_s: float
    down_median_s: float
    down_max_s: float
    left: tuple[str, ...]


def config_for(case: Case) -> LabConfig:
    config = load_lab_config(
        None, name=case.name, topology=case.topology, members=case.members, subnet=case.subnet
    )
    if case.topology == "stacked":
        # Stacked members are the control-plane hosts: the member count is theirs.
        config = replace(config, kubernetes=replace(config.kubernetes, control_planes=case.members))
    return config


def leftovers(name: str) -> list[str]:
    """What a lab named `name` could leave behind; empty when `down` removed everything."""
    found = [f"netns {ns}" for ns in network.existing_netns() if ns.startswith(f"kd-{name}-")]
    found += [f"link {link}" for link in lab_links(name)]
    state = LabConfig(name=name).state_dir
    if state.exists():
        found.append(f"state dir {state}")
    procs = subprocess.run(["pgrep", "-f", f"/labs/{name}/"], capture_output=True, text=True)
    found += [f"process {pid}" for pid in procs.stdout.split()]
    return found


def lab_links(name: str) -> list[str]:
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    names = [line.split(":")[1].strip().split("@")[0] for line in out.splitlines()]
    return [n for n in names if n == f"kd-{name}" or n.startswith(f"kdv-{name}-")]


def measure(case: Case, runs: int) -> Row:
    config = config_for(case)
    ups: list[float] = []
    downs: list[float] = []
    left: list[str] = []
    for _ in range(runs):
        started = time.monotonic()
        lab.up(config, progress=lambda _m: None)
        ups.append(time.monotonic() - started)
        started = time.monotonic()
        lab.down(config, progress=lambda _m: None)
        downs.append(time.monotonic() - started)
        left += leftovers(case.name)
    return Row(
        topology=case.topology,
        members=case.members,
        hosts=len(topology.hosts(config)),
        runs=runs,
        up_median_s=statistics.median(ups),
        up_max_s=max(ups),
        down_median_s=statistics.median(downs),
        down_max_s=max(downs),
        left=tuple(left),
    )


def render(rows: list[Row]) -> str:
    lines = [
        f"{'topology':9s} {'members':>7s} {'hosts':>5s} {'runs':>4s}  "
        f"{'up median':>9s} {'up max':>7s}  {'down median':>11s} {'down max':>8s}  left",
    ]
    for r in rows:
        lines.append(
            f"{r.topology:9s} {r.members:7d} {r.hosts:5d} {r.runs:4d}  "
            f"{r.up_median_s:8.2f}s {r.up_max_s:6.2f}s  {r.down_median_s:10.2f}s "
            f"{r.down_max_s:7.2f}s  {', '.join(r.left) or 'nothing'}"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5, help="up/down cycles per etcd lab")
    parser.add_argument(
        "--kube-runs", type=int, default=3, help="up/down cycles per stacked/external lab"
    )
    parser.add_argument("--only", choices=("etcd", "stacked", "external"), help="one topology")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    rows = []
    for case in CASES:
        if args.only and case.topology != args.only:
            continue
        runs = args.runs if case.topology == "etcd" else args.kube_runs
        rows.append(measure(case, runs))
        print(render(rows[-1:]).splitlines()[-1] if rows[:-1] else render(rows), flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=2))
    return 1 if any(r.left for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
