"""ComponentControl for kind nodes: static pods run by kubelet under containerd, found with crictl.

- stop: the static pod's manifest moves out of /etc/kubernetes/manifests, so kubelet stops the
  pod and keeps it stopped (a plain `crictl stop` is undone by kubelet at once: that is a kill);
  undo moves it back. This is how operators take a control-plane component down for maintenance.
- kill: SIGKILL of the component's process (a crash); kubelet restarts it with back-off.
- pause: SIGSTOP of the process until heal (SIGCONT): hung but holding its sockets.

Every undo first unpauses the node container: a paused container refuses exec, and a node may
have been paused by another fault when `kubedrill heal` replays these steps.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from kubedrill.cluster import FaultSteps, Node
from kubedrill.errors import FaultError, TargetError
from kubedrill.transport import transport_for
from kubedrill.transport.node_container import OBSERVER, thaw_first
from kubedrill.transport.step import Step

__all__ = ["OBSERVER", "KindControl", "node_components", "unpause_step"]

MANIFESTS = "/etc/kubernetes/manifests"
HELD = "/etc/kubernetes/kubedrill-held"  # outside kubelet's manifest dir, same filesystem
STATIC_PODS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
STOP_WAIT_S = 90  # kubelet notices the manifest, then honours the pod's grace period (30 s)


def node_components(node: Node) -> tuple[str, ...]:
    """What runs on a kind node, from its roles (no exec: the node may be paused)."""
    found: list[str] = []
    if "etcd" in node.roles:
        found.append("etcd")
    if "control-plane" in node.roles:
        found += ["kube-apiserver", "kube-controller-manager", "kube-scheduler"]
    if "lb" in node.roles:
        found.append("haproxy")
    return tuple(found)


def unpause_step(node: Node) -> Step:
    """Observer step that thaws the node container if it is paused (idempotent)."""
    return thaw_first(node.transport)[0]


def running_ids_script(component: str) -> str:
    return f"crictl ps --name {shlex.quote('^' + component + '$')} --state running -q"


class KindControl:
    def __init__(self, grace_s: int = 10) -> None:
        self.grace_s = grace_s

    def _check_component(self, node: Node, component: str) -> None:
        if component not in node_components(node) or component == "haproxy":
            pods = [c for c in node_components(node) if c != "haproxy"]
            raise FaultError(
                f"{component} is not a static pod on {node.name}",
                f"static pods there: {', '.join(pods) or 'none'} (the load balancer is a node "
                "container of its own: use the node faults PauseNode/StopNode/KillNode)",
            )

    def _pid(self, node: Node, component: str) -> int:
        """The component's process id in the node's pid namespace, via crictl."""
        self._check_component(node, component)
        script = (
            f'id=$({running_ids_script(component)} | head -n1); [ -n "$id" ] || exit 3; '
            "crictl inspect --output go-template --template '{{.info.pid}}' \"$id\""
        )
        result = transport_for(node.transport).run(["sh", "-c", script], timeout=20)
        if result.exit_code == 3:
            raise FaultError(
                f"{component} is not running on {node.name}",
                "wait for kubelet to bring it back (crictl ps on the node) before this fault",
            )
        if not result.ok or not result.stdout.strip().isdigit():
            raise TargetError(
                f"cannot find {component}'s process on {node.name}: "
                f"{(result.stderr or result.stdout).strip()[:300]}",
                "the node must be a running kind node with crictl (kindest/node image)",
            )
        return int(result.stdout.strip())

    def stop(self, node: Node, component: str) -> FaultSteps:
        self._check_component(node, component)
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
            undo=(unpause_step(node), Step(spec, ("sh", "-c", back))),
        )

    def kill(self, node: Node, component: str) -> FaultSteps:
        pid = self._pid(node, component)
        return FaultSteps(
            inject=(Step(node.transport, ("kill", "-KILL", str(pid))),),
            undo=(unpause_step(node),),
        )

    def pause(self, node: Node, component: str) -> FaultSteps:
        pid = self._pid(node, component)
        return FaultSteps(
            inject=(Step(node.transport, ("kill", "-STOP", str(pid))),),
            undo=(
                unpause_step(node),
                Step(node.transport, ("sh", "-c", f"kill -CONT {pid} 2>/dev/null; true")),
            ),
        )

    def is_running(self, node: Node, component: str) -> bool:
        if component not in STATIC_PODS:
            return component in node_components(node)
        result = transport_for(node.transport).run(
            ["sh", "-c", running_ids_script(component)], timeout=10
        )
        return result.ok and bool(result.stdout.strip())

    def components(self, node: Node) -> Sequence[str]:
        return node_components(node)

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
