"""ComponentControl for kind nodes: every control-plane component is a static pod there
(`kubedrill.targets.static_pod`); what runs on a node follows from its kind role, so no exec is
needed to know it (the node may be paused)."""

from __future__ import annotations

from collections.abc import Sequence

from kubedrill.cluster import CommandLine, FaultSteps, Node
from kubedrill.errors import FaultError
from kubedrill.targets.static_pod import STATIC_PODS, StaticPodControl
from kubedrill.transport.node_container import OBSERVER

__all__ = ["OBSERVER", "KindControl", "node_components"]


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


class KindControl:
    def __init__(self) -> None:
        self.pods = StaticPodControl()

    def _check_component(self, node: Node, component: str) -> None:
        if component not in node_components(node) or component not in STATIC_PODS:
            pods = [c for c in node_components(node) if c in STATIC_PODS]
            raise FaultError(
                f"{component} is not a static pod on {node.name}",
                f"static pods there: {', '.join(pods) or 'none'} (the load balancer is a node "
                "container of its own: use the node faults PauseNode/StopNode/KillNode)",
            )

    def stop(self, node: Node, component: str) -> FaultSteps:
        self._check_component(node, component)
        return self.pods.stop(node, component)

    def kill(self, node: Node, component: str) -> FaultSteps:
        self._check_component(node, component)
        return self.pods.kill(node, component)

    def pause(self, node: Node, component: str) -> FaultSteps:
        self._check_component(node, component)
        return self.pods.pause(node, component)

    def is_running(self, node: Node, component: str) -> bool:
        if component not in STATIC_PODS:
            return component in node_components(node)
        return self.pods.is_running(node, component)

    def components(self, node: Node) -> Sequence[str]:
        return node_components(node)

    def logs(self, node: Node, component: str, *, since_wall: float | None = None) -> str:
        return self.pods.logs(node, component, since_wall=since_wall)

    def command_line(self, node: Node, component: str) -> CommandLine | None:
        if component not in STATIC_PODS:
            return None
        return self.pods.command_line(node, component)
