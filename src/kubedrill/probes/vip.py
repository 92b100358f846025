"""Which LB host holds the virtual IP: asked of each LB host's own interfaces (`ip addr`), the
ground truth keepalived acts on. Registered as the leader of keepalived and of the proxy next to
it, so faults pick "the active LB" with `Selector.leader()` like any other leader."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from kubedrill.cluster import Cluster

PROXIES = ("haproxy", "nginx")


def vip_holders(cluster: Cluster, vip: str) -> list[str]:
    """Every LB host that has `vip` on an interface that is up: one normally, none during a
    failover, two in a split brain. (A crashed host's kernel keeps the address on its dead
    interface: that serves nobody.)"""
    found = []
    for node in cluster.with_role("lb"):
        result = cluster.transport(node).run(["ip", "-4", "-o", "addr", "show", "up"], timeout=5)
        if result.ok and any(f" {vip}/" in line for line in result.stdout.splitlines()):
            found.append(node.name)
    return found


def add_vip_locators(cluster: Cluster, vip: str, components: Sequence[str]) -> None:
    def holder() -> str | None:
        holders = vip_holders(cluster, vip)
        return holders[0] if len(holders) == 1 else None

    for component in components:
        cluster.leader_locators[component] = holder


PAIR_NEEDED = (
    "needs a lab whose load balancer is a keepalived pair holding a VIP (lab.lb.hosts: 2, "
    "e.g. fixtures/labs/lb-pair.yaml or lb-nginx.yaml; make drill-lb)"
)


@dataclass(frozen=True)
class LbPair:
    """A lab's keepalived pair as drills see it: the VIP, the LB hosts, the proxy they run."""

    cluster: Cluster
    vip: str
    hosts: tuple[str, ...]
    proxy: str  # haproxy | nginx

    @classmethod
    def of(cls, cluster: Cluster) -> LbPair | str:
        """The pair, or why this cluster has none (the reason a drill is skipped with)."""
        if cluster.target != "lab":
            return f"{PAIR_NEEDED}; {cluster.name} is a {cluster.target} target"
        hosts = tuple(n.name for n in cluster.with_role("lb"))
        if cluster.kube is None or len(hosts) != 2 or "keepalived" not in cluster.leader_locators:
            return f"{PAIR_NEEDED}; {cluster.name} has {len(hosts)} LB host(s) and no VIP"
        vip = urlsplit(cluster.kube.server).hostname or ""
        proxies = [c for c in cluster.control.components(cluster.node(hosts[0])) if c in PROXIES]
        return cls(cluster, vip, hosts, proxies[0] if proxies else "haproxy")

    def holders(self) -> list[str]:
        return vip_holders(self.cluster, self.vip)

    def held_only_by(self, host: str) -> bool:
        return self.holders() == [host]

    def other(self, host: str) -> str:
        return next(h for h in self.hosts if h != host)

    def whole(self) -> bool:
        """Both hosts run the proxy and keepalived, and exactly one holds the VIP."""
        control = self.cluster.control
        running = all(
            control.is_running(self.cluster.node(h), c)
            for h in self.hosts
            for c in (self.proxy, "keepalived")
        )
        return running and len(self.holders()) == 1
