"""Steps that act on a whole node container, as plain argv for the ledger (no docker import
here: fault modules can use these without loading the docker SDK)."""

from __future__ import annotations

import sys

from kubedrill.transport.base import TransportSpec
from kubedrill.transport.step import Step

OBSERVER = TransportSpec("local", "kubedrill")  # the machine kubedrill runs on


def ctl_argv(
    verb: str,
    container: str,
    *,
    docker_host: str | None,
    grace_s: int | None = None,
    if_exists: bool = False,
) -> tuple[str, ...]:
    """argv of `python -m kubedrill.transport.container_ctl VERB CONTAINER ...`."""
    argv = [sys.executable, "-m", "kubedrill.transport.container_ctl", verb, container]
    if docker_host:
        argv += ["--docker-host", docker_host]
    if grace_s is not None:
        argv += ["--grace", str(grace_s)]
    if if_exists:
        argv.append("--if-exists")
    return tuple(argv)


def thaw_first(spec: TransportSpec) -> list[Step]:
    """For an undo on a node container: unpause it first, since a paused container refuses
    exec (it may have been paused by another fault of the same crashed run). Nothing for other
    transports. Idempotent, and a container that is gone is fine."""
    if spec.kind != "docker":
        return []
    argv = ctl_argv(
        "unpause",
        spec.params["container"],
        docker_host=spec.params.get("docker_host"),
        if_exists=True,
    )
    return [Step(OBSERVER, argv, timeout=60)]


def host_side(spec: TransportSpec) -> TransportSpec:
    """Where a host-side helper for `spec`'s node runs (e.g. the NFQUEUE delayer, which needs
    Python): in a node container's network namespace, entered from the machine kubedrill runs
    on, for a container node; on the node itself otherwise (a lab netns, an SSH host)."""
    if spec.kind != "docker":
        return spec
    return TransportSpec("container-netns", spec.node, dict(spec.params))
