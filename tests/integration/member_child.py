"""Child process for the member replacement's SIGKILL tests: lose a follower's disk on a lab,
carry the runbook to the point the parent names, say where it is, and wait to be SIGKILLed.

Points: "mid-inject" (the member killed and held, its data not moved yet: the undo record
written, the fault half injected), "after-wipe", "wrong-way" (started on its empty data dir
with its old flags, and refused), "after-remove", "after-add", "after-start".
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from kubedrill.disaster.replacement import LoseMemberDisk, Replacement, member_disk
from kubedrill.disaster.wrong_way import refusal_in_log
from kubedrill.faults.runner import FaultSession, install_sigterm_handler
from kubedrill.ledger import Ledger, run_steps
from kubedrill.polling import poll_until
from kubedrill.probes.etcd import EtcdClient
from kubedrill.targets.lab import lab
from kubedrill.timeline import Timeline

STEPS = {"after-remove": 1, "after-add": 2, "after-start": 3}


def main(state_dir: str, point: str) -> int:
    install_sigterm_handler()
    cluster = lab.load_cluster(Path(state_dir))
    etcd = EtcdClient(cluster.etcd)
    fault = LoseMemberDisk()
    if point == "mid-inject":
        plan = fault.plan(cluster)
        Ledger().record(cluster.name, plan)  # as the runner does, before the first step
        failures = run_steps(plan.inject[:-1])  # killed and held; the move never came
        assert not failures, failures
        print(f"AT {point} {plan.victims[0]} {plan.data['member_id']}", flush=True)
        threading.Event().wait(120)
        return 1
    session = FaultSession(cluster, Timeline(), Ledger(), log=lambda _m: None)
    with session.inject(fault) as plan:
        runbook = Replacement(etcd, member_disk(cluster, plan.victims[0]))
        if point == "wrong-way":
            log = runbook.disk.log_path()
            skip = len(log.read_text(errors="replace").splitlines())
            runbook.disk.start_with({})
            _, refused = poll_until(
                lambda: refusal_in_log(log.read_text(errors="replace").splitlines()[skip:]),
                lambda r: r is not None,
                timeout=20,
            )
            assert refused, "etcd did not refuse the wiped member"
        for _name, _what, step in runbook.plan()[: STEPS.get(point, 0)]:
            step()
        print(f"AT {point} {plan.victims[0]} {plan.data['member_id']}", flush=True)
        threading.Event().wait(120)
    return 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
