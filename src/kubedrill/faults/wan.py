"""The WAN between regions, and a region going dark: faults over the lab's `regions` topology.

`WanLinks` makes the distance real on a kernel without sch_netem or fq: every host with a
region runs kubedrill's NFQUEUE delayer, holding what it sends to each host of another region
for that link's one-way delay and jitter (so each round trip crosses two delays); loss is
dropped by an iptables statistic rule on arrival (INPUT), so the sender never learns of it, as
on a real WAN. It is a fault like any other: undo record first, healed on every way out,
`kubedrill heal` after SIGKILL. The drills hold it for their whole run (concurrent with the
fault under test).

`RegionOutage` cuts every host of one region off from every other host at once (all traffic,
both directions); the region is chosen by role (the etcd leader's, or a follower's).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kubedrill.errors import FaultError
from kubedrill.faults.base import FaultPlan
from kubedrill.faults.network import (
    DELAYER_MAX_SECONDS,
    chain_gone,
    delay_chain,
    grudge_plan,
    new_token,
    queue_number,
)
from kubedrill.faults.shape import Selector, complete_grudge
from kubedrill.faults.victims import resolve_victims
from kubedrill.faults.wan_shape import (
    LinkSpec,
    Pair,
    Route,
    loss_rule,
    queue_rule,
    wan_links,
    wan_routes,
)
from kubedrill.transport import TransportSpec
from kubedrill.transport.node_container import host_side, thaw_first
from kubedrill.transport.step import Step

if TYPE_CHECKING:
    from kubedrill.cluster import Cluster


def region_map(cluster: Cluster) -> dict[str, str | None]:
    return {n.name: n.region for n in cluster.nodes}


def no_regions(cluster: Cluster) -> str | None:
    regions = {n.region for n in cluster.nodes if n.region is not None}
    if len(regions) < 2:
        return f"{cluster.name} has no regions (bring a lab up with --topology regions)"
    return None


@dataclass(frozen=True)
class WanLinks:
    """Delay (and drop) every packet between regions as the WAN links say."""

    default: LinkSpec
    overrides: tuple[str, ...] = ()  # "r1-r3=50:5:0.5"

    @property
    def name(self) -> str:
        return f"wan {self.default}"

    def available(self, cluster: Cluster) -> str | None:
        missing = no_regions(cluster)
        if missing:
            return missing
        if cluster.facts.delay_method == "none":
            return f"{cluster.name} can delay no packets (no sch_netem, no NFQUEUE delayer)"
        return None

    def links(self, cluster: Cluster) -> dict[Pair, LinkSpec]:
        regions = sorted({n.region for n in cluster.nodes if n.region is not None})
        return wan_links(regions, self.default, self.overrides)

    def plan(self, cluster: Cluster) -> FaultPlan:
        missing = no_regions(cluster)
        if missing:
            raise FaultError(missing)
        addresses = {n.name: n.address for n in cluster.nodes}
        routes = wan_routes(region_map(cluster), addresses, self.links(cluster))
        token = new_token()
        inject: list[Step] = []
        undo: list[Step] = []
        for host, host_routes in sorted(routes.items()):
            i, u = wan_steps(cluster.node(host).transport, host_routes, token)
            inject += i
            undo += u
        links = ", ".join(
            f"{'-'.join(sorted(pair))} {spec}"
            for pair, spec in sorted(self.links(cluster).items(), key=lambda kv: sorted(kv[0]))
        )
        return FaultPlan(
            self.name,
            tuple(sorted(routes)),
            f"WAN between regions: {links} (one way)",
            tuple(inject),
            tuple(undo),
            data={"token": token, "delay_ms": f"{self.default.delay_ms:g}"},
        )


def wan_steps(
    spec: TransportSpec, routes: tuple[Route, ...], token: str
) -> tuple[list[Step], list[Step]]:
    """One host's side of the WAN: its delayer (one queue, a --link per peer) bound before any
    packet is queued (the rules fail open with --queue-bypass), then one chain jumped from
    OUTPUT (queue to the delayer) and INPUT (loss on arrival)."""
    chain = delay_chain(token)
    queue = str(queue_number(token))
    helper = host_side(spec)
    base = f"/run/kubedrill-delayer-{spec.params.get('netns', spec.node)}-{token}"
    pidfile, ready = f"{base}.pid", f"{base}.ready"
    links = " ".join(
        f"--link {r.address}/32={r.link.delay_ms:g}:{r.link.jitter_ms:g}" for r in routes
    )
    start = (
        f"rm -f {ready}; {sys.executable} -m kubedrill.faults.delayer --queue {queue} {links} "
        f"--max-seconds {DELAYER_MAX_SECONDS} --ready-file {ready} "
        f">/dev/null 2>&1 & echo $! > {pidfile}"
    )
    wait_ready = f"until [ -f {ready} ]; do sleep 0.05; done"
    ipt = ("iptables", "-w")
    inject = [
        Step(helper, ("sh", "-c", start)),
        Step(helper, ("timeout", "10", "sh", "-c", wait_ready), timeout=15),
        Step(spec, (*ipt, "-N", chain)),
        Step(spec, (*ipt, "-I", "OUTPUT", "1", "-j", chain)),
        Step(spec, (*ipt, "-I", "INPUT", "1", "-j", chain)),
    ]
    for r in routes:
        if r.link.loss_pct:
            inject.append(Step(spec, (*ipt, *loss_rule(chain, r.address, r.link.loss_pct))))
        inject.append(Step(spec, (*ipt, *queue_rule(chain, r.address, queue))))
    unhook = (
        f"while iptables -w -D OUTPUT -j {chain} 2>/dev/null; do :; done; "
        f"while iptables -w -D INPUT -j {chain} 2>/dev/null; do :; done; "
        f"iptables -w -F {chain} 2>/dev/null; iptables -w -X {chain} 2>/dev/null; "
    )
    # Kill only a process that is still our delayer (the pid may have been reused).
    stop_delayer = (
        f"p=$(cat {pidfile} 2>/dev/null) && grep -qs kubedrill.faults.delayer /proc/$p/cmdline "
        f"&& kill $p; rm -f {pidfile} {ready}; "
    )
    if helper == spec:
        return inject, [
            *thaw_first(spec),
            Step(spec, ("sh", "-c", unhook + stop_delayer + chain_gone(chain))),
        ]
    return inject, [
        *thaw_first(spec),
        Step(spec, ("sh", "-c", unhook + chain_gone(chain))),
        Step(helper, ("sh", "-c", stop_delayer + "true")),
    ]


def outage_grudge(region: str, region_of: Mapping[str, str | None]) -> dict[str, frozenset[str]]:
    """The region's hosts on one side, every other host on the other."""
    dark = sorted(h for h, r in region_of.items() if r == region)
    if not dark:
        raise FaultError(f"region {region!r} has no hosts")
    rest = sorted(h for h, r in region_of.items() if r != region)
    return complete_grudge([dark, rest])


