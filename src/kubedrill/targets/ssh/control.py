"""ComponentControl over SSH: find out how each component runs on a node, then stop, kill and
pause it the way an operator would.

Discovery, per node and component, in this order (the inventory's `manager` can force one):
  kubedrill-lab  the host's sshd sets KUBEDRILL_LAB_STATE/KUBEDRILL_LAB_HOST (a kubedrill lab
                 host) and the lab's components.json lists the component: the lab supervisor's
                 hold files and signals, exactly as LabControl does them;
  static-pod     /etc/kubernetes/manifests/<component>.yaml exists and `crictl ps` shows it:
                 stop = move the manifest out (kubelet removes the pod), kill = `crictl stop`;
  systemd        `systemctl is-active <component>`: stop/start, `systemctl kill -s KILL`;
  process        a process whose argv[0] is the component: kill and pause only.
"""

from __future__ import annotations

import json
import shlex
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from kubedrill.cluster import COMPONENT_ROLE, CommandLine, FaultSteps, Node
from kubedrill.errors import FaultError
from kubedrill.targets.lab.control import LabControl, _wall_of
from kubedrill.targets.static_pod import MANIFESTS, StaticPodControl
from kubedrill.transport import Transport, TransportSpec, transport_for
from kubedrill.transport.step import Step


@dataclass(frozen=True)
class Managed:
    """How one component runs on one node."""

    kind: str  # "kubedrill-lab" | "static-pod" | "systemd" | "process"
    detail: str  # lab host name | container id | unit | pid


def _sh(spec: TransportSpec, script: str, *args: str, timeout: float = 30.0) -> Step:
    return Step(spec, ("sh", "-c", script, "kubedrill", *args), timeout=timeout)


class _LabOverSsh(LabControl):
    """The lab supervisor's control, its files read and its commands run on the lab host."""

    def __init__(self, state_dir: Path, transport: Transport, lab_host: str) -> None:
        super().__init__(state_dir)
        self.remote = transport
        self.lab_host = lab_host

    def where(self, node: Node) -> TransportSpec:
        return node.transport

    def _key(self, node: Node, component: str) -> str:
        return f"{self.lab_host}__{component}"

    def pid(self, node: Node, component: str) -> int | None:
        path = self.state_dir / "run" / f"{self._key(node, component)}.pid"
        out = self.remote.run(["cat", str(path)], timeout=10)
        try:
            return int(out.stdout) if out.ok else None
        except ValueError:
            return None

    def _live_pid(self, node: Node, component: str) -> int:
        pid = self.pid(node, component)
        if pid is None or not self.remote.run(["test", "-d", f"/proc/{pid}"], timeout=10).ok:
            raise FaultError(
                f"{component} is not running on {node.name}",
                "wait for it to come back before this fault",
            )
        return pid

    def is_running(self, node: Node, component: str) -> bool:
        pid = self.pid(node, component)
        if pid is None:
            return False
        stat = self.remote.run(["cat", f"/proc/{pid}/stat"], timeout=10)
        if not stat.ok or ")" not in stat.stdout:
            return False
        return stat.stdout.rsplit(")", 1)[1].split()[0] not in ("T", "t", "Z", "X")

    def read_text(self, path: str) -> str | None:
        out = self.remote.run(["cat", path], timeout=15)
        return out.stdout if out.ok else None

    def logs(self, node: Node, component: str, *, since_wall: float | None = None) -> str:
        path = self.state_dir / "logs" / self.lab_host / f"{component}.log"
        out = self.remote.run(["tail", "-n", "2000", str(path)], timeout=20)
        lines = out.stdout.splitlines() if out.ok else []
        if since_wall is not None:
            lines = [ln for ln in lines if (_wall_of(ln) or since_wall) >= since_wall]
        return "\n".join(lines[-400:])


