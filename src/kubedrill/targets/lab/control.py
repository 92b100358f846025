"""ComponentControl for the lab: faults act through the supervisor's hold files and signals."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path

from kubedrill.cluster import CommandLine, FaultSteps, Node
from kubedrill.errors import ConfigError, FaultError
from kubedrill.targets.lab import layout, overrides
from kubedrill.targets.lab.member_disk import MemberDisk
from kubedrill.transport import TransportSpec
from kubedrill.transport.step import Step

LOCAL = TransportSpec("local", "kubedrill")


def graceful_stop_script(pid: int, grace_s: int) -> str:
    # tail looks for the process once a second by default: "stopped" would be marked up to
    # 1 s after it was.
    wait = f"timeout {{}} tail -s 0.05 --pid={pid} -f /dev/null"
    return (
        f"kill -TERM {pid} 2>/dev/null; {wait.format(grace_s)} || "
        f"{{ kill -KILL {pid} 2>/dev/null; {wait.format(10)}; }}"
    )


class LabControl:
    def __init__(self, state_dir: Path, grace_s: int = 10) -> None:
        self.state_dir = state_dir
        self.grace_s = grace_s

    def where(self, node: Node) -> TransportSpec:
        """Where the fault's commands run: here, beside the supervisor (the SSH target runs
        the same commands on the lab host it logged in to)."""
        return LOCAL

    def _key(self, node: Node, component: str) -> str:
        return layout.component_key(node.name, component)

    def pid(self, node: Node, component: str) -> int | None:
        return layout.read_pid(self.state_dir, node.name, component)

    def _live_pid(self, node: Node, component: str) -> int:
        pid = self.pid(node, component)
        if pid is None or not Path(f"/proc/{pid}").exists():
            raise FaultError(
                f"{component} is not running on {node.name}",
                "wait for it to come back (kubedrill lab status) before this fault",
            )
        return pid

    def _hold(self, node: Node, component: str) -> str:
        return str(layout.hold_file(self.state_dir, node.name, component))

    def stop(self, node: Node, component: str) -> FaultSteps:
        pid = self._live_pid(node, component)
        hold = self._hold(node, component)
        return FaultSteps(
            inject=(
                Step(self.where(node), ("touch", hold)),
                # Like `crictl stop --timeout`: SIGTERM, a grace period, then SIGKILL; and wait
                # for the process to be gone, so "stopped" means stopped. (kube-apiserver can
                # take a minute to drain on SIGTERM.)
                Step(
                    self.where(node),
                    ("sh", "-c", graceful_stop_script(pid, self.grace_s)),
                    timeout=self.grace_s + 15,
                ),
            ),
            undo=(Step(self.where(node), ("rm", "-f", hold)),),
        )

    def power_off(self, node: Node, component: str) -> FaultSteps:
        """The host lost power: SIGKILL (no grace, no shutdown), and it stays down until the
        power comes back (the hold file, removed by the undo; the supervisor then starts it
        as kubelet would after a reboot)."""
        pid = self._live_pid(node, component)
        wait_gone = f"timeout 10 tail -s 0.05 --pid={pid} -f /dev/null"
        return FaultSteps(
            inject=(
                Step(self.where(node), ("touch", self._hold(node, component))),
                Step(
                    self.where(node),
                    ("sh", "-c", f"kill -KILL {pid} 2>/dev/null; {wait_gone}"),
                    timeout=15,
                ),
            ),
            undo=(Step(self.where(node), ("rm", "-f", self._hold(node, component))),),
        )

    def kill(self, node: Node, component: str) -> FaultSteps:
        pid = self._live_pid(node, component)
        return FaultSteps(inject=(Step(self.where(node), ("kill", "-KILL", str(pid))),), undo=())

    def pause(self, node: Node, component: str) -> FaultSteps:
        pid = self._live_pid(node, component)
        return FaultSteps(
            inject=(Step(self.where(node), ("kill", "-STOP", str(pid))),),
            undo=(Step(self.where(node), ("sh", "-c", f"kill -CONT {pid} 2>/dev/null; true")),),
        )

    def crash_host(self, node: Node) -> FaultSteps:
        """The lab host goes dark as a powered-off host does: every process on it dies at once
        (SIGKILL: nothing runs its shutdown, keepalived sends no goodbye) and its interface goes
        down (a dead kernel answers no ARP: without this the VIP keepalived held would stay on
        it, answering beside the new holder's). Held so until heal, which is the host booting:
        its interface up with its own address only (a VIP it held is gone), its components
        started again."""
        netns = node.transport.params.get("netns")
        if not netns:
            raise FaultError(f"{node.name} is not a lab host", "run this fault on a lab")
        holds = [self._hold(node, c) for c in self.components(node)]
        pids = f"ip netns pids {netns}"
        gone = f'until [ -z "$({pids})" ]; do sleep 0.02; done'
        boot = (
            f"ip -n {netns} -4 addr flush dev eth0 secondary && "
            f"ip -n {netns} link set eth0 up && "
            f"ip -n {netns} -o link show eth0 | grep -q ',UP'"
        )
        local = self.where(node)
        return FaultSteps(
            inject=(
                Step(local, ("touch", *holds)),
                # Frozen first, then killed: no process sees another die first (keepalived's
                # VRRP child gets a signal when its parent dies and would send a goodbye).
                Step(
                    local,
                    ("sh", "-c", f"{pids} | xargs -r kill -STOP; {pids} | xargs -r kill -KILL"),
                ),
                Step(local, ("timeout", "10", "sh", "-c", gone), timeout=15),
                Step(local, ("ip", "-n", netns, "link", "set", "eth0", "down")),
            ),
            undo=(Step(local, ("sh", "-c", boot)), Step(local, ("rm", "-f", *holds))),
        )

    def member_disk(self, node: Node) -> MemberDisk:
        """The etcd member on `node`: its data dir, and starts with other flags (member
        replacement drills)."""
        return MemberDisk.of(self.state_dir, node.name)

    def is_running(self, node: Node, component: str) -> bool:
        pid = self.pid(node, component)
        if pid is None:
            return False
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        state = stat.rsplit(")", 1)[1].split()[0]
        return state not in ("T", "t", "Z", "X")

    def components(self, node: Node) -> Sequence[str]:
        specs = json.loads((self.state_dir / "components.json").read_text())
        return [s["component"] for s in specs if s["host"] == node.name]

    def logs(self, node: Node, component: str, *, since_wall: float | None = None) -> str:
        path = self.state_dir / "logs" / node.name / f"{component}.log"
        try:
            lines = path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        if since_wall is None:
            return "\n".join(lines[-400:])
        # Since a moment, every line (bounded): HAProxy's connection log, which the rolling
        # restart reads, is a line per request.
        lines = [ln for ln in lines if (_wall_of(ln) or since_wall) >= since_wall]
        return "\n".join(lines[-50000:])

    def read_text(self, path: str) -> str | None:
        """A file where the supervisor runs (here; over SSH for a lab host), None if unreadable."""
        try:
            return Path(path).read_text(errors="replace")
        except OSError:
            return None

    def command_line(self, node: Node, component: str) -> CommandLine | None:
        """The running process's /proc/PID/cmdline; the supervisor's components.json when it
        does not run (what it will be started with)."""
        pid = self.pid(node, component)
        if pid is not None:
            raw = self.read_text(f"/proc/{pid}/cmdline")
            # A pid file can outlive its process and the pid be reused: only a command line
            # naming this lab's state dir is the component's.
            if raw and f"{self.state_dir}/" in raw:
                return CommandLine(tuple(raw.rstrip("\0").split("\0")), f"/proc/{pid}/cmdline")
        listed = self.read_text(str(self.state_dir / "components.json"))
        try:
            specs = json.loads(listed) if listed else []
        except ValueError:
            return None
        host = self._key(node, component).split("__", 1)[0]
        for spec in specs:
            if spec.get("host") == host and spec.get("component") == component:
                argv = tuple(str(a) for a in spec.get("argv", ()))
                return self._with_override(node, component, argv)
        return None

    def _with_override(
        self, node: Node, component: str, argv: tuple[str, ...]
    ) -> CommandLine | None:
        """components.json's command line as the supervisor will start it: with the
        component's flag overrides (a member being replaced joins with `existing`)."""
        source = f"{self.state_dir / 'components.json'} (not running)"
        path = overrides.override_path(self.state_dir, self._key(node, component))
        text = self.read_text(str(path))
        if text is None:
            return CommandLine(argv, source)
        try:
            override = overrides.parse_override(text, path)
        except ConfigError:
            return None
        return CommandLine(override.apply(argv), f"{source}, with {path}")


def _wall_of(line: str) -> float | None:
    """etcd's zap logs carry a "ts" field, HAProxy's lines an ISO 8601 header (`log stdout
    format iso`); lines without either are kept."""
    if line[:4].isdigit() and line[4:5] == "-":
        try:
            return dt.datetime.fromisoformat(line.split(" ", 1)[0]).timestamp()
        except ValueError:
            return None
    if not line.startswith("{"):
        return None
    try:
        ts = json.loads(line).get("ts")
    except ValueError:
        return None
    if isinstance(ts, int | float):
        return float(ts)
    if isinstance(ts, str):
        try:
            return dt.datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None
