"""Run commands in kubedrill's own (root) namespace, or inside a lab network namespace."""

from __future__ import annotations

import subprocess

from kubedrill.transport.base import CommandResult, TransportSpec


def run_process(
    node: str, argv: list[str], full_argv: list[str], *, timeout: float, input: str | None
) -> CommandResult:
    try:
        proc = subprocess.run(
            full_argv,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            # Own session: a ^C at the terminal reaches kubedrill (which defers it), never an
            # undo command half-way through.
            start_new_session=True,
        )
    except subprocess.TimeoutExpired as exc:
        return CommandResult(
            node, tuple(argv), 124, _text(exc.stdout), f"timed out after {timeout}s"
        )
    except FileNotFoundError as exc:
        return CommandResult(node, tuple(argv), 127, "", f"not found: {exc.filename}")
    return CommandResult(node, tuple(argv), proc.returncode, proc.stdout, proc.stderr)


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data if isinstance(data, str) else data.decode(errors="replace")


class LocalTransport:
    """The machine kubedrill runs on (the lab's observer/controller)."""

    def __init__(self, node: str = "local") -> None:
        self.spec = TransportSpec("local", node)

    def run(
        self, argv: list[str], *, timeout: float = 30.0, input: str | None = None
    ) -> CommandResult:
        return run_process(self.spec.node, argv, argv, timeout=timeout, input=input)


class NetnsTransport:
    """A lab host: the command runs inside the host's network namespace via `ip netns exec`."""

    def __init__(self, node: str, netns: str) -> None:
        self.netns = netns
        self.spec = TransportSpec("netns", node, {"netns": netns})

    def run(
        self, argv: list[str], *, timeout: float = 30.0, input: str | None = None
    ) -> CommandResult:
        full = ["ip", "netns", "exec", self.netns, *argv]
        return run_process(self.spec.node, argv, full, timeout=timeout, input=input)