class SshControl:
    """ComponentControl for nodes reached over SSH."""

    def __init__(self, managers: dict[str, str] | None = None) -> None:
        self.managers = managers or {}  # node name -> forced manager ("auto" when absent)
        self._found: dict[tuple[str, str], Managed] = {}
        self._labs: dict[str, _LabOverSsh | None] = {}
        self._lock = threading.Lock()
        self._pods = StaticPodControl()

    # -- discovery ------------------------------------------------------------------------------

    def _transport(self, node: Node) -> Transport:
        return transport_for(node.transport)

    def _lab(self, node: Node) -> _LabOverSsh | None:
        """The lab control of a kubedrill lab host, or None when the host is not one."""
        if node.name not in self._labs:
            transport = self._transport(node)
            probe = transport.run(
                [
                    "sh",
                    "-c",
                    'test -n "$KUBEDRILL_LAB_STATE" && test -n "$KUBEDRILL_LAB_HOST" '
                    '&& echo "$KUBEDRILL_LAB_STATE" && echo "$KUBEDRILL_LAB_HOST"',
                ],
                timeout=15,
            )
            if probe.exit_code == 255:  # no answer: not a "no", ask again next time
                return None
            lab = None
            if probe.ok and len(probe.stdout.split("\n")) >= 2:
                state, host = probe.stdout.split("\n")[:2]
                lab = _LabOverSsh(Path(state), transport, host)
            self._labs[node.name] = lab
        return self._labs[node.name]

    def manager(self, node: Node, component: str) -> Managed:
        """How `component` runs on `node`; FaultError naming everything tried when unknown."""
        key = (node.name, component)
        with self._lock:
            if key not in self._found:
                self._found[key] = self._discover(node, component)
            return self._found[key]

    def forget(self, node: Node, component: str) -> None:
        """Container ids and pids change after a restart: look again next time."""
        with self._lock:
            self._found.pop((node.name, component), None)

    def _discover(self, node: Node, component: str) -> Managed:
        forced = self.managers.get(node.name, "auto")
        transport = self._transport(node)
        tried: list[str] = []
        if forced in ("auto", "kubedrill-lab"):
            lab = self._lab(node)
            tried.append("kubedrill lab host (KUBEDRILL_LAB_STATE set by its sshd)")
            if lab is not None:
                listed = transport.run(["cat", str(lab.state_dir / "components.json")], timeout=15)
                try:
                    specs = json.loads(listed.stdout) if listed.ok else []
                except ValueError:
                    specs = []
                if any(s["host"] == lab.lab_host and s["component"] == component for s in specs):
                    return Managed("kubedrill-lab", lab.lab_host)
        if forced in ("auto", "static-pod"):
            tried.append(f"static pod ({MANIFESTS}/{component}.yaml and crictl ps)")
            found = transport.run(
                [
                    "sh",
                    "-c",
                    f'test -f {MANIFESTS}/"$0".yaml && command -v crictl >/dev/null '
                    '&& crictl ps --name "^$0\\$" -q | head -n1',
                    component,
                ],
                timeout=20,
            )
            if found.ok and found.stdout.strip():
                return Managed("static-pod", found.stdout.strip())
        if forced in ("auto", "systemd"):
            tried.append(f"systemd unit {component} (systemctl is-active)")
            active = transport.run(["systemctl", "is-active", component], timeout=15)
            if active.stdout.strip() == "active":
                return Managed("systemd", component)
        if forced in ("auto", "process"):
            tried.append(f"a process whose argv[0] is {component} (pgrep -f)")
            pid = self._process_pid(transport, component)
            if pid is not None:
                return Managed("process", pid)
        raise FaultError(
            f"cannot tell how {component} runs on {node.name} (manager: {forced}); tried: "
            + "; ".join(tried),
            "check that it runs there, or set the host's manager in the inventory; "
            "nothing was injected",
        )

    @staticmethod
    def _process_pid(transport: Transport, component: str) -> str | None:
        pattern = f"^(\\S*/)?{component}( |$)"
        out = transport.run(["pgrep", "-o", "-f", pattern], timeout=15)
        pid = out.stdout.strip()
        return pid if out.ok and pid.isdigit() else None

    # -- ComponentControl: one strategy object per way of running a component ----------------

    def _strategy(self, node: Node, component: str) -> _Strategy:
        found = self.manager(node, component)
        if found.kind == "kubedrill-lab":
            lab = self._lab(node)
            assert lab is not None  # discovery said so
            return lab
        if found.kind == "static-pod":
            return self._pods
        if found.kind == "systemd":
            return _Systemd(found.detail)
        return _Process(found.detail)

    def stop(self, node: Node, component: str) -> FaultSteps:
        steps = self._strategy(node, component).stop(node, component)
        self.forget(node, component)  # it comes back with a new pid / container id
        return steps

    def kill(self, node: Node, component: str) -> FaultSteps:
        steps = self._strategy(node, component).kill(node, component)
        self.forget(node, component)
        return steps

    def pause(self, node: Node, component: str) -> FaultSteps:
        return self._strategy(node, component).pause(node, component)

    def is_running(self, node: Node, component: str) -> bool:
        try:
            strategy = self._strategy(node, component)
        except FaultError:
            return False
        return strategy.is_running(node, component)

    def components(self, node: Node) -> Sequence[str]:
        wanted = [c for c, role in COMPONENT_ROLE.items() if role in node.roles]
        found = []
        for component in wanted:
            try:
                self.manager(node, component)
            except FaultError:
                continue
            found.append(component)
        return found

    def logs(self, node: Node, component: str, *, since_wall: float | None = None) -> str:
        try:
            strategy = self._strategy(node, component)
        except FaultError:
            return ""
        return strategy.logs(node, component, since_wall=since_wall)

    def command_line(self, node: Node, component: str) -> CommandLine | None:
        try:
            strategy = self._strategy(node, component)
        except FaultError:
            return None
        return strategy.command_line(node, component)


