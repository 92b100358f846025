"""Child process for the DR heal test: snapshot, one more write, lose the etcd majority
(its undo record written first), carry the runbook out up to `killed_at`, then wait to be
SIGKILLed: `stopped` (every member down, nothing restored) or `half_restored` (one member's
data dir restored, the others not)."""

from __future__ import annotations

import dataclasses
import sys
import threading
from pathlib import Path

from kubedrill.disaster import backup, lab_restore, recovery
from kubedrill.faults.runner import FaultSession, install_sigterm_handler
from kubedrill.ledger import Ledger
from kubedrill.probes.etcd import EtcdClient
from kubedrill.targets.lab import lab
from kubedrill.timeline import Timeline


def main(state_dir: str, killed_at: str) -> int:
    install_sigterm_handler()
    cluster = lab.load_cluster(Path(state_dir))
    restore = lab_restore.LabRestore.from_state_dir(Path(state_dir))
    run = recovery.new_run_id()
    snapshot = restore.dr_dir(run) / "snapshot.db"
    snapshot.parent.mkdir(parents=True)
    etcd = EtcdClient(cluster.etcd, timeout=2.0)
    backup.save_snapshot(
        backup.EtcdTools.for_cluster(cluster), cluster.etcd, etcd.nodes[0], snapshot
    )
    etcd.put("/kubedrill/dr-test/after", "lost")
    session = FaultSession(cluster, Timeline(), Ledger(), log=lambda _m: None)
    fault = recovery.LoseEtcdMajority(run, snapshot, etcd.leader())
    with session.inject(fault, allow_quorum_loss=True):
        restore.stop(restore.etcd_targets())
        if killed_at == "half_restored":
            dataclasses.replace(restore, members=restore.members[:1]).restore_all(run, snapshot)
        print(f"AT {killed_at}", flush=True)
        threading.Event().wait(120)  # SIGKILLed here
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
