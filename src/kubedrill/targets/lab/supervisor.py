"""The lab's kubelet: starts every component in its host's namespace and restarts it on exit.

Like kubelet with static pods, a component that exits is restarted with exponential back-off.
A fault "holds" a component down by creating `holds/<host>__<component>`; the supervisor then
leaves it stopped until the hold file is removed (heal), and restarts it at once.

Run as `python -m kubedrill.targets.lab.supervisor STATE_DIR` (detached by `lab up`). It reads
`components.json`, writes pid files to `run/`, per-component logs to `logs/`, and its own
status to `run/status.json`. SIGTERM stops every component (SIGCONT first, for paused ones),
then the supervisor exits. (`lab down` does not ask: it SIGKILLs the supervisor and every
component's process group, since a lab being thrown away needs no graceful stop.)

A component may name conditions (`after`) that must hold before its first start, waited for
at most `after_max_s`: etcd members of a new cluster start one after the other, each once the
previous one serves its peer port (`tls://address:port`, see `etcd.start_after`), and HAProxy
once every kube-apiserver is ready (`https://address:port/readyz` answers 200).

Each start reads the component's flag overrides (`overrides/<host>__<component>.json`, see
`overrides`): an operator's manifest edit, e.g. a replaced etcd member joining with
`--initial-cluster-state=existing`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from kubedrill.errors import ConfigError
from kubedrill.targets.lab import overrides
from kubedrill.targets.lab.layout import component_key


@dataclass(frozen=True)
class ComponentSpec:
    host: str
    component: str
    netns: str
    argv: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    # Conditions for the first start (restarts never wait): "tls://address:port" (a process
    # serves TLS there) or "https://address:port/path" (answers 200); waited for at most
    # after_max_s, then the component starts all the same.
    after: tuple[str, ...] = ()
    after_max_s: float = 5.0

    @property
    def key(self) -> str:
        return component_key(self.host, self.component)

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "component": self.component,
            "netns": self.netns,
            "argv": list(self.argv),
            "env": self.env,
            "after": list(self.after),
            "after_max_s": self.after_max_s,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ComponentSpec:
        return cls(
            raw["host"],
            raw["component"],
            raw["netns"],
            tuple(raw["argv"]),
            dict(raw.get("env", {})),
            tuple(raw.get("after", ())),
            float(raw.get("after_max_s", 5.0)),
        )


WANTED_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGCHLD}


def _unblock_signals() -> None:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, WANTED_SIGNALS)


# While a first start waits for its conditions, the loop wakes this often; a condition that did
# not hold is asked again after RECHECK_S (a TLS hello is cheap; a readyz request costs the
# starting apiservers CPU, so it is asked less often).
AFTER_CHECK_S = 0.02
RECHECK_S = {"tls": 0.02, "https": 0.2}


def _unverified() -> ssl.SSLContext:
    """Start-order probes only ask whether something answers, not who: no verification."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def serves_tls(address: str, timeout: float = 0.05) -> bool:
    """True once a process *serves* TLS on `address`: it answers a ClientHello (a handshake or an
    alert, either will do). A bound listener whose process has not started serving yet accepts
    TCP connections all the same (the kernel queues them), so a TCP connect proves nothing."""
    host, _, port = address.rpartition(":")
    context = _unverified()
    try:
        with (
            socket.create_connection((host, int(port)), timeout=timeout) as sock,
            context.wrap_socket(sock, do_handshake_on_connect=False) as tls,
        ):
            tls.do_handshake()
    except ssl.SSLError:
        # It answered (an alert: we showed no client certificate). etcd logs each such probe as
        # "rejected connection on peer endpoint", from the bridge address: a line or two per
        # member at the lab's first start.
        return True
    except OSError:
        return False  # refused, or no answer within the timeout
    return True


