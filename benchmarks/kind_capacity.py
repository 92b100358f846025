"""How many kind workers this machine carries next to an HA control plane, run on demand
(`python benchmarks/kind_capacity.py --workers 1 2`); figures are printed, never asserted.

For each worker count: `kubedrill kind up` of kind-configs/ha.yaml with that many workers
(3 control-plane nodes, stacked etcd with the seed's 100 ms heartbeat / 1000 ms election
timeout), its wall time, then an idle window (default 3 minutes) in which the machine's load
and CPU use are sampled and every etcd member's `etcd_server_leader_changes_seen_total` is read
at both ends; etcd's own warnings of late heartbeats and slow requests are counted from the
members' logs. A worker count carries when the window sees no leader change. Then `kind down`.
Needs root, podman and the node image (`make kind-image`).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import tempfile
import time
from pathlib import Path

import requests
import yaml

from kubedrill.targets.kind import lifecycle
from kubedrill.targets.kind.ipplan import DEFAULT_SUBNET

ROOT = Path(__file__).resolve().parents[1]
HA = ROOT / "kind-configs" / "ha.yaml"
LEADER_CHANGES = re.compile(r"^etcd_server_leader_changes_seen_total (\S+)$", re.M)
HEARTBEAT_FAILURES = re.compile(r"^etcd_server_heartbeat_send_failures_total (\S+)$", re.M)
WARNINGS = {
    "late heartbeats": "leader failed to send out heartbeat on time",
    "slow requests": "apply request took too long",
    "elections": "is starting a new election",
}


def config_with(workers: int, directory: Path) -> Path:
    doc = yaml.safe_load(HA.read_text())
    doc["nodes"] = [{"role": "control-plane"}] * 3 + [{"role": "worker"}] * workers
    path = directory / f"ha-{workers}w.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def counter(addresses: list[str], pattern: re.Pattern[str]) -> dict[str, float]:
    """One etcd counter per member, from its metrics port."""
    out = {}
    for ip in addresses:
        try:
            text = requests.get(f"http://{ip}:2381/metrics", timeout=3).text
        except requests.RequestException:
            continue
        found = pattern.search(text)
        if found:
            out[ip] = float(found.group(1))
    return out


def leader_changes(addresses: list[str]) -> dict[str, float]:
    return counter(addresses, LEADER_CHANGES)


def cpu_times() -> tuple[int, int]:
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields), idle


def etcd_log_counts(nodes: list[str], since: float) -> dict[str, int]:
    counts = dict.fromkeys(WARNINGS, 0)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(since))
    for node in nodes:
        done = subprocess.run(
            ["podman", "exec", node, "sh", "-c", "cat /var/log/pods/kube-system_etcd-*/etcd/*.log"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        for line in done.stdout.splitlines():
            if line[:19] < stamp:
                continue
            for name, needle in WARNINGS.items():
                counts[name] += needle in line
    return counts


def measure(workers: int, args: argparse.Namespace, work: Path) -> dict[str, object]:
    name = f"kd-lb-cap{workers}"
    idle_s: float = args.idle
    opts = lifecycle.UpOptions(
        name=name, config=config_with(workers, work), subnet=args.subnet, image=args.image,
        wait=args.wait,
    )  # fmt: skip
    total0, idle0 = cpu_times()
    time.sleep(30)  # the machine before the cluster: what else is running shows here
    total1, idle1 = cpu_times()
    baseline = round(100 * (1 - (idle1 - idle0) / max(1, total1 - total0)), 1)
    started = time.monotonic()
    result = lifecycle.up(opts, lambda m: print(f"  {m}", flush=True))
    up_s = time.monotonic() - started
    try:
        planes = [n for n in result.addresses if "control-plane" in n]
        ips = [result.addresses[n][1] for n in planes]
        time.sleep(30)  # let the cluster settle after kubeadm join
        before = leader_changes(ips)
        total0, idle0 = cpu_times()
        window_start = time.time()
        loads = []
        end = time.monotonic() + idle_s
        while time.monotonic() < end:
            loads.append(float(Path("/proc/loadavg").read_text().split()[0]))
            time.sleep(10)
        total1, idle1 = cpu_times()
        after = leader_changes(ips)
        beats = counter(ips, HEARTBEAT_FAILURES)
        return {
            "workers": workers,
            "kind_up_s": round(up_s, 1),
            "kind_create_s": round(result.seconds, 1),
            "idle_window_s": idle_s,
            "cpu_busy_pct_before_up": baseline,
            "load1_mean": round(sum(loads) / len(loads), 2),
            "load1_max": max(loads),
            "cpu_busy_pct": round(100 * (1 - (idle1 - idle0) / max(1, total1 - total0)), 1),
            "leader_changes_in_window": {
                ip: after.get(ip, float("nan")) - before.get(ip, float("nan")) for ip in ips
            },
            "etcd_log_in_window": etcd_log_counts(planes, window_start),
            # the first election counts 1; more happened while the cluster was being made
            "leader_changes_seen_before_window": before,
            "heartbeat_send_failures_total": beats,
        }
    finally:
        lifecycle.down(lifecycle.DownOptions(name=name), lambda m: print(f"  {m}", flush=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--idle", type=float, default=180.0, help="idle window, seconds")
    parser.add_argument("--subnet", default=DEFAULT_SUBNET)
    parser.add_argument("--image", help="node image (default: kubedrill's, built if missing)")
    parser.add_argument("--wait", default="5m", help="kind's --wait for Ready nodes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for workers in args.workers:
            print(f"== 3 control-plane nodes + {workers} worker(s)", flush=True)
            print(json.dumps(measure(workers, args, Path(tmp)), indent=2), flush=True)


if __name__ == "__main__":
    main()
