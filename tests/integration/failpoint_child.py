"""Child process for the failpoint heal test: arm what the parent names on a lab, say so, then
wait to be killed (the parent SIGKILLs it: nothing heals but `kubedrill heal`)."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from kubedrill.faults.base import Fault
from kubedrill.faults.disk import ThrottleDiskWrites
from kubedrill.faults.failpoint import ArmFailpoint
from kubedrill.faults.runner import FaultSession, install_sigterm_handler
from kubedrill.faults.shape import Selector
from kubedrill.ledger import Ledger
from kubedrill.targets.lab import lab
from kubedrill.timeline import Timeline

FAULTS: dict[str, Fault] = {
    # Sleeps on etcd-1's WAL saves: armed until undone.
    "sleep": ArmFailpoint("raftBeforeSave", "sleep(200)", Selector.named("etcd-1")),
    # Crashes etcd-3 at its next WAL save; the supervisor restarts it (with nothing armed).
    "panic": ArmFailpoint("raftBeforeSave", "panic", Selector.named("etcd-3")),
    # A crash point nothing runs: still armed when the runner dies (on etcd-3 too: the quorum
    # guard refuses a second member that may crash).
    "defrag": ArmFailpoint("defragBeforeRename", "panic", Selector.named("etcd-3")),
    "throttle": ThrottleDiskWrites("etcd", Selector.named("etcd-2"), write_iops=50),
}


def main(state_dir: str, *names: str) -> int:
    install_sigterm_handler()  # as the pytest plugin and the CLI do
    cluster = lab.load_cluster(Path(state_dir))
    session = FaultSession(cluster, Timeline(), Ledger(), log=lambda _m: None)
    contexts = [session.inject(FAULTS[name], concurrent=True) for name in names]
    for context in contexts:
        context.__enter__()
    print("ARMED", flush=True)
    threading.Event().wait(120)  # until the parent's SIGKILL
    return 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
