"""Control-plane components run by kubelet as static pods, found with crictl: one control for
every target that has them (kind's node containers, kubeadm nodes over SSH).

- stop: the manifest moves out of /etc/kubernetes/manifests, so kubelet stops the pod and keeps
  it stopped (a plain `crictl stop` is undone by kubelet at once: that is a kill); undo moves it
  back. This is how operators take a control-plane component down for maintenance.
- kill: SIGKILL of the component's process (a crash); kubelet restarts it with back-off.
- pause: SIGSTOP of the process until heal (SIGCONT): hung, but holding its sockets.

Every undo first thaws a paused node container (a no-op on other transports): a paused
container refuses exec, and `kubedrill heal` may replay these steps after another fault of the
same crashed run paused the node.
"""

from __future__ import annotations

import shlex
from typing import Any

import yaml

from kubedrill.cluster import CommandLine, FaultSteps, Node
from kubedrill.errors import FaultError, TargetError
from kubedrill.polling import poll_until
from kubedrill.transport import CommandResult, transport_for
from kubedrill.transport.node_container import thaw_first
from kubedrill.transport.step import Step

MANIFESTS = "/etc/kubernetes/manifests"
HELD = "/etc/kubernetes/kubedrill-held"  # outside kubelet's manifest dir, same filesystem
STATIC_PODS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
# kubelet notices the manifest within seconds, then honours the pod's grace period (30 s;
# kube-apiserver does not exit on SIGTERM, so it takes the whole grace).
STOP_WAIT_S = 90


def manifest_argv(text: str, component: str) -> tuple[str, ...] | None:
    """The command line of a static pod manifest's container (`command` + `args`): the
    container named after the component, else the first; None when the text is no pod."""
    try:
        doc: Any = yaml.safe_load(text)
        containers = doc["spec"]["containers"]
        chosen = next((c for c in containers if c.get("name") == component), containers[0])
        argv = [*(chosen.get("command") or []), *(chosen.get("args") or [])]
    except (yaml.YAMLError, KeyError, IndexError, TypeError, AttributeError):
        return None
    return tuple(str(a) for a in argv) or None


def running_ids_script(component: str) -> str:
    return f"crictl ps --name {shlex.quote('^' + component + '$')} --state running -q"


class StaticPodControl:
    """stop / kill / pause / is_running / logs of one static pod on one node."""

    def pid(self, node: Node, component: str) -> int:
        """The component's main process id (the node's pid namespace), via crictl. Asked again
        for a while when crictl gives no answer (a busy node, a container being replaced)."""
        script = (
            f'id=$({running_ids_script(component)} | head -n1); [ -n "$id" ] || exit 3; '
            "crictl inspect --output go-template --template '{{.info.pid}}' \"$id\""
        )
        transport = transport_for(node.transport)

        def ask() -> CommandResult:
            return transport.run(["sh", "-c", script], timeout=20)

        def answered(result: CommandResult) -> bool:
            return result.exit_code == 3 or result.stdout.strip().isdigit()

        result, _ = poll_until(ask, answered, timeout=30, interval=1.0)
        if result.exit_code == 3:
            raise FaultError(
                f"{component} is not running on {node.name}",
                "wait for kubelet to bring it back (crictl ps on the node) before this fault",
            )
        if not result.ok or not result.stdout.strip().isdigit():
            raise TargetError(
                f"cannot find {component}'s process on {node.name}: "
                f"{(result.stderr or result.stdout).strip()[:300]}",
                "the node must run kubelet with crictl (a kind or kubeadm node)",
            )
        return int(result.stdout.strip())

    def stop(self, node: Node, component: str) -> FaultSteps:
        manifest, held = f"{MANIFESTS}/{component}.yaml", f"{HELD}/{component}.yaml"
        spec = node.transport
        hold = f"[ -f {held} ] || {{ mkdir -p {HELD} && mv {manifest} {held}; }}"
        wait_gone = f'until [ -z "$({running_ids_script(component)})" ]; do sleep 0.5; done'
        back = f"if [ -f {held} ]; then mv {held} {manifest}; fi; [ -f {manifest} ]"
        return FaultSteps(
            inject=(
                Step(spec, ("sh", "-c", hold)),
                Step(
                    spec,
                    ("timeout", str(STOP_WAIT_S), "sh", "-c", wait_gone),
                    timeout=STOP_WAIT_S + 10,
                ),
            ),
            undo=(*thaw_first(spec), Step(spec, ("sh", "-c", back))),
        )

    def kill(self, node: Node, component: str) -> FaultSteps:
        pid = self.pid(node, component)
        return FaultSteps(
            inject=(Step(node.transport, ("kill", "-KILL", str(pid))),),
            undo=tuple(thaw_first(node.transport)),
        )

    def pause(self, node: Node, component: str) -> FaultSteps:
        pid = self.pid(node, component)
        return FaultSteps(
            inject=(Step(node.transport, ("kill", "-STOP", str(pid))),),
            undo=(
                *thaw_first(node.transport),
                Step(node.transport, ("sh", "-c", f"kill -CONT {pid} 2>/dev/null; true")),
            ),
        )

    def is_running(self, node: Node, component: str) -> bool:
        result = transport_for(node.transport).run(
            ["sh", "-c", running_ids_script(component)], timeout=10
        )
        return result.ok and bool(result.stdout.strip())

    def logs(self, node: Node, component: str, *, since_wall: float | None = None) -> str:
        since = ""
        if since_wall is not None:  # as a duration, computed on the node's clock
            since = f"--since $(( $(date +%s) - {int(since_wall)} ))s "
        script = (
            f"id=$(crictl ps -a --name {shlex.quote('^' + component + '$')} -q | head -n1); "
            f'[ -n "$id" ] && crictl logs {since}--tail 400 "$id" 2>&1'
        )
        result = transport_for(node.transport).run(["sh", "-c", script], timeout=20)
        return result.stdout if result.ok else ""

    def command_line(self, node: Node, component: str) -> CommandLine | None:
        """From the manifest kubelet runs (read only; a held manifest counts too)."""
        for path in (f"{MANIFESTS}/{component}.yaml", f"{HELD}/{component}.yaml"):
            out = transport_for(node.transport).run(["cat", path], timeout=20)
            argv = manifest_argv(out.stdout, component) if out.ok else None
            if argv:
                return CommandLine(argv, f"{node.name}:{path}")
        return None
