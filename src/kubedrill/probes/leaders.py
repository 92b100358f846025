"""Who leads what, the same way on every target: etcd's leader from its members, and the
controller-manager's and scheduler's from their Leases (holder `<hostname>_<uuid>`).

Targets differ only in how a Lease holder's hostname maps to a node name: on the lab and kind
it is the node's name; over SSH a host may call itself something else (`by_hostname`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from kubedrill.cluster import Cluster
from kubedrill.polling import poll_until
from kubedrill.probes.etcd import EtcdClient
from kubedrill.probes.kube import api_client, lease_holder

LEASED_COMPONENTS = ("kube-controller-manager", "kube-scheduler")


def add_leader_locators(cluster: Cluster, by_hostname: Mapping[str, str] | None = None) -> None:
    etcd = EtcdClient(cluster.etcd, timeout=0.8)

    def etcd_leader() -> str | None:
        """A one-off question (whom a fault targets), asked right after the steady state
        held: every member is asked, and a round that finds no quorum (a connection a restart
        left stale on two members at once, say) is asked again for a few seconds before the
        answer is "no leader"."""
        leader, _ = poll_until(
            lambda: etcd.leader_view(complete=True).leader, bool, timeout=5, interval=0.2
        )
        return leader

    cluster.leader_locators["etcd"] = etcd_leader
    if cluster.kube is None:
        return
    api = api_client(cluster.kube)
    names = dict(by_hostname or {})

    def locator(lease: str) -> Callable[[], str | None]:
        def locate() -> str | None:
            holder = lease_holder(api, lease)[0]
            return None if holder is None else names.get(holder, holder)

        return locate

    for component in LEASED_COMPONENTS:
        cluster.leader_locators[component] = locator(component)