def answers_ok(url: str, timeout: float = 0.25) -> bool:
    """True when an HTTPS GET of `url` answers 200 (a health endpoint anyone may read)."""
    context = _unverified()
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def holds(condition: str) -> bool:
    if condition.startswith("tls://"):
        return serves_tls(condition.removeprefix("tls://"))
    return answers_ok(condition)


class Gates:
    """The `after` conditions of first starts. Each is asked at most every RECHECK_S and, once
    it held, not again: several components may wait for the same one."""

    def __init__(self) -> None:
        self.met: set[str] = set()
        self.next_at: dict[str, float] = {}

    def all_hold(self, conditions: tuple[str, ...], now: float) -> bool:
        for condition in conditions:
            if condition in self.met:
                continue
            if now < self.next_at.get(condition, 0.0):
                return False
            if not holds(condition):
                kind = condition.partition(":")[0]
                self.next_at[condition] = now + RECHECK_S.get(kind, 0.2)
                return False
            self.met.add(condition)
        return True


@dataclass(frozen=True)
class Backoff:
    initial: float
    maximum: float
    reset_after: float


def next_delay(previous: float, ran_for: float, backoff: Backoff) -> float:
    """Back-off before the next start: doubles per quick crash, resets after a long run."""
    if ran_for >= backoff.reset_after or previous <= 0:
        return backoff.initial
    return min(previous * 2, backoff.maximum)


@dataclass
class Slot:
    spec: ComponentSpec
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    delay: float = 0.0
    restart_at: float = 0.0
    restarts: int = 0
    last_exit: int | None = None
    held: bool = False
    log: TextIO | None = None


