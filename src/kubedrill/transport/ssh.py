"""Run commands on a node over SSH (paramiko), host keys always verified.

Host keys are checked against a known_hosts file with paramiko's RejectPolicy: an unknown or
changed key refuses the connection. Two explicit exceptions only: a host key pinned by its
SHA256 fingerprint (`host_key: SHA256:...` in the inventory), and `accept_new` (like OpenSSH's
StrictHostKeyChecking=accept-new: an unknown key is recorded, a changed one still refused).

One connection per node, reused by every command (a module-level pool keyed by the spec's
parameters, closed at exit); on it one long-lived remote shell runs the commands
(ssh_shell.py), so a fault step costs a fork on the node rather than a login shell's start-up.
The spec holds key *paths* only, never key material, so that the fault ledger can recreate
the transport for `kubedrill heal`.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import hashlib
import select
import shlex
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import paramiko

from kubedrill.errors import TargetError
from kubedrill.transport.base import CommandResult, TransportSpec
from kubedrill.transport.ssh_shell import RemoteShell, ShellError

UNREACHABLE = 255  # what OpenSSH's client exits with when the connection itself fails
TIMED_OUT = 124


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's SHA256 fingerprint: 'SHA256:' + unpadded base64 of the key blob's digest."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


@dataclass(frozen=True)
class Endpoint:
    """Where and as whom to log in; every field is plain text, no secret."""

    host: str
    port: int = 22
    user: str = "root"
    key: str = ""  # path of a private key file; "" = ssh-agent and ~/.ssh/id_*
    host_key: str = ""  # pinned SHA256 fingerprint; "" = known_hosts

    @property
    def where(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"


@dataclass(frozen=True)
class SshSettings:
    target: Endpoint
    known_hosts: str
    jump: Endpoint | None = None
    accept_new: bool = False
    sudo: bool = False
    connect_timeout: float = 10.0

    def to_params(self) -> dict[str, str]:
        t = self.target
        params = {
            "host": t.host,
            "port": str(t.port),
            "user": t.user,
            "key": t.key,
            "host_key": t.host_key,
            "known_hosts": self.known_hosts,
            "accept_new": "1" if self.accept_new else "0",
            "sudo": "1" if self.sudo else "0",
            "connect_timeout": f"{self.connect_timeout:g}",
        }
        if self.jump is not None:
            j = self.jump
            params |= {
                "jump_host": j.host,
                "jump_port": str(j.port),
                "jump_user": j.user,
                "jump_key": j.key,
                "jump_host_key": j.host_key,
            }
        return params

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> SshSettings:
        target = Endpoint(
            params["host"],
            int(params.get("port", "22")),
            params.get("user", "root"),
            params.get("key", ""),
            params.get("host_key", ""),
        )
        jump = None
        if params.get("jump_host"):
            jump = Endpoint(
                params["jump_host"],
                int(params.get("jump_port", "22")),
                params.get("jump_user", "root"),
                params.get("jump_key", ""),
                params.get("jump_host_key", ""),
            )
        return cls(
            target,
            params["known_hosts"],
            jump,
            params.get("accept_new") == "1",
            params.get("sudo") == "1",
            float(params.get("connect_timeout", "10")),
        )


class _PinnedKey(paramiko.MissingHostKeyPolicy):
    """Accept exactly the key whose fingerprint the inventory pins; nothing else."""

    def __init__(self, pinned: str) -> None:
        self.pinned = pinned

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        found = fingerprint(key)
        if found != self.pinned:
            raise paramiko.BadHostKeyException(hostname, key, key)  # reported below with both


class _AcceptNew(paramiko.MissingHostKeyPolicy):
    """OpenSSH's accept-new: record an unknown key in known_hosts (a changed key is refused by
    paramiko before this policy is asked)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")


def _client(endpoint: Endpoint, settings: SshSettings) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    known = Path(settings.known_hosts).expanduser()
    if endpoint.host_key:
        client.set_missing_host_key_policy(_PinnedKey(endpoint.host_key))
        return client  # the pin decides alone: a stale known_hosts line must not override it
    if known.exists():
        client.load_host_keys(str(known))
    if settings.accept_new:
        client.set_missing_host_key_policy(_AcceptNew(known))
    else:
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
    return client


