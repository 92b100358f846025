"""`kubedrill kind up|down|status`: kind clusters to drill against, via the kind CLI.

`up` and `down` are kubedrill.targets.kind.lifecycle's (with podman: kubedrill's own network,
pinned node addresses, locally built node and load-balancer images; host settings kept and
given back). `status` asks the engine directly (kind's labels), so it works without the kind CLI.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from kubedrill.ledger import Ledger
from kubedrill.targets.kind.image.cli import add_image_commands
from kubedrill.targets.kind.ipplan import DEFAULT_SUBNET
from kubedrill.targets.kind.provider import KIND_VERSION
from kubedrill.targets.lab.config import default_cache_dir

__all__ = ["KIND_VERSION", "add_kind_commands"]  # KIND_VERSION: the kind release of the configs
DEFAULT_NAME = "kind"  # kind's own default, and the pytest plugin's --kind-cluster default
DEFAULT_CONFIG = Path("kind-configs/ha.yaml")


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def check_cluster_name(name: str) -> None:
    from kubedrill.targets.kind.discovery import check_cluster_name as check  # noqa: PLC0415

    check(name)


def cmd_kind_up(args: argparse.Namespace) -> int:
    # The lifecycle (and the docker SDK it brings) is imported here only: other commands start
    # faster.
    from kubedrill.targets.kind import lifecycle  # noqa: PLC0415

    opts = lifecycle.UpOptions(
        name=args.name, config=args.config, subnet=args.subnet, provider=args.provider,
        image=args.image, docker_host=args.docker_host, cache_dir=default_cache_dir(),
        wait=args.wait,
    )  # fmt: skip
    result = lifecycle.up(opts, _progress)
    if result.provider == "podman":
        from kubedrill.targets.kind import api_service  # noqa: PLC0415

        print(f"Docker API for drills (podman system service): {api_service.ensure()}")
    if not result.created:
        print(f"kind cluster {args.name!r} already exists; leaving it as it is")
    else:
        print(f"kind cluster {args.name!r} created in {result.seconds:.1f} s ({result.provider})")
    wrong = {n: a for n, a in result.addresses.items() if a[0] != a[1]}
    for node, (planned, got) in sorted(result.addresses.items()):
        print(f"  {node:40s} {got or '-':15s} {'pinned' if planned == got else f'NOT {planned}'}")
    print(f"kubeconfig: {result.kubeconfig}")
    print(f"allow faults on it with: --allow-target 'kind/{args.name}'")
    if wrong:
        print(f"{len(wrong)} node(s) did not get their pinned address", file=sys.stderr)
        return 1
    if result.provider == "docker":
        return cmd_kind_status(args)
    return 0


def cmd_kind_down(args: argparse.Namespace) -> int:
    from kubedrill.targets.kind import lifecycle  # noqa: PLC0415

    check_cluster_name(args.name)
    ledger = Ledger()
    records = [r for r in ledger.outstanding() if r.cluster == f"kind/{args.name}"]
    for rec in records:  # heal what can be healed; the nodes are about to go anyway
        ledger.heal(rec)
        ledger.remove(rec)
    opts = lifecycle.DownOptions(
        name=args.name, provider=args.provider, docker_host=args.docker_host,
        cache_dir=default_cache_dir(),
    )  # fmt: skip
    changed = lifecycle.down(opts, _progress)
    from kubedrill.targets.kind import api_service, state  # noqa: PLC0415

    if not state.clusters():  # the last kubedrill-made cluster: nobody needs the API any more
        for item in api_service.stop():
            _progress(f"stopped {item}")
    from kubedrill.targets.kind.ssh_access import remove_ssh  # noqa: PLC0415

    for item in remove_ssh(args.name):
        _progress(f"removed {item}")
    state.remove_state_dir_if_empty()  # after every part of kubedrill has dropped its files
    print(f"kind cluster {args.name!r} deleted ({len(records)} undo record(s) dropped)")
    if changed:
        print("host settings that differ from before the first `kind up` (not kubedrill's to "
              "undo):", file=sys.stderr)  # fmt: skip
        for line in changed:
            print(f"  {line}", file=sys.stderr)
    return 0


def status(name: str, docker_host: str | None) -> dict[str, Any]:
    # The docker SDK is imported only here: every other `kubedrill` command starts faster.
    from kubedrill.targets.kind.api_service import default_docker_host  # noqa: PLC0415
    from kubedrill.targets.kind.discovery import node_containers  # noqa: PLC0415
    from kubedrill.transport.container import engine_client  # noqa: PLC0415

    docker_host = docker_host or default_docker_host()
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


def cmd_kind_inventory(args: argparse.Namespace) -> int:
    from kubedrill.targets.kind.ssh_access import start_ssh  # noqa: PLC0415

    check_cluster_name(args.name)
    inventory = start_ssh(args.name, docker_host=args.docker_host, kubectl=args.kubectl)
    print(f"sshd runs on every node of kind cluster {args.name!r}; inventory: {inventory}")
    print(
        f"try: pytest drills/ -m etcd --target ssh --inventory {inventory} "
        f"--allow-target ssh/kind-{args.name}"
    )
    return 0


def add_kind_commands(subparsers: Any) -> None:
    """Register `kind up|down|status` on the `kubedrill` command's subparsers."""
    kind_p = subparsers.add_parser("kind", help="kind clusters as drill targets (kind CLI)")
    kind_sub = kind_p.add_subparsers(dest="kind_command", required=True)
    add_image_commands(kind_sub)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--name", default=DEFAULT_NAME, help=f"kind cluster (default {DEFAULT_NAME})"
    )
    common.add_argument(
        "--docker-host", help="container engine address (default: DOCKER_HOST, else docker's)"
    )
    common.add_argument(
        "--provider",
        help="docker or podman (default: Docker when its daemon is there, else podman)",
    )
    up_p = kind_sub.add_parser("up", parents=[common], help="create the cluster (kind create)")
    up_p.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG,
        help=f"kind config (default {DEFAULT_CONFIG})",
    )
    up_p.add_argument(
        "--subnet",
        default=DEFAULT_SUBNET,
        help=f"podman: the IPv4 network kubedrill creates for the nodes (default {DEFAULT_SUBNET})",
    )
    up_p.add_argument(
        "--image", help="node image (default with podman: the one `kubedrill kind image` builds)"
    )
    up_p.add_argument("--wait", default="5m", help="kind's --wait for the control plane (5m)")
    up_p.set_defaults(func=cmd_kind_up)
    down_p = kind_sub.add_parser("down", parents=[common], help="delete the cluster (kind delete)")
    down_p.set_defaults(func=cmd_kind_down)
    st_p = kind_sub.add_parser("status", parents=[common], help="node containers and their state")
    st_p.add_argument("--json", action="store_true", help="machine-readable output")
    st_p.set_defaults(func=cmd_kind_status)
    inv_p = kind_sub.add_parser(
        "inventory",
        parents=[common],
        help="start sshd in every node and write an SSH inventory for them (the SSH target)",
    )
    inv_p.add_argument("--kubectl", default="kubectl", help="kubectl for drain (default: PATH)")
    inv_p.set_defaults(func=cmd_kind_inventory)
