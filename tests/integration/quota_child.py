"""Child process for the quota heal test: fill the lab's etcd to NOSPACE inside the quota
fault (its undo record written first, as in a drill), then wait to be killed."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from kubedrill.disaster import quota
from kubedrill.faults.runner import FaultSession, install_sigterm_handler
from kubedrill.ledger import Ledger
from kubedrill.probes.etcd import EtcdClient
from kubedrill.targets.lab import lab
from kubedrill.timeline import Timeline

PREFIX = "/kubedrill/quota-heal/"


def main(state_dir: str) -> int:
    install_sigterm_handler()
    cluster = lab.load_cluster(Path(state_dir))
    etcd = EtcdClient(cluster.etcd, timeout=2.0)
    session = FaultSession(cluster, Timeline(), Ledger(), log=lambda _m: None)
    exhaust = quota.ExhaustQuota(prefix=PREFIX)
    reason = exhaust.available(cluster)
    if reason is not None:
        print(f"UNAVAILABLE {reason}", flush=True)
        return 1
    with session.inject(exhaust):
        filled = quota.fill_until_nospace(etcd, PREFIX + "fill/", quota.fill_plan(exhaust.quota))
        print("FULL" if filled.full else f"NOT FULL {filled}", flush=True)
        threading.Event().wait(120)  # killed here
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