def _connect(
    endpoint: Endpoint, settings: SshSettings, sock: paramiko.Channel | None, node: str
) -> paramiko.SSHClient:
    client = _client(endpoint, settings)
    key = str(Path(endpoint.key).expanduser()) if endpoint.key else None
    what = f"{node} ({endpoint.where})"
    try:
        client.connect(
            endpoint.host,
            port=endpoint.port,
            username=endpoint.user,
            key_filename=key,
            look_for_keys=key is None,
            allow_agent=True,
            timeout=settings.connect_timeout,
            banner_timeout=settings.connect_timeout,
            auth_timeout=settings.connect_timeout,
            sock=sock,
        )
    except paramiko.BadHostKeyException as exc:
        client.close()
        raise TargetError(
            f"host key of {what} does not match: the server offered {fingerprint(exc.key)}",
            "if the host was reinstalled, verify the new key out of band and update "
            f"{settings.known_hosts} (or the inventory's host_key pin); nothing was done",
        ) from exc
    except paramiko.SSHException as exc:
        client.close()
        text = str(exc)
        if "not found in known_hosts" in text:
            raise TargetError(
                f"host key of {what} is unknown: not in {settings.known_hosts}",
                f"verify it and add it (ssh-keyscan -p {endpoint.port} {endpoint.host} >> "
                f"{settings.known_hosts}), pin it with host_key: SHA256:... in the inventory, "
                "or pass --accept-new-host-keys deliberately; nothing was done",
            ) from exc
        if isinstance(exc, paramiko.AuthenticationException):
            raise TargetError(
                f"SSH login to {what} was refused: {text}",
                f"check the user and key ({endpoint.key or 'agent/default keys'}) for that host; "
                "nothing was done",
            ) from exc
        raise TargetError(
            f"SSH to {what} failed: {text}", "check that sshd runs there; nothing was done"
        ) from exc
    except (OSError, EOFError) as exc:
        client.close()
        reason = "timed out" if isinstance(exc, socket.timeout | TimeoutError) else str(exc)
        raise TargetError(
            f"cannot reach {what}: {reason}",
            f"check the address and port, that sshd listens there, and firewalls "
            f"(connect timeout {settings.connect_timeout:g} s); nothing was done",
        ) from exc
    return client


PoolKey = tuple[tuple[str, str], ...]


def _pool_key(spec: TransportSpec) -> PoolKey:
    return tuple(sorted(spec.params.items()))


def _close(chain: list[paramiko.SSHClient]) -> None:
    for client in reversed(chain):
        with contextlib.suppress(Exception):
            client.close()


class _Pool:
    """One live connection per node (its jump host's connection beside it), shared by threads.
    Each node has a lock of its own, so that hosts are logged in to in parallel."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._node_locks: dict[PoolKey, threading.Lock] = {}
        self._clients: dict[PoolKey, list[paramiko.SSHClient]] = {}
        self._shells: dict[PoolKey, RemoteShell] = {}
        self._no_shell: set[PoolKey] = set()  # the shell would not start: exec requests only

    def get(self, spec: TransportSpec, settings: SshSettings) -> paramiko.SSHClient:
        key = _pool_key(spec)
        with self._lock:
            node_lock = self._node_locks.setdefault(key, threading.Lock())
        with node_lock:
            with self._lock:
                chain = self._clients.get(key)
            if chain is not None:
                transport = chain[-1].get_transport()
                if transport is not None and transport.is_active():
                    return chain[-1]
                self.drop(spec)
            chain = []
            try:
                sock = None
                if settings.jump is not None:
                    jump = _connect(settings.jump, settings, None, f"jump host of {spec.node}")
                    chain.append(jump)
                    sock = _open_tunnel(jump, settings, spec.node)
                chain.append(_connect(settings.target, settings, sock, spec.node))
            except BaseException:
                for client in chain:
                    client.close()
                raise
            with self._lock:
                self._clients[key] = chain
            return chain[-1]

    def shell(self, spec: TransportSpec, settings: SshSettings) -> RemoteShell | None:
        """The node's long-lived shell (started on first use); None when it cannot start."""
        client = self.get(spec, settings)
        key = _pool_key(spec)
        with self._lock:
            node_lock = self._node_locks[key]
        with node_lock:
            with self._lock:
                shell = self._shells.get(key)
                if key in self._no_shell:
                    return None
            if shell is not None and shell.alive:
                return shell
            try:
                shell = RemoteShell(client, sudo=settings.sudo, timeout=settings.connect_timeout)
            except (ShellError, paramiko.SSHException, OSError):
                with self._lock:
                    self._no_shell.add(key)
                return None
            with self._lock:
                self._shells[key] = shell
            return shell

    def drop_shell(self, spec: TransportSpec) -> None:
        with self._lock:
            shell = self._shells.pop(_pool_key(spec), None)
        if shell is not None:
            shell.close()

    def drop(self, spec: TransportSpec) -> None:
        self.drop_shell(spec)
        with self._lock:
            chain = self._clients.pop(_pool_key(spec), [])
        _close(chain)

    def close_all(self) -> None:
        with self._lock:
            shells = list(self._shells.values())
            chains = list(self._clients.values())
            self._shells.clear()
            self._no_shell.clear()
            self._clients.clear()
        for shell in shells:
            shell.close()
        for chain in chains:
            _close(chain)


