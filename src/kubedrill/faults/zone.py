"""A zone goes down at once: every host in one fault domain, by power or by network.

Two shapes of the same outage, because they fail differently:
* power: every process on the zone's hosts is SIGKILLed and held down until the power
  returns (no graceful shutdown, no goodbye to peers). The lab's hosts keep their addresses,
  so a peer's connection is refused at once (a real dead host answers nothing: that is the
  network shape);
* network: the zone's hosts keep running but reach nothing outside the zone (its uplink
  switch died): packets to it vanish, so peers only learn through timeouts, and the zone's
  members keep believing in themselves until their own timeouts fire.

Both are plain data: the zone chosen by `shape.pick_zone`, the cut by `shape.zone_grudge`,
the processes by the target's `PowerControl`. An edge partition is the network shape on an
edge site's zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from kubedrill.cluster import PowerControl
from kubedrill.errors import FaultError
from kubedrill.faults.base import FaultPlan
from kubedrill.faults.network import grudge_plan
from kubedrill.faults.shape import pick_zone, zone_grudge, zone_members
from kubedrill.transport.step import Step

if TYPE_CHECKING:
    from kubedrill.cluster import Cluster

MODES = ("power", "network")


@dataclass(frozen=True)
class ZoneOutage:
    """Take one zone down: `zone` by name, else the zone of the etcd leader."""

    mode: str = "power"
    zone: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise FaultError(f"unknown zone outage mode {self.mode!r}", f"use one of {MODES}")

    @property
    def name(self) -> str:
        return f"zone outage ({self.mode})"

    def available(self, cluster: Cluster) -> str | None:
        if not cluster.zones():
            return f"{cluster.name} has no zones (lab: set lab.zones, fixtures/labs/zones.yaml)"
        if self.mode == "power" and not isinstance(cluster.control, PowerControl):
            return f"the {cluster.target} target cannot take a host's power away"
        return None

    def plan(self, cluster: Cluster) -> FaultPlan:
        zones = {n.name: n.zone for n in cluster.nodes}
        leader = None if self.zone is not None else cluster.leader("etcd")
        zone = pick_zone(zones, leader=leader, named=self.zone)
        hosts = zone_members(zones, zone)
        why = "" if self.zone is not None else f" (the etcd leader {leader}'s)"
        if self.mode == "network":
            plan = grudge_plan(
                cluster,
                self.name,
                f"cut zone {zone}{why} off: {', '.join(hosts)} reach nothing outside it",
                zone_grudge(zones, zone),
                hosts,
                None,
            )
        else:
            plan = self._power_plan(cluster, hosts, f"power off zone {zone}{why}")
        return FaultPlan(
            plan.name,
            plan.victims,
            plan.description,
            plan.inject,
            plan.undo,
            takes_down=plan.takes_down,
            data={**plan.data, "zone": zone, "mode": self.mode, "leader_before": leader or ""},
            claims=plan.claims,
        )

    def _power_plan(self, cluster: Cluster, hosts: tuple[str, ...], what: str) -> FaultPlan:
        control = cluster.control
        assert isinstance(control, PowerControl)
        inject: list[Step] = []
        undo: list[Step] = []
        down: set[tuple[str, str]] = set()
        for name in hosts:
            node = cluster.node(name)
            for component in cluster.control.components(node):
                steps = control.power_off(node, component)
                inject += steps.inject
                undo += steps.undo
                down.add((name, component))
        listed = ", ".join(f"{c} on {n}" for n, c in sorted(down))
        return FaultPlan(
            self.name,
            hosts,
            f"{what}: SIGKILL {listed}, held down until the power returns",
            tuple(inject),
            tuple(undo),
            takes_down=frozenset(down),
            claims=frozenset(f"{c} on {n}" for n, c in down),
        )
