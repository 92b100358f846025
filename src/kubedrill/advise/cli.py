"""`kubedrill advise etcd`: measure the round trip between members (TCP handshakes from each
member's host; etcd's own prober beside it), print the flags etcd's tuning guide asks for.
Bad input is one line and exit 2 before the cluster is read."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from kubedrill.advise import peer_rtt
from kubedrill.advise.etcd_tuning import advise
from kubedrill.errors import ConfigError, TargetError
from kubedrill.targets.select import TARGETS, TargetOptions, open_target


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cmd_advise_etcd(args: argparse.Namespace) -> int:
    if not 5 <= args.window <= 3600:
        raise ConfigError(
            f"--window {args.window} is out of range", "give 5-3600 s (etcd probes every ~4 s)"
        )
    options = TargetOptions(
        target=args.target,
        lab_config=args.config,
        inventory=args.inventory,
        kind_cluster=args.kind_cluster,
        needs_running_lab="kubedrill advise etcd",
    ).validate()
    with open_target(options, progress=_progress) as cluster:
        _progress(f"etcd's own prober over {args.window:.0f} s (about 3 round trips a sample)")
        etcd_view = peer_rtt.measure(cluster, args.window)
        _progress("TCP handshakes from each member to its peers")
        pairs = peer_rtt.probe(cluster)
        current = (cluster.facts.heartbeat_interval_ms, cluster.facts.election_timeout_ms)
    try:
        advice = advise(pairs)
    except ValueError as exc:
        raise TargetError(str(exc), "measure for longer: --window 60") from exc
    etcd_mean = {(p.member, p.peer): p for p in etcd_view}
    for p in pairs:
        theirs = etcd_mean.get((p.member, p.peer))
        seen = (
            f"; etcd's prober {theirs.mean_s * 1000:.1f} ms ({theirs.samples})"
            if theirs is not None and theirs.samples
            else ""
        )
        print(
            f"{p.member} -> {p.peer}: round trip mean {p.mean_s * 1000:.1f} ms, "
            f"p99 {p.p99_s * 1000:.1f} ms ({p.samples} handshakes){seen}"
        )
    print(f"now:    --heartbeat-interval={current[0]} --election-timeout={current[1]}")
    print(f"advice: {' '.join(advice.flags())}")
    for reason in advice.reasons:
        print(f"  {reason}")
    if args.json is not None:
        out = {
            "pairs": [p.__dict__ for p in pairs],
            "etcd_prober": [p.__dict__ for p in etcd_view],
            "heartbeat_ms": advice.heartbeat_ms,
            "election_ms": advice.election_ms,
            "rtt_mean_ms": advice.rtt_mean_ms,
            "reasons": list(advice.reasons),
        }
        args.json.write_text(json.dumps(out, indent=1))
    return 0


def add_advise_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("advise", help="tuning advice measured on the cluster")
    advise_sub = p.add_subparsers(dest="advise_command", required=True)
    e = advise_sub.add_parser(
        "etcd",
        help="measure the round trip between etcd members and propose --heartbeat-interval "
        "and --election-timeout (etcd's tuning guide)",
    )
    e.add_argument("--target", choices=TARGETS, default="lab", help="lab (default), kind or ssh")
    e.add_argument("--config", type=Path, help="lab config YAML (--target lab; the lab must run)")
    e.add_argument("--kind-cluster", default="kind", help="kind cluster name (--target kind)")
    e.add_argument("--inventory", type=Path, help="SSH inventory YAML (--target ssh)")
    e.add_argument("--window", type=float, default=30.0, help="seconds to measure (default 30)")
    e.add_argument("--json", type=Path, help="also write the measurement and advice here")
    e.set_defaults(func=cmd_advise_etcd)