class _Strategy(Protocol):
    def stop(self, node: Node, component: str) -> FaultSteps: ...

    def kill(self, node: Node, component: str) -> FaultSteps: ...

    def pause(self, node: Node, component: str) -> FaultSteps: ...

    def is_running(self, node: Node, component: str) -> bool: ...

    def logs(self, node: Node, component: str, *, since_wall: float | None = None) -> str: ...

    def command_line(self, node: Node, component: str) -> CommandLine | None: ...


def proc_cmdline(node: Node, pid: str) -> CommandLine | None:
    """/proc/PID/cmdline on the node (NUL-separated argv)."""
    out = transport_for(node.transport).run(["cat", f"/proc/{pid}/cmdline"], timeout=15)
    if not out.ok or not out.stdout:
        return None
    return CommandLine(tuple(out.stdout.rstrip("\0").split("\0")), f"/proc/{pid}/cmdline")


@dataclass(frozen=True)
class _Systemd:
    unit: str

    def stop(self, node: Node, component: str) -> FaultSteps:
        return FaultSteps(
            inject=(Step(node.transport, ("systemctl", "stop", self.unit), timeout=120),),
            undo=(Step(node.transport, ("systemctl", "start", self.unit), timeout=120),),
        )

    def kill(self, node: Node, component: str) -> FaultSteps:
        kill = ("systemctl", "kill", "-s", "KILL", self.unit)
        return FaultSteps(inject=(Step(node.transport, kill),), undo=())

    def pause(self, node: Node, component: str) -> FaultSteps:
        return FaultSteps(
            inject=(Step(node.transport, ("systemctl", "kill", "-s", "STOP", self.unit)),),
            undo=(Step(node.transport, ("systemctl", "kill", "-s", "CONT", self.unit)),),
        )

    def is_running(self, node: Node, component: str) -> bool:
        return transport_for(node.transport).run(["systemctl", "is-active", self.unit]).ok

    def logs(self, node: Node, component: str, *, since_wall: float | None = None) -> str:
        since = ["--since", f"@{int(since_wall)}"] if since_wall is not None else []
        argv = ["journalctl", "-u", self.unit, "-n", "400", "--no-pager", *since]
        out = transport_for(node.transport).run(argv, timeout=30)
        return (out.stdout + out.stderr) if out.ok else ""

    def command_line(self, node: Node, component: str) -> CommandLine | None:
        argv = ["systemctl", "show", "-p", "MainPID", "--value", self.unit]
        pid = transport_for(node.transport).run(argv, timeout=15).stdout.strip()
        if not pid.isdigit() or pid == "0":
            return None
        found = proc_cmdline(node, pid)
        return found and CommandLine(found.argv, f"unit {self.unit}, {found.source}")


@dataclass(frozen=True)
class _Process:
    """A process with no supervisor kubedrill knows: kill and pause only."""

    pid: str

    def stop(self, node: Node, component: str) -> FaultSteps:
        raise FaultError(
            f"{component} on {node.name} runs as a plain process (pid {self.pid}) with no "
            "supervisor kubedrill knows: stopped, nothing would start it again",
            "use kill or pause, or run it as a static pod or systemd unit; nothing was injected",
        )

    def kill(self, node: Node, component: str) -> FaultSteps:
        return FaultSteps(inject=(Step(node.transport, ("kill", "-KILL", self.pid)),), undo=())

    def pause(self, node: Node, component: str) -> FaultSteps:
        return FaultSteps(
            inject=(Step(node.transport, ("kill", "-STOP", self.pid)),),
            undo=(_sh(node.transport, f"kill -CONT {self.pid} 2>/dev/null; true"),),
        )

    def is_running(self, node: Node, component: str) -> bool:
        transport = transport_for(node.transport)
        stat = transport.run(["cat", f"/proc/{self.pid}/stat"], timeout=10)
        state = stat.stdout.rsplit(")", 1)[1].split()[0] if ")" in stat.stdout else "X"
        return stat.ok and state not in ("T", "t", "Z", "X")

    def logs(self, node: Node, component: str, *, since_wall: float | None = None) -> str:
        return ""

    def command_line(self, node: Node, component: str) -> CommandLine | None:
        return proc_cmdline(node, self.pid)


def describe(found: Managed) -> str:
    """One line for `kubedrill ssh check`."""
    if found.kind == "static-pod":
        return f"static pod (container {found.detail[:13]})"
    if found.kind == "systemd":
        return f"systemd unit {shlex.quote(found.detail)}"
    if found.kind == "process":
        return f"process {found.detail} (kill/pause only)"
    return f"kubedrill lab supervisor (host {found.detail})"
