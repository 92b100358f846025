"""A lab etcd member's disk: its data dir in the lab's state, moved aside (the "lost disk") and
back, and the member held, stopped and started again with flag overrides through the supervisor.

Every path it touches is inside `<state>/data/<host>/`: the data dir `etcd`, the lost disk
`etcd.lost-<token>` (the data dir renamed aside, never deleted while it may be needed), and
`etcd.junk-<n>` (what a start on an empty data dir left there: a fresh db, perhaps a WAL).
Anything else is refused.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from kubedrill.errors import ConfigError, FaultError, TargetError
from kubedrill.ledger import fsync_dir, pid_alive
from kubedrill.polling import poll_until
from kubedrill.targets.lab import layout, overrides
from kubedrill.targets.lab.state import read_state
from kubedrill.transport.base import TransportSpec
from kubedrill.transport.step import Step

COMPONENT = "etcd"
HERE = TransportSpec("local", "kubedrill")  # the lab's processes and files are on this machine
ASIDE = re.compile(r"^etcd\.(lost|junk)-[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class MemberDisk:
    state_dir: Path
    host: str
    address: str
    peer_port: int

    @classmethod
    def of(cls, state_dir: Path, host: str) -> MemberDisk:
        """The member `host` of the lab whose state is `state_dir` (its lab.json must name
        `host` as an etcd member)."""
        state = read_state(state_dir)
        if state is None:
            raise ConfigError(f"no lab state in {state_dir}", "name a lab's state")
        hosts = {h["name"]: h for h in state["hosts"] if "etcd" in h["roles"]}
        if host not in hosts:
            raise ConfigError(
                f"{host!r} is not an etcd member of lab {state['name']!r}",
                f"etcd members: {', '.join(sorted(hosts)) or 'none'}",
            )
        return cls(state_dir, host, hosts[host]["address"], int(state["etcd"]["peer_port"]))

    @property
    def key(self) -> str:
        return layout.component_key(self.host, COMPONENT)

    @property
    def peer_url(self) -> str:
        return f"https://{self.address}:{self.peer_port}"

    @property
    def host_dir(self) -> Path:
        return self.state_dir / "data" / self.host

    @property
    def data_dir(self) -> Path:
        return self.host_dir / COMPONENT

    @property
    def hold_file(self) -> Path:
        return layout.hold_file(self.state_dir, self.host, COMPONENT)

    @property
    def pid_file(self) -> Path:
        return layout.pid_file(self.state_dir, self.host, COMPONENT)

    # -- the data dir ---------------------------------------------------------------------------

    def aside(self, token: str) -> Path:
        """Where the wipe moves the data dir: the "lost disk", kept until the member is
        replaced or its data put back."""
        return self.checked_aside(self.host_dir / f"etcd.lost-{token}")

    def checked_aside(self, path: Path) -> Path:
        """`path` if it is one of this member's aside dirs, else ConfigError (the repair takes
        the path from its command line: it must never touch anything else)."""
        if path.parent.resolve() != self.host_dir.resolve() or not ASIDE.match(path.name):
            raise ConfigError(
                f"{path} is not an aside dir of {self.host}'s data",
                f"expected {self.host_dir}/etcd.lost-<token>",
            )
        return path

    def has_wal(self, path: Path | None = None) -> bool:
        """The dir holds a member's WAL: etcd restarts from it and ignores --initial-cluster*."""
        wal = (path or self.data_dir) / "member" / "wal"
        return wal.is_dir() and any(wal.glob("*.wal"))

    def raft_since_wipe(self) -> bool:
        """A start since the wipe began a raft log: a WAL in the data dir, or in the junk a
        failed start left (only meaningful while the lost disk is aside)."""
        junk = [p for p in self.asides() if p.name.startswith("etcd.junk-")]
        return self.has_wal() or any(self.has_wal(p) for p in junk)

    def is_empty(self) -> bool:
        return not self.data_dir.exists() or not any(self.data_dir.iterdir())

    def move_aside(self, dest: Path) -> None:
        self.checked_aside(dest)
        if dest.exists():
            raise FaultError(f"{dest} exists already", "pick another token")
        self.data_dir.rename(dest)
        fsync_dir(self.host_dir)

    def put_back(self, src: Path) -> None:
        """The lost disk found again: renamed back in place of an empty or junk data dir."""
        self.checked_aside(src)
        self.set_junk_aside()
        src.rename(self.data_dir)
        fsync_dir(self.host_dir)

    def set_junk_aside(self) -> Path | None:
        """Move what a start on an empty data dir left there out of the way; None when the
        data dir is absent or empty."""
        if self.is_empty():
            with contextlib.suppress(FileNotFoundError):
                self.data_dir.rmdir()
            return None
        junk = self.host_dir / f"etcd.junk-{time.time_ns()}"
        self.data_dir.rename(junk)
        fsync_dir(self.host_dir)
        return junk

    def asides(self) -> list[Path]:
        if not self.host_dir.is_dir():
            return []
        return sorted(p for p in self.host_dir.iterdir() if ASIDE.match(p.name))

    def discard_asides(self) -> list[Path]:
        """Delete the lost disk and any junk: only once the member has been replaced (its old
        identity removed from the cluster) and is caught up, when nothing can use them."""
        gone = []
        for path in self.asides():
            shutil.rmtree(self.checked_aside(path))
            gone.append(path)
        return gone

    # -- the process -------------------------------------------------------------------------

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        return pid if f"{self.state_dir}/".encode() in cmdline else None

    def hold(self) -> None:
        self.hold_file.parent.mkdir(parents=True, exist_ok=True)
        self.hold_file.touch()

    def held(self) -> bool:
        return self.hold_file.exists()

    def release(self) -> None:
        """The supervisor starts the member at its next tick (within 0.1 s)."""
        self.hold_file.unlink(missing_ok=True)

    def stop(self) -> None:
        """Held, then SIGKILLed; returns once the process is gone and the supervisor has seen
        the hold. A crash, not a graceful stop: what a lost disk looks like, safe for data
        that is put back (etcd's WAL is written before it answers), and quick (a member with
        the apiservers' watches on it takes etcd's request timeout, 7 s, to stop gracefully).
        Waiting for the supervisor matters: a hold it never saw would not count as released
        either, and a member waiting out its crash back-off would start only when that ends."""
        self.hold()
        pid = self.pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            if not gone(pid, 10.0):
                raise TargetError(f"etcd on {self.host} (pid {pid}) survived SIGKILL", "")
        _, seen = poll_until(self.supervisor_holds, bool, timeout=5.0, interval=0.05)
        if not seen:
            raise TargetError(
                f"the lab supervisor did not report etcd on {self.host} held within 5 s",
                f"see {self.state_dir / 'supervisor.log'} and `kubedrill lab status`",
            )

    def wipe_steps(self, aside: Path) -> tuple[Step, ...]:
        """The fault as commands (for the ledger, a dry run and a person): held, SIGKILLed,
        and its data dir renamed aside once the process is gone."""
        pid = self.pid()
        if pid is None:
            raise FaultError(
                f"etcd is not running on {self.host}",
                "wait for it to come back (kubedrill lab status) before this fault",
            )
        self.checked_aside(aside)
        gone = f"timeout 10 tail -s 0.05 --pid={pid} -f /dev/null"
        return (
            Step(HERE, ("touch", str(self.hold_file))),
            Step(HERE, ("sh", "-c", f"kill -KILL {pid} 2>/dev/null; {gone}"), timeout=15),
            Step(HERE, ("mv", "-T", str(self.data_dir), str(aside))),
        )

    def supervisor_holds(self) -> bool:
        """The supervisor's last status says the member is held and not running."""
        try:
            status = json.loads((self.state_dir / "run" / "status.json").read_text())
        except (OSError, ValueError):
            return False
        mine = status.get(self.key) or {}
        return bool(mine.get("held")) and mine.get("pid") is None

    def start_with(self, flags: dict[str, str]) -> None:
        """Start (release) the member with these flags over its lab command line (none: the
        lab's own command line)."""
        if flags:
            overrides.write_flags(self.state_dir, self.key, flags)
        else:
            self.clear_override()
        self.release()

    def override(self) -> dict[str, str]:
        return overrides.read_flags(self.state_dir, self.key)

    def clear_override(self) -> bool:
        return overrides.clear_flags(self.state_dir, self.key)

    def log_path(self) -> Path:
        return self.state_dir / "logs" / self.host / f"{COMPONENT}.log"


def gone(pid: int, timeout: float) -> bool:
    """Whether `pid` has exited (a zombie counts) within `timeout`."""
    _, gone = poll_until(lambda: pid_alive(pid), lambda a: not a, timeout=timeout, interval=0.05)
    return gone
