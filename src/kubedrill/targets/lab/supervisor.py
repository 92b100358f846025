"""The lab's kubelet: starts every component in its host's namespace and restarts it on exit.

Like kubelet with static pods, a component that exits is restarted with exponential back-off.
A fault "holds" a component down by creating `holds/<host>__<component>`; the supervisor then
leaves it stopped until the hold file is removed (heal), and restarts it at once.

Run as `python -m kubedrill.targets.lab.supervisor STATE_DIR` (detached by `lab up`). It reads
`components.json`, writes pid files to `run/`, per-component logs to `logs/`, and its own
status to `run/status.json`. SIGTERM stops every component (SIGCONT first, for paused ones),
then the supervisor exits.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO


@dataclass(frozen=True)
class ComponentSpec:
    host: str
    component: str
    netns: str
    argv: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.host}__{self.component}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "component": self.component,
            "netns": self.netns,
            "argv": list(self.argv),
            "env": self.env,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ComponentSpec:
        return cls(
            raw["host"],
            raw["component"],
            raw["netns"],
            tuple(raw["argv"]),
            dict(raw.get("env", {})),
        )


WANTED_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGCHLD}


def _unblock_signals() -> None:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, WANTED_SIGNALS)


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

    def hold_file(self, slot: Slot) -> Path:
        return self.holds / slot.spec.key

    def start(self, slot: Slot) -> None:
        spec = slot.spec
        log_dir = self.logs / spec.host
        log_dir.mkdir(parents=True, exist_ok=True)
        if slot.log is None:
            slot.log = open(log_dir / f"{spec.component}.log", "a", buffering=1)  # noqa: SIM115
        slot.log.write(
            f"--- kubedrill supervisor: start #{slot.restarts + 1} at {time.time():.3f}\n"
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
                *spec.argv,
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
        for slot in self.slots:
            self.reap(slot, now)
            held = self.hold_file(slot).exists()
            if slot.held and not held:
                slot.restart_at = now  # heal: restart at once, as after `crictl start`
                slot.delay = 0.0
            slot.held = held
            if slot.proc is None and not held and now >= slot.restart_at:
                if slot.last_exit is not None:
                    slot.restarts += 1
                self.start(slot)
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
                # hold files being removed.
                info = signal.sigtimedwait(wanted, 0.1)
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
