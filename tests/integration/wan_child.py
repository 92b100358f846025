"""Child process for the WAN heal tests: inject the WAN (and a region outage on top), print
INJECTED, then wait to be signalled. The regions are the `regions` topology's placement (the
Nth etcd member in region rN) laid over a small etcd lab, which is cheaper than a regions lab
with Kubernetes and carries the same kernel objects."""

from __future__ import annotations

import dataclasses
import sys
import threading
from pathlib import Path

from kubedrill.cluster import Cluster
from kubedrill.faults import Selector
from kubedrill.faults.runner import FaultSession, install_sigterm_handler
from kubedrill.faults.wan import RegionOutage, WanLinks
from kubedrill.faults.wan_shape import LinkSpec
from kubedrill.ledger import Ledger
from kubedrill.targets.lab import lab
from kubedrill.targets.lab.topology import region_name
from kubedrill.timeline import Timeline

DELAY_MS = 40.0


def with_regions(cluster: Cluster) -> Cluster:
    members = [n.name for n in cluster.with_role("etcd")]
    nodes = tuple(
        dataclasses.replace(n, region=region_name(members.index(n.name) + 1))
        if n.name in members
        else n
        for n in cluster.nodes
    )
    regional = dataclasses.replace(cluster, nodes=nodes)
    regional.leader_locators.update(cluster.leader_locators)
    return regional


def main(state_dir: str, shape: str) -> int:
    install_sigterm_handler()
    cluster = with_regions(lab.load_cluster(Path(state_dir)))
    session = FaultSession(cluster, Timeline(), Ledger(), log=lambda _m: None)
    with session.inject(WanLinks(LinkSpec(DELAY_MS, 0.0, 0.0))):
        if shape == "outage":
            with session.inject(RegionOutage(Selector.follower()), concurrent=True) as plan:
                print(f"INJECTED {','.join(plan.victims)}", flush=True)
                threading.Event().wait(120)
        else:
            print("INJECTED", flush=True)
            threading.Event().wait(120)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
