"""What the kind target's faults will run (plain data in the ledger): every undo thaws the
node container first, and node faults count what they take down for the quorum guard."""

from __future__ import annotations

from kubedrill.cluster import Cluster, EtcdAccess, Node
from kubedrill.faults import Isolate, Selector
from kubedrill.faults.node_container import KillNode, PauseNode, StopNode
from kubedrill.targets.kind.control import OBSERVER, KindControl, node_components
from kubedrill.transport import TransportSpec

HOST = "unix:///run/test.sock"


def node(name: str, *roles: str) -> Node:
    spec = TransportSpec("docker", name, {"container": name, "docker_host": HOST})
    return Node(name, frozenset(roles), "10.0.0.1", spec)


CP = node("k-control-plane", "control-plane", "etcd")
WORKER = node("k-worker", "worker")


def cluster() -> Cluster:
    return Cluster("kind/k", "kind", (CP, WORKER), EtcdAccess({}, None), KindControl(), OBSERVER)


def test_every_node_fault_undo_starts_by_unpausing() -> None:
    for fault in (PauseNode(Selector.named(CP.name)), StopNode(Selector.named(CP.name)),
                  KillNode(Selector.named(CP.name))):  # fmt: skip
        plan = fault.plan(cluster())
        first = plan.undo[0]
        assert first.transport == OBSERVER
        assert first.argv[3:5] == ("unpause", CP.name)
        assert "--if-exists" in first.argv and HOST in first.argv
        assert plan.takes_down == {(CP.name, c) for c in node_components(CP)}


def test_stop_node_passes_its_grace_and_heal_starts_the_node() -> None:
    plan = StopNode(Selector.named(WORKER.name), grace_s=7).plan(cluster())
    assert plan.inject[0].argv[3:5] == ("stop", WORKER.name)
    assert plan.inject[0].argv[-2:] == ("--grace", "7")
    assert plan.undo[-1].argv[3:5] == ("start", WORKER.name)
    assert plan.takes_down == frozenset()


def test_component_stop_moves_the_manifest_and_undo_moves_it_back() -> None:
    steps = KindControl().stop(CP, "etcd")
    assert (
        "mv /etc/kubernetes/manifests/etcd.yaml /etc/kubernetes/kubedrill-held/etcd.yaml"
        in (steps.inject[0].argv[2])
    )
    assert steps.undo[0].argv[3] == "unpause"
    assert (
        "mv /etc/kubernetes/kubedrill-held/etcd.yaml /etc/kubernetes/manifests/etcd.yaml"
        in (steps.undo[1].argv[2])
    )


def test_control_plane_nodes_run_stacked_etcd() -> None:
    assert node_components(CP) == (
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
    )
    assert node_components(WORKER) == ()


def test_network_fault_undo_on_a_node_container_unpauses_it_first() -> None:
    # A crashed run may have left the node paused as well: the iptables undo would be refused.
    plan = Isolate(Selector.named(CP.name)).plan(cluster())
    first = plan.undo[0]
    assert first.argv[2:5] == ("kubedrill.transport.container_ctl", "unpause", CP.name)
    assert first.transport.kind == "local"
    assert any(step.transport.kind == "docker" for step in plan.undo[1:])
