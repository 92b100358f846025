"""One long-lived remote `sh` per node, so that a fault step costs a fork and exec on the node.

Every SSH exec request starts the account's login shell, which reads its start-up files each
time (a `.bashrc` running `pyenv init` makes that 0.1-0.3 s); a fault of a dozen iptables
steps would then spend seconds injecting, and the drill would measure that too. Here the login
shell runs once (`exec /bin/sh`), and each command is written to the shell's stdin followed by
markers with a random nonce that report its exit status on stdout and end its stderr.

Commands read /dev/null, never the shell's stdin. A command that outlives its timeout closes
the shell (a new one serves the next command); one that takes input, or arrives while the
shell is busy, goes through an SSH exec request as before.
"""

from __future__ import annotations

import re
import secrets
import select
import threading
import time

import paramiko

READY_TIMEOUT = 10.0


class ShellError(Exception):
    """The shell could not be started, or died mid-command (the command may have run)."""


class RemoteShell:
    def __init__(self, client: paramiko.SSHClient, *, sudo: bool, timeout: float) -> None:
        transport = client.get_transport()
        if transport is None or not transport.is_active():
            raise ShellError("connection closed")
        self.lock = threading.Lock()
        self.channel = transport.open_session(timeout=timeout)
        self.channel.exec_command("exec sudo -n -- /bin/sh" if sudo else "exec /bin/sh")
        ready = self.run("true", timeout=min(timeout, READY_TIMEOUT))
        if ready is None or ready[2] != 0:
            self.close()
            raise ShellError("the remote shell did not start")

    @property
    def alive(self) -> bool:
        return not self.channel.closed and not self.channel.exit_status_ready()

    def close(self) -> None:
        self.channel.close()

    def run(self, line: str, *, timeout: float) -> tuple[str, str, int] | None:
        """(stdout, stderr, exit status) of `line`; None when it outlived `timeout` (the shell
        is closed then). ShellError when the shell died before the command finished."""
        end = f"__kubedrill_{secrets.token_hex(8)}__"
        script = f"{line} </dev/null\nprintf '\\n{end} %d\\n' $?\nprintf '\\n{end}\\n' >&2\n"
        try:
            self.channel.sendall(script.encode())
        except (OSError, paramiko.SSHException) as exc:
            raise ShellError(f"cannot write to the remote shell: {exc}") from exc
        out, err = bytearray(), bytearray()
        status = re.compile(rb"\n" + end.encode() + rb" (\d+)\n")
        err_end = b"\n" + end.encode() + b"\n"
        deadline = time.monotonic() + timeout
        while True:
            ended = not self.alive  # looked at before draining: no output is missed
            while self.channel.recv_ready():
                out += self.channel.recv(65536)
            while self.channel.recv_stderr_ready():
                err += self.channel.recv_stderr(65536)
            found = status.search(out)
            if found is not None and err_end in err:
                stdout = bytes(out[: found.start()])
                stderr = bytes(err[: err.index(err_end)])
                return _text(stdout), _text(stderr), int(found.group(1))
            if ended:
                raise ShellError("the remote shell ended while a command ran")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.close()
                return None
            select.select([self.channel], [], [], min(remaining, 0.05))


def _text(data: bytes) -> str:
    return data.decode(errors="replace")
