"""Child process for the kind target's exit-path tests: inject one fault on the podman-made
kind nodes, say so, then wait to be killed."""

from __future__ import annotations

import sys
import threading

from kubedrill.cluster import Cluster, EtcdAccess
from kubedrill.faults import Fault, Isolate, Selector
from kubedrill.faults.node_container import KillNode, PauseNode, StopNode
from kubedrill.faults.runner import FaultSession, install_sigterm_handler
from kubedrill.ledger import Ledger
from kubedrill.targets.kind.cluster import discover_nodes
from kubedrill.targets.kind.control import OBSERVER, KindControl
from kubedrill.timeline import Timeline


def nodes_only_cluster(name: str, docker_host: str) -> Cluster:
    """The kind target's nodes, transports and control; the fake nodes run no etcd."""
    return Cluster(
        name=f"kind/{name}",
        target="kind",
        nodes=discover_nodes(name, docker_host=docker_host),
        etcd=EtcdAccess({}, None),
        control=KindControl(),
        observer=OBSERVER,
    )


def fault_named(name: str, cluster: str) -> Fault:
    faults: dict[str, Fault] = {
        "pause": PauseNode(Selector.named(f"{cluster}-worker")),
        "stop": StopNode(Selector.named(f"{cluster}-worker"), grace_s=2),
        "kill": KillNode(Selector.named(f"{cluster}-worker")),
        "isolate": Isolate(Selector.named(f"{cluster}-control-plane3")),
    }
    return faults[name]


def main(docker_host: str, name: str, fault: str) -> int:
    install_sigterm_handler()
    cluster = nodes_only_cluster(name, docker_host)
    session = FaultSession(cluster, Timeline(), Ledger(), log=lambda _m: None)
    with session.inject(fault_named(fault, name)):
        print("INJECTED", flush=True)
        threading.Event().wait(60)  # until the parent's signal
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
