"""`kubedrill kind up|down|status`: kind clusters to drill against, via the kind CLI.

`status` asks the engine directly (kind's labels), so it works without the kind CLI.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from kubedrill.errors import MissingBinaryError, TargetError
from kubedrill.ledger import Ledger
from kubedrill.targets.kind.config import load_kind_config

KIND_VERSION = "v0.33.0"  # the kind release kubedrill's configs are written for
DEFAULT_NAME = "kind"  # kind's own default, and the pytest plugin's --kind-cluster default
DEFAULT_CONFIG = Path("kind-configs/ha.yaml")


def check_cluster_name(name: str) -> None:
    from kubedrill.targets.kind.discovery import check_cluster_name as check  # noqa: PLC0415

    check(name)


def kind_binary() -> str:
    found = shutil.which("kind")
    if found is None:
        raise MissingBinaryError(
            "kind is not installed",
            f"install it from kind's release page or with `go install sigs.k8s.io/kind@"
            f"{KIND_VERSION}` (then put ~/go/bin on PATH); a Docker engine (or podman with "
            "KIND_EXPERIMENTAL_PROVIDER=podman) must run too",
        )
    return found


def _kind(
    args: list[str], docker_host: str | None, timeout: float
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ) | ({"DOCKER_HOST": docker_host} if docker_host else {})
    return subprocess.run(
        [kind_binary(), *args], env=env, text=True, timeout=timeout, check=False,
        stdout=subprocess.PIPE, stderr=None,  # kind's progress goes straight to the terminal
    )  # fmt: skip


def clusters(docker_host: str | None) -> list[str]:
    done = _kind(["get", "clusters"], docker_host, 60)
    return done.stdout.split() if done.returncode == 0 else []


def cmd_kind_up(args: argparse.Namespace) -> int:
    check_cluster_name(args.name)
    config = load_kind_config(args.config)  # before anything is created
    if args.name in clusters(args.docker_host):
        print(f"kind cluster {args.name!r} already exists; leaving it as it is")
        return cmd_kind_status(args)
    print(
        f"creating kind cluster {args.name!r} from {args.config}: {config.control_planes} "
        f"control-plane, {config.workers} worker node(s)",
        file=sys.stderr,
    )
    done = _kind(
        ["create", "cluster", "--name", args.name, "--config", str(args.config), "--wait", "5m"],
        args.docker_host,
        timeout=900,
    )
    if done.returncode != 0:
        raise TargetError(
            f"kind create cluster --name {args.name} failed (exit {done.returncode})",
            "read kind's output above; `kubedrill kind down --name ...` removes a half-made one",
        )
    print(f"allow faults on it with: --allow-target 'kind/{args.name}'")
    return cmd_kind_status(args)


def cmd_kind_down(args: argparse.Namespace) -> int:
    check_cluster_name(args.name)
    ledger = Ledger()
    records = [r for r in ledger.outstanding() if r.cluster == f"kind/{args.name}"]
    for rec in records:  # heal what can be healed; the nodes are about to go anyway
        ledger.heal(rec)
        ledger.remove(rec)
    done = _kind(["delete", "cluster", "--name", args.name], args.docker_host, timeout=300)
    if done.returncode != 0:
        raise TargetError(f"kind delete cluster --name {args.name} failed (exit {done.returncode})")
    print(f"kind cluster {args.name!r} deleted ({len(records)} undo record(s) dropped)")
    return 0


def status(name: str, docker_host: str | None) -> dict[str, Any]:
    # The docker SDK is imported only here: every other `kubedrill` command starts faster.
    from kubedrill.targets.kind.discovery import node_containers  # noqa: PLC0415
    from kubedrill.transport.container import engine_client  # noqa: PLC0415

    client = engine_client(docker_host)
    try:
        nodes = node_containers(client, name, docker_host)
    finally:
        client.close()
    return {
        "name": name,
        "cluster": f"kind/{name}",
        "up": all(n.status == "running" for n in nodes),
        "nodes": [
            {
                "name": n.name,
                "kind_role": n.kind_role,
                "roles": sorted(n.roles),
                "status": n.status,
                "address": n.address,
                "api": n.published_api,
            }
            for n in nodes
        ],
    }


def cmd_kind_status(args: argparse.Namespace) -> int:
    report = status(args.name, args.docker_host)
    if getattr(args, "json", False):
        print(json.dumps(report, indent=2))
    else:
        print(f"kind cluster {args.name!r}: {'up' if report['up'] else 'DEGRADED'}")
        for n in report["nodes"]:
            print(
                f"  {n['name']:32s} {n['kind_role']:24s} {n['status']:8s} {n['address'] or '-':15s}"
                + (f" api {n['api']}" if n["api"] else "")
            )
    return 0 if report["up"] else 1


def add_kind_commands(subparsers: Any) -> None:
    """Register `kind up|down|status` on the `kubedrill` command's subparsers."""
    kind_p = subparsers.add_parser("kind", help="kind clusters as drill targets (kind CLI)")
    kind_sub = kind_p.add_subparsers(dest="kind_command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--name", default=DEFAULT_NAME, help=f"kind cluster (default {DEFAULT_NAME})"
    )
    common.add_argument(
        "--docker-host", help="container engine address (default: DOCKER_HOST, else docker's)"
    )
    up_p = kind_sub.add_parser("up", parents=[common], help="create the cluster (kind create)")
    up_p.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG,
        help=f"kind config (default {DEFAULT_CONFIG})",
    )
    up_p.set_defaults(func=cmd_kind_up)
    down_p = kind_sub.add_parser("down", parents=[common], help="delete the cluster (kind delete)")
    down_p.set_defaults(func=cmd_kind_down)
    st_p = kind_sub.add_parser("status", parents=[common], help="node containers and their state")
    st_p.add_argument("--json", action="store_true", help="machine-readable output")
    st_p.set_defaults(func=cmd_kind_status)
