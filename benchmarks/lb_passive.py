"""What passive health checks cost: one apiserver hung (SIGSTOP) behind the lab's LB, new API
requests through it counted, on a HAProxy lab and an nginx lab alike.

    python benchmarks/lb_passive.py /var/lib/kubedrill/labs/lbp /var/lib/kubedrill/labs/lbn

A hung apiserver still accepts TCP connections (the kernel does), so only a check that asks it
something (HAProxy's GET /readyz) sees it; nginx's passive check counts failed connections only,
and a request sent there waits for its client's timeout. Each lab: the first control-plane
node's kube-apiserver is paused for HOLD_S through kubedrill's fault session (undo record
first, SIGCONT on every way out), while an API reader makes a request every 50 ms.
"""

from __future__ import annotations

import sys
import threading
from collections import Counter
from pathlib import Path

from kubedrill.faults import PauseComponent, Selector
from kubedrill.faults.runner import FaultSession
from kubedrill.ledger import Ledger
from kubedrill.targets.lab import lab
from kubedrill.timeline import Timeline
from kubedrill.workload.api_reader import ApiReader
from kubedrill.workload.history import longest_unavailability

HOLD_S = 20.0


def measure(state_dir: Path) -> str:
    cluster = lab.load_cluster(state_dir)
    assert cluster.kube is not None
    timeline = Timeline()
    reader = ApiReader(access=cluster.kube, timeline=timeline, interval=0.05, timeout=2.0)
    victim = cluster.nth("control-plane", 0)
    session = FaultSession(cluster, timeline, Ledger(), log=lambda _m: None)
    reader.start()
    threading.Event().wait(2.0)
    with session.inject(PauseComponent("kube-apiserver", Selector.named(victim))):
        threading.Event().wait(HOLD_S)
    threading.Event().wait(2.0)
    ops = reader.stop()
    during = [op for op in ops if not op.ok]
    window = longest_unavailability(ops)
    reasons = Counter(op.error for op in during)
    kind = next(
        c for c in cluster.control.components(cluster.with_role("lb")[0]) if c != "keepalived"
    )
    return (
        f"{kind}: {len(ops)} requests, {len(during)} failed or timed out "
        f"({dict(reasons)}), longest run {window.seconds if window else 0.0:.2f} s, "
        f"{victim}'s apiserver paused {HOLD_S:g} s"
    )


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(measure(Path(arg)), flush=True)
