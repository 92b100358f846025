"""Edge partition drills (marker `edge`): an edge site -- workers only, the control plane
elsewhere -- loses its link to the control plane for longer, then for shorter, than its pods
tolerate.

What is measured is what the API shows: when the site's Nodes go NotReady/Unknown (the
node lifecycle's grace period after their last lease renewal), when they are tainted
`node.kubernetes.io/unreachable:NoExecute`, when the taint evicts their pods (the pods'
`tolerationSeconds` later), and how long after the link returns every Node is Ready again.
On the lab the site's kubelet is kwok, which runs no container: nothing is "still running"
there that the drill could see; a real kubelet would keep the pods' containers running
through the partition and kill them only once it hears of the deletion, after the link
returns. The API meanwhile shows them Running, Ready=False, then Terminating.

Needs a target with an edge site (the lab: `lab.kubernetes.edge_workers`,
fixtures/labs/edge.yaml; make drill-edge).
"""

from __future__ import annotations

import functools

import pytest

from kubedrill.drill import Drill, FaultUnavailableError
from kubedrill.faults import ZoneOutage
from kubedrill.faults.shape import edge_zones
from kubedrill.probes.kube import KubeProbes
from kubedrill.probes.zones import (
    UNREACHABLE,
    ZONE_LABEL,
    PodView,
    ZoneProbes,
    all_ready,
    all_tainted,
    node_monitor_grace_s,
    none_ready,
    untainted,
)

pytestmark = [pytest.mark.disruptive, pytest.mark.edge]

SELECTOR = "app=site"


def edge_site(drill: Drill) -> str:
    cluster = drill.cluster
    found = edge_zones(
        {n.name: n.zone for n in cluster.nodes}, {n.name: n.roles for n in cluster.nodes}
    )
    if not found:
        raise FaultUnavailableError(
            f"edge partition: {cluster.name} has no edge site (a zone of workers only)",
            "the lab: set lab.kubernetes.edge_workers (fixtures/labs/edge.yaml)",
        )
    return found[0]


def site_workload(
    drill: Drill, kube: KubeProbes, probes: ZoneProbes, namespace: str, edge: str
) -> tuple[set[str], list[PodView]]:
    """A Deployment pinned to the site (one pod a Node), Running; the site's Nodes and pods."""
    drill.steady_state(
        "the API is ready and every Node is Ready", lambda: kube.ready() and kube.nodes_ready()
    )
    nodes: set[str] = drill.wait_for(
        "site.listed",
        lambda: {n.name for n in (probes.nodes() or {}).values() if n.zone == edge} or None,
        timeout=30,
    )
    kube.create_deployment(namespace, "site", len(nodes), node_selector={ZONE_LABEL: edge})

    def running() -> list[PodView] | None:
        pods = probes.pods(namespace, SELECTOR) or []
        live = [p for p in pods if p.phase == "Running" and p.ready and not p.deleting]
        return live if len(live) == len(nodes) else None

    pods = drill.wait_for("pods.running", running, timeout=60)
    grace = node_monitor_grace_s(drill.cluster)
    drill.observe("edge_nodes", sorted(nodes))
    drill.observe("node_monitor_grace_period_s", grace)
    drill.observe("pod_unreachable_toleration_s", pods[0].unreachable_toleration_s)
    return nodes, pods


def nodes_are(probes: ZoneProbes, check: functools.partial[bool]) -> bool:
    nodes = probes.nodes()
    return nodes is not None and check(nodes)


def wait_site_lost(drill: Drill, probes: ZoneProbes, nodes: set[str]) -> None:
    drill.wait_for(
        "nodes.not_ready",
        lambda: nodes_are(probes, functools.partial(none_ready, names=nodes)),
        budget="reschedule",
    )
    drill.wait_for(
        "nodes.tainted",
        lambda: nodes_are(probes, functools.partial(all_tainted, names=nodes, key=UNREACHABLE)),
        budget="reschedule",
    )


def wait_site_back(drill: Drill, probes: ZoneProbes, nodes: set[str]) -> None:
    drill.wait_for(
        "nodes.ready",
        lambda: (n := probes.nodes()) is not None and all_ready(n) and untainted(n, UNREACHABLE),
        budget="recovery",
    )
    drill.within_budget("recovery", "fault.healed", "nodes.ready")


def api_view(pods: list[PodView]) -> list[str]:
    """The site's pods as the API shows them: phase, Ready, Terminating."""
    return sorted(
        f"{p.name} on {p.node or '-'}: {p.phase}, Ready={p.ready}"
        + (", Terminating" if p.deleting else "")
        for p in pods
    )


