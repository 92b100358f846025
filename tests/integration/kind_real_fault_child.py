"""Child process for the real-kind exit-path test: inject one fault on a real kind cluster, say
so, then wait to be killed (by SIGKILL: no heal runs; `kubedrill heal` must repair it)."""

from __future__ import annotations

import sys
import threading

from kubedrill.faults import Fault, Isolate, PauseNode, Selector, StopComponent
from kubedrill.faults.runner import FaultSession
from kubedrill.ledger import Ledger
from kubedrill.targets.kind.cluster import kind_target
from kubedrill.timeline import Timeline


def fault_named(name: str) -> Fault:
    faults: dict[str, Fault] = {
        "pause-node": PauseNode(Selector.follower()),
        "stop-etcd": StopComponent("etcd", Selector.follower()),
        "isolate": Isolate(Selector.follower()),
    }
    return faults[name]


def main(cluster_name: str, fault: str) -> int:
    with kind_target(cluster_name) as cluster:
        session = FaultSession(cluster, Timeline(), Ledger(), log=lambda _m: None)
        with session.inject(fault_named(fault)):
            print("INJECTED", flush=True)
            threading.Event().wait(300)  # until the parent's SIGKILL
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
