"""`python -m kubedrill.transport.container_ctl pause|unpause|stop|start|kill CONTAINER`.

Faults on a whole node container are steps like any other: plain argv, run on the observer
(the machine kubedrill runs on), so the ledger stores them as text and `kubedrill heal` replays
them after a crash. Every verb is idempotent (pausing a paused container succeeds), and
`--if-exists` lets an undo succeed when the container is gone (the cluster was deleted: nothing
is left to repair).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from docker import errors as docker_errors
from docker.models.containers import Container

from kubedrill.errors import KubedrillError
from kubedrill.transport.container import engine_client, find_container
from kubedrill.transport.node_container import ctl_argv

__all__ = ["ctl_argv", "main"]

VERBS = ("pause", "unpause", "stop", "start", "kill")


def apply(container: Container, verb: str, grace_s: int) -> str:
    """Bring the container to the verb's state; returns what was done."""
    container.reload()
    state: str = container.status
    if state == "paused" and verb != "pause":
        # Thaw first: a paused container takes no signals, and every undo starts with this.
        container.unpause()
        state = "running"
    if verb == "pause" and state != "paused":
        container.pause()
    elif verb == "stop" and state in ("running", "restarting"):
        container.stop(timeout=grace_s)  # SIGTERM, the grace, then SIGKILL
    elif verb == "kill" and state in ("running", "restarting"):
        container.kill(signal="SIGKILL")
    elif verb == "start" and state != "running":
        container.start()
    container.reload()
    now: str = container.status
    return f"{state} -> {now}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kubedrill.transport.container_ctl")
    parser.add_argument("verb", choices=VERBS)
    parser.add_argument("container")
    parser.add_argument("--docker-host", help="engine address (default: DOCKER_HOST or docker's)")
    parser.add_argument("--grace", type=int, default=10, help="stop: seconds before SIGKILL")
    parser.add_argument("--if-exists", action="store_true", help="a missing container is fine")
    args = parser.parse_args(argv)
    if args.grace < 0:
        parser.error(f"--grace must be >= 0 seconds (got {args.grace})")
    try:
        client = engine_client(args.docker_host, timeout=args.grace + 30)
        try:
            try:
                container = find_container(client, args.container, args.docker_host)
            except KubedrillError:
                if args.if_exists:
                    print(f"{args.container}: gone, nothing to {args.verb}")
                    return 0
                raise
            print(f"{args.container}: {apply(container, args.verb, args.grace)}")
        finally:
            client.close()
    except KubedrillError as exc:
        print(f"container_ctl: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except docker_errors.DockerException as exc:
        print(f"container_ctl: {args.verb} {args.container} failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