class Supervisor:
    def __init__(self, state_dir: Path, backoff: Backoff) -> None:
        self.state = state_dir
        self.backoff = backoff
        self.run_dir = state_dir / "run"
        self.holds = state_dir / "holds"
        self.logs = state_dir / "logs"
        specs = json.loads((state_dir / "components.json").read_text())
        self.slots = [Slot(ComponentSpec.from_dict(s)) for s in specs]
        self._last_status: dict[str, dict[str, str | int | None]] | None = None
        self.began = time.monotonic()
        self.waiting = False  # a first start is waiting for its `after` conditions
        self.gates = Gates()

    def may_start_first(self, slot: Slot, now: float) -> bool:
        """A component's first start waits for its `after` conditions (for at most
        `after_max_s`: one that never comes true must not keep the lab down); restarts never
        wait."""
        spec = slot.spec
        if slot.last_exit is not None or now - self.began >= spec.after_max_s:
            return True
        return self.gates.all_hold(spec.after, now)

    def hold_file(self, slot: Slot) -> Path:
        return self.holds / slot.spec.key

    def start(self, slot: Slot) -> None:
        spec = slot.spec
        log_dir = self.logs / spec.host
        log_dir.mkdir(parents=True, exist_ok=True)
        if slot.log is None:
            slot.log = open(log_dir / f"{spec.component}.log", "a", buffering=1)  # noqa: SIM115
        try:
            override = overrides.read_override(self.state, spec.key)
        except ConfigError as exc:
            slot.log.write(f"--- kubedrill supervisor: not started: {exc}\n")
            slot.restart_at = time.monotonic() + self.backoff.maximum
            return
        argv = override.apply(spec.argv)
        changed = override.describe()
        slot.log.write(
            f"--- kubedrill supervisor: start #{slot.restarts + 1} at {time.time():.3f}"
            f"{f' with overrides {changed}' if changed else ''}\n"
        )
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **spec.env}
        # Each lab host gets its own UTS namespace too, so a component's hostname is its host's
        # name (leader-election identities are '<hostname>_<uuid>'). Every step execs the next,
        # so the pid we get is the component's own.
        slot.proc = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                spec.netns,
                "unshare",
                "--uts",
                "--",
                "sh",
                "-c",
                'hostname "$0" && exec "$@"',
                spec.host,
                *argv,
            ],
            stdout=slot.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
            # The supervisor blocks SIGTERM/SIGINT/SIGCHLD to wait for them; a blocked mask is
            # inherited across exec, so unblock it for the component.
            preexec_fn=_unblock_signals,  # noqa: PLW1509 - the supervisor has one thread
        )
        slot.started = time.monotonic()
        (self.run_dir / f"{spec.key}.pid").write_text(str(slot.proc.pid))

    def reap(self, slot: Slot, now: float) -> None:
        if slot.proc is None:
            return
        code = slot.proc.poll()
        if code is None:
            return
        ran_for = now - slot.started
        slot.proc = None
        slot.last_exit = code
        (self.run_dir / f"{slot.spec.key}.pid").unlink(missing_ok=True)
        slot.delay = next_delay(slot.delay, ran_for, self.backoff)
        slot.restart_at = now + slot.delay
        if slot.log:
            slot.log.write(
                f"--- kubedrill supervisor: exited {code} after {ran_for:.1f}s; "
                f"restart in {slot.delay:.1f}s unless held\n"
            )

    def tick(self) -> None:
        now = time.monotonic()
        waiting = False
        for slot in self.slots:
            self.reap(slot, now)
            held = self.hold_file(slot).exists()
            if slot.held and not held:
                slot.restart_at = now  # heal: restart at once, as after `crictl start`
                slot.delay = 0.0
            slot.held = held
            if slot.proc is None and not held and now >= slot.restart_at:
                if not self.may_start_first(slot, now):
                    waiting = True
                    continue
                if slot.last_exit is not None:
                    slot.restarts += 1
                self.start(slot)
        self.waiting = waiting
        self.write_status()

    def write_status(self) -> None:
        status = {
            slot.spec.key: {
                "host": slot.spec.host,
                "component": slot.spec.component,
                "pid": slot.proc.pid if slot.proc else None,
                "restarts": slot.restarts,
                "last_exit": slot.last_exit,
                "held": slot.held,
            }
            for slot in self.slots
        }
        if status == self._last_status:  # ticks run every 100 ms; write only on a change
            return
        self._last_status = status
        tmp = self.run_dir / "status.json.tmp"
        tmp.write_text(json.dumps(status, indent=1))
        tmp.rename(self.run_dir / "status.json")

    def shutdown(self) -> None:
        for slot in self.slots:
            if slot.proc and slot.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(slot.proc.pid, signal.SIGCONT)
                    slot.proc.terminate()
        deadline = time.monotonic() + 10
        for slot in self.slots:
            if slot.proc is None:
                continue
            try:
                slot.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                slot.proc.kill()
                slot.proc.wait()
            (self.run_dir / f"{slot.spec.key}.pid").unlink(missing_ok=True)
        for slot in self.slots:
            if slot.log:
                slot.log.close()

    def run(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.holds.mkdir(parents=True, exist_ok=True)
        wanted = WANTED_SIGNALS
        signal.pthread_sigmask(signal.SIG_BLOCK, wanted)
        (self.run_dir / "supervisor.pid").write_text(str(os.getpid()))
        try:
            while True:
                self.tick()
                # Wake on a child's exit (SIGCHLD) or a stop request, else every 100 ms to notice
                # hold files being removed (sooner while a first start waits for a listener).
                info = signal.sigtimedwait(wanted, AFTER_CHECK_S if self.waiting else 0.1)
                if info is not None and info.si_signo in (signal.SIGTERM, signal.SIGINT):
                    break
        finally:
            self.shutdown()
            (self.run_dir / "supervisor.pid").unlink(missing_ok=True)


def main(argv: list[str]) -> int:
    state_dir = Path(argv[0])
    settings = json.loads((state_dir / "supervisor.json").read_text())
    backoff = Backoff(
        settings["backoff_initial_s"], settings["backoff_max_s"], settings["reset_after_s"]
    )
    Supervisor(state_dir, backoff).run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