def test_edge_partition_evicts_after_toleration(
    drill: Drill, kube: KubeProbes, namespace: str
) -> None:
    """Cut the edge site off past its pods' toleration: its Nodes NotReady after the grace
    period (not before), tainted unreachable, its pods evicted `tolerationSeconds` after the
    taint (within `detect` of it); after the link returns every Node Ready and untainted and
    the site's Deployment Running again, < `recovery`."""
    edge = edge_site(drill)
    probes = ZoneProbes(kube)
    nodes, pods = site_workload(drill, kube, probes, namespace, edge)
    before = {p.uid for p in pods}
    toleration = pods[0].unreachable_toleration_s or 0
    with drill.fault(ZoneOutage("network", edge)):
        wait_site_lost(drill, probes, nodes)
        drill.observe("api_view_tainted", api_view(probes.pods(namespace, SELECTOR) or []))

        def evicted() -> bool:
            now = probes.pods(namespace, SELECTOR)
            return now is not None and before <= {p.uid for p in now if p.deleting} | (
                before - {p.uid for p in now}
            )

        drill.wait_for("pods.evicted", evicted, budget="reschedule")
        drill.observe("api_view_evicted", api_view(probes.pods(namespace, SELECTOR) or []))
    grace = node_monitor_grace_s(drill.cluster)
    # From the start of the inject: its first rules cut the site (the whole inject can take
    # seconds on a loaded runner), so this is the earliest the Nodes' silence can have begun.
    not_ready = drill.offset("nodes.not_ready") - drill.offset("fault.injecting")
    eviction = drill.offset("pods.evicted") - drill.offset("nodes.tainted")
    drill.observe("not_ready_after_s", round(not_ready, 3))
    drill.observe(
        "tainted_after_not_ready_s",
        round(drill.offset("nodes.tainted") - drill.offset("nodes.not_ready"), 3),
    )
    drill.observe("evicted_after_taint_s", round(eviction, 3))
    drill.expect(
        not_ready >= grace - 1,
        f"the site's Nodes stay Ready for the grace period ({grace:g} s)",
        not_ready,
    )
    drill.expect(
        toleration - 1 <= eviction <= toleration + drill.budgets["detect"],
        f"pods evicted {toleration} s (their toleration) after the taint",
        eviction,
    )
    with drill.verify():
        wait_site_back(drill, probes, nodes)

        def replaced() -> bool:
            now = probes.pods(namespace, SELECTOR) or []
            live = [p for p in now if p.phase == "Running" and not p.deleting]
            return len(live) == len(nodes) and len(now) == len(nodes)

        drill.wait_for("pods.running_again", replaced, budget="recovery")
        drill.within_budget("recovery", "fault.healed", "pods.running_again")
        drill.observe(
            "ready_after_heal_s",
            round(drill.offset("nodes.ready") - drill.offset("fault.healed"), 3),
        )


def test_short_edge_partition_evicts_nothing(
    drill: Drill, kube: KubeProbes, namespace: str
) -> None:
    """Cut the edge site off for less than its pods' toleration after the taint (counted until
    the Nodes are Ready again, not until the link returns): its Nodes go NotReady and tainted,
    but no pod is deleted, and after the link returns the same pods (same UIDs) run on Ready,
    untainted Nodes."""
    edge = edge_site(drill)
    probes = ZoneProbes(kube)
    nodes, pods = site_workload(drill, kube, probes, namespace, edge)
    before = {p.uid for p in pods}
    toleration = pods[0].unreachable_toleration_s or 0

    def none_deleted() -> str | None:
        now = probes.pods(namespace, SELECTOR)
        if now is None:
            return None
        gone = before - {p.uid for p in now if not p.deleting}
        return f"pods evicted during a short partition: {sorted(gone)}" if gone else None

    with drill.fault(ZoneOutage("network", edge)):
        wait_site_lost(drill, probes, nodes)
        # Healed a quarter of the toleration after the taint: the site is back for the control
        # plane only when kwok's next lease renewal gets through (5-10 s after the link here),
        # and the eviction clock runs until then.
        drill.hold(toleration / 4, none_deleted)
    with drill.verify():
        wait_site_back(drill, probes, nodes)
        drill.hold(2.0, none_deleted)
        now = probes.pods(namespace, SELECTOR) or []
        same = {p.uid for p in now if p.phase == "Running" and not p.deleting}
        # The partition as the control plane saw it: from the taint until the Nodes were Ready.
        seen = drill.offset("nodes.ready") - drill.offset("nodes.tainted")
        drill.observe("tainted_for_s", round(seen, 3))
        drill.expect(
            seen < toleration,
            f"the site was back (Nodes Ready) before the toleration ({toleration} s) ran out",
            seen,
        )
        drill.expect(same == before, "the same pods run after the partition", api_view(now))
        drill.observe(
            "ready_after_heal_s",
            round(drill.offset("nodes.ready") - drill.offset("fault.healed"), 3),
        )