def _open_tunnel(jump: paramiko.SSHClient, settings: SshSettings, node: str) -> paramiko.Channel:
    transport = jump.get_transport()
    target = settings.target
    try:
        assert transport is not None
        return transport.open_channel(
            "direct-tcpip",
            (target.host, target.port),
            ("127.0.0.1", 0),
            timeout=settings.connect_timeout,
        )
    except (paramiko.SSHException, OSError, AssertionError) as exc:
        raise TargetError(
            f"jump host {settings.jump.where if settings.jump else '?'} cannot open a tunnel to "
            f"{node} ({target.host}:{target.port}): {exc}",
            "check that the jump host reaches that address and allows TCP forwarding",
        ) from exc


POOL = _Pool()
atexit.register(POOL.close_all)


def remote_command(argv: list[str], *, sudo: bool) -> str:
    """The command line the remote shell runs; `sudo -n` fails instead of asking a password."""
    line = shlex.join(argv)
    return f"sudo -n -- {line}" if sudo else line


class SshTransport:
    def __init__(self, spec: TransportSpec) -> None:
        self.spec = spec
        self.settings = SshSettings.from_params(spec.params)

    @classmethod
    def of(cls, node: str, settings: SshSettings) -> SshTransport:
        return cls(TransportSpec("ssh", node, settings.to_params()))

    def connect(self) -> paramiko.SSHClient:
        """The pooled connection; raises TargetError naming host:port when it cannot be had."""
        return POOL.get(self.spec, self.settings)

    def run(
        self, argv: list[str], *, timeout: float = 30.0, input: str | None = None
    ) -> CommandResult:
        """Never raises for a failed command or connection: a connection that cannot be had
        exits 255 like the ssh client, a command that outlives `timeout` exits 124."""
        command = remote_command(argv, sudo=self.settings.sudo)
        try:
            shell = POOL.shell(self.spec, self.settings) if input is None else None
            if shell is not None and shell.lock.acquire(blocking=False):
                try:
                    return self._in_shell(shell, argv, timeout)
                finally:
                    shell.lock.release()
            client = self.connect()
            return self._exec(client, argv, command, timeout, input)
        except TargetError as exc:
            return CommandResult(self.spec.node, tuple(argv), UNREACHABLE, "", str(exc))
        except (paramiko.SSHException, OSError, EOFError) as exc:
            POOL.drop(self.spec)  # a broken connection is reopened by the next command
            return CommandResult(
                self.spec.node, tuple(argv), UNREACHABLE, "", f"SSH connection failed: {exc}"
            )

    def _in_shell(self, shell: RemoteShell, argv: list[str], timeout: float) -> CommandResult:
        try:
            done = shell.run(shlex.join(argv), timeout=timeout)  # sudo: the shell itself
        except ShellError as exc:
            POOL.drop_shell(self.spec)
            return CommandResult(self.spec.node, tuple(argv), UNREACHABLE, "", str(exc))
        if done is None:
            POOL.drop_shell(self.spec)
            return CommandResult(
                self.spec.node, tuple(argv), TIMED_OUT, "", f"timed out after {timeout}s"
            )
        out, err, code = done
        return CommandResult(self.spec.node, tuple(argv), code, out, err)

    def _exec(
        self,
        client: paramiko.SSHClient,
        argv: list[str],
        command: str,
        timeout: float,
        input: str | None,
    ) -> CommandResult:
        transport = client.get_transport()
        if transport is None:
            raise paramiko.SSHException("connection closed")
        channel = transport.open_session(timeout=self.settings.connect_timeout)
        try:
            channel.exec_command(command)
            if input is not None:
                channel.sendall(input.encode())
            channel.shutdown_write()
            out, err, code = _collect(channel, timeout)
        finally:
            channel.close()
        if code is None:
            return CommandResult(
                self.spec.node, tuple(argv), TIMED_OUT, out, f"timed out after {timeout}s"
            )
        return CommandResult(self.spec.node, tuple(argv), code, out, err)


def _collect(channel: paramiko.Channel, timeout: float) -> tuple[str, str, int | None]:
    """Read stdout and stderr until the exit status arrives; exit None when `timeout` passed."""
    out: list[bytes] = []
    err: list[bytes] = []
    deadline = time.monotonic() + timeout
    while True:
        while channel.recv_ready():
            out.append(channel.recv(65536))
        while channel.recv_stderr_ready():
            err.append(channel.recv_stderr(65536))
        if channel.exit_status_ready() and not channel.recv_ready():
            if not channel.recv_stderr_ready():
                break
            continue
        if channel.closed and not channel.exit_status_ready():
            raise paramiko.SSHException("channel closed without an exit status")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return _text(out), _text(err), None
        # The channel's pipe wakes us for data; the short cap notices a bare exit status.
        select.select([channel], [], [], min(remaining, 0.02))
    code = channel.recv_exit_status()
    return _text(out), _text(err), UNREACHABLE if code < 0 else code


def _text(chunks: list[bytes]) -> str:
    return b"".join(chunks).decode(errors="replace")
