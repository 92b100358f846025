"""Child process for exit-path tests: inject one fault on a lab, then leave the `with` block
in the way the parent asks (normally, by exception, or by waiting to be signalled)."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from kubedrill.faults import (
    CrashHost,
    Fault,
    Isolate,
    KillComponent,
    NetemDelay,
    Partition,
    PauseComponent,
    Selector,
    StopComponent,
    ZoneOutage,
)
from kubedrill.faults.certs import ExpireCert
from kubedrill.faults.runner import FaultSession, install_sigterm_handler
from kubedrill.ledger import Ledger
from kubedrill.targets.lab import lab
from kubedrill.timeline import Timeline

FAULTS: dict[str, Fault] = {
    "stop": StopComponent("etcd", Selector.follower()),
    "kill": KillComponent("etcd", Selector.follower()),
    "pause": PauseComponent("etcd", Selector.follower()),
    "isolate": Isolate(Selector.follower()),
    "blackhole": Isolate(Selector.follower(), port=2380),
    "partition": Partition(),
    "delay": NetemDelay(200, Selector.follower()),
    # Long enough not to expire during the test: what is checked is that the undo re-issues.
    "expire-cert": ExpireCert("etcd-peer", Selector.follower(), valid_for_s=600),
    # On a lab with zones (test_zone_heal.py): the etcd leader's zone, by power or network.
    "zone-power": ZoneOutage("power"),
    "zone-network": ZoneOutage("network"),
    # The LB pair drills' host crash, on an etcd host here: every process killed, link down.
    "crash-host": CrashHost("etcd", Selector.follower()),
}


class DrillCrashed(RuntimeError):
    pass


def main(state_dir: str, fault_name: str, exit_path: str) -> int:
    install_sigterm_handler()  # as the pytest plugin and the CLI do
    cluster = lab.load_cluster(Path(state_dir))
    session = FaultSession(cluster, Timeline(), Ledger(), log=lambda _m: None)
    with session.inject(FAULTS[fault_name], allow_quorum_loss=False):
        print("INJECTED", flush=True)
        if exit_path == "exception":
            raise DrillCrashed("a probe blew up mid-fault")
        if exit_path != "normal":
            threading.Event().wait(60)  # wait for the parent's signal
    print("HEALED", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