@dataclass(frozen=True)
class RegionOutage:
    """One region goes dark: all its hosts cut off from all others at once."""

    region_of: Selector = field(default_factory=Selector.leader)  # whose region (etcd role)

    @property
    def name(self) -> str:
        return "region outage"

    def available(self, cluster: Cluster) -> str | None:
        return no_regions(cluster)

    def plan(self, cluster: Cluster) -> FaultPlan:
        missing = no_regions(cluster)
        if missing:
            raise FaultError(missing)
        chosen = resolve_victims(cluster, "etcd", self.region_of)
        region = cluster.node(chosen.names[0]).region
        if region is None:
            raise FaultError(f"{chosen.names[0]} stands in no region")
        regions = region_map(cluster)
        grudge = outage_grudge(region, regions)
        dark = tuple(sorted(h for h, r in regions.items() if r == region))
        role = " (the etcd leader's)" if chosen.include_leader else ""
        plan = grudge_plan(
            cluster,
            self.name,
            f"region {region}{role} goes dark: {', '.join(dark)} cut off from every other host",
            grudge,
            dark,
            None,
        )
        return FaultPlan(
            plan.name,
            plan.victims,
            plan.description,
            plan.inject,
            plan.undo,
            takes_down=plan.takes_down,
            data={**plan.data, "region": region},
            claims=plan.claims,
        )
