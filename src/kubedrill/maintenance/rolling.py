"""Rolling maintenance of a control plane, one host at a time, the way kubeadm upgrades it.

For each host: drain its Node (cordon, evict), then for each of its components in kubeadm's
order stop it (SIGTERM with the target's grace period, held down like a static-pod manifest
moved away), run the hook (`while_down`: a restart does nothing, an upgrade swaps the binary),
let it start again and wait until it is ready (an apiserver's own /readyz and the load
balancer routing to it again; a controller-manager or scheduler answering /healthz with its
Lease held; an etcd member serving and caught up), then uncordon. Each stop and the drain are
faults with undo records: a run killed half way is healed by `kubedrill heal`.

Meanwhile `RequestAccounting` keeps clients on the API through the load balancer at a steady,
bounded rate and, at the end, lists every failed request with its moment, the backend the
load balancer chose (from its connection log, when the lab logs connections) and the reason,
and what the rolling restart was doing to which host at that moment.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from kubedrill.cluster import Cluster, Node
from kubedrill.drill import Drill
from kubedrill.faults import Drain, Selector, StopComponent
from kubedrill.maintenance import readiness
from kubedrill.maintenance.requests import (
    AccountedClient,
    FailedRequest,
    attribute,
    failures_of_operations,
    parse_connections,
    summarize,
)
from kubedrill.server_record.record import parse_time

# kubeadm upgrade's order on a control-plane host: etcd (stacked), then the static pods.
KUBE_COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")

# What to do to a host while one of its components is down; a restart does nothing.
WhileDown = Callable[[Node, str], None]


def nothing(_node: Node, _component: str) -> None:
    """A plain restart: the component comes back as it was."""


def rolling_order(hosts: Sequence[str], last: str | None) -> list[str]:
    """Hosts in their given order with `last` (the current leader) moved to the end: one
    leader change instead of one per host."""
    ordered = [h for h in hosts if h != last]
    return [*ordered, last] if last in hosts and last is not None else ordered


@dataclass(frozen=True)
class Phase:
    """What the rolling restart did to a host, on the drill's timeline."""

    host: str
    component: str  # "" for the node (drain, uncordon)
    what: str  # "drain", "stop", "down", "start", "uncordon"
    start: float
    end: float

    def describe(self, at: float) -> str:
        target = f"{self.component} on {self.host}" if self.component else f"Node {self.host}"
        return f"{target}: {self.what} (+{at - self.start:.2f} s into it)"


def during(at: float, phases: Sequence[Phase]) -> str:
    """What was being done at `at` (the phases that overlap it)."""
    found = [p.describe(at) for p in phases if p.start <= at <= p.end]
    return "; ".join(found) if found else "no host in maintenance"


@dataclass
class ComponentRestart:
    component: str
    stop_s: float = 0.0  # SIGTERM to exit
    down_s: float = 0.0  # SIGTERM to started again (stop + the hook)
    ready_s: float = 0.0  # start to ready
    total_s: float = 0.0  # SIGTERM to ready


@dataclass
class HostRestart:
    host: str
    drain_s: float = 0.0
    total_s: float = 0.0  # drain to uncordoned
    components: list[ComponentRestart] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "drain_s": round(self.drain_s, 3),
            "total_s": round(self.total_s, 3),
            "components": [
                {k: round(v, 3) if isinstance(v, float) else v for k, v in vars(c).items()}
                for c in self.components
            ],
        }


@dataclass
class RollingRestart:
    """Restart `components` on each host in turn. `before_stop(host, component)` runs just
    before a component is stopped (a careful operator moves etcd's leadership away first)."""

    drill: Drill
    components: Sequence[str] = KUBE_COMPONENTS
    while_down: WhileDown = nothing
    drain: bool = True
    before_stop: Callable[[str, str], None] | None = None
    phases: list[Phase] = field(default_factory=list)
    hosts: list[HostRestart] = field(default_factory=list)

    @property
    def cluster(self) -> Cluster:
        return self.drill.cluster

    def run(self, hosts: Sequence[str]) -> list[HostRestart]:
        for host in hosts:
            self.hosts.append(self._host(host))
        return self.hosts

    def _phase(self, host: str, component: str, what: str, start: float) -> float:
        end = self.drill.timeline.now()
        self.phases.append(Phase(host, component, what, start, end))
        return end - start

    def _host(self, host: str) -> HostRestart:
        drill, now = self.drill, self.drill.timeline.now
        report = HostRestart(host)
        began = now()
        drill.timeline.mark("maintenance.host", host=host)
        if self.drain:
            with drill.fault(Drain(host), concurrent=True):
                report.drain_s = self._phase(host, "", "drain", began)
                for component in self.components:
                    report.components.append(self._component(host, component))
                uncordon = now()
            self._phase(host, "", "uncordon", uncordon)
        else:
            for component in self.components:
                report.components.append(self._component(host, component))
        report.total_s = now() - began
        drill.timeline.mark("maintenance.host_done", host=host, seconds=round(report.total_s, 3))
        return report

    def _component(self, host: str, component: str) -> ComponentRestart:
        drill, now = self.drill, self.drill.timeline.now
        node = self.cluster.node(host)
        if self.before_stop is not None:
            before = now()
            self.before_stop(host, component)
            self._phase(host, component, "before the stop (e.g. moving leadership)", before)
        result = ComponentRestart(component)
        waiting = now()
        drill.wait_for(
            f"maintenance.up.{host}.{component}",
            readiness.up_before_stop(drill, node, component),
            budget="recovery",
        )
        self._phase(host, component, "until it runs (before the stop)", waiting)
        stopping, stopping_wall = now(), time.time()
        with drill.fault(StopComponent(component, Selector.named(host)), concurrent=True):
            result.stop_s = self._phase(host, component, "stop (SIGTERM until it exits)", stopping)
            held = now()
            drill.act(
                f"{component} on {host} is down: the maintenance step",
                lambda: self.while_down(node, component),
                dry=None,
            )
            self._phase(host, component, "down", held)
        started = now()
        result.down_s = started - stopping
        ready = readiness.probe(drill, node, component, stopping_wall)
        try:
            drill.wait_for(f"maintenance.ready.{host}.{component}", ready, budget="recovery")
        finally:
            # Recorded on every way out: a request failing while it never got ready is
            # reported against this phase.
            result.ready_s = self._phase(host, component, "start until ready", started)
        result.total_s = now() - stopping
        return result


@dataclass
class RequestAccounting:
    """Clients on the API through the load balancer during the maintenance, and the list of
    every request that failed, explained. Also counts the consistency workload's API clients'
    failures (less detail: no local port)."""

    drill: Drill
    clients: int = 2
    interval: float = 0.1  # per client: about 20 requests a second with two
    # A client's patience for one request (kubectl waits far longer); a slower answer is a
    # failure, "timeout (stage)". None: the drill's `request` budget (5 s unless overridden).
    timeout: float | None = None
    _clients: list[AccountedClient] = field(default_factory=list)
    started_wall: float = 0.0

    def start(self) -> RequestAccounting:
        assert self.drill.cluster.kube is not None
        self.started_wall = time.time()
        if self.drill.dry_run:
            self.drill.walk.add(
                "background",
                f"{self.clients} API clients through the load balancer, a new connection per "
                f"request, every {self.interval} s each: every failed request recorded",
            )
            return self
        for i in range(self.clients):
            client = AccountedClient(
                access=self.drill.cluster.kube,
                timeline=self.drill.timeline,
                interval=self.interval,
                max_duration=900,
                timeout=self.drill.budgets["request"] if self.timeout is None else self.timeout,
                name=f"lb-client-{i + 1}",
            )
            self._clients.append(client.start())
        return self

    def stop(self) -> None:
        for client in self._clients:
            client.stop()

    def requests(self) -> int:
        return sum(len(c.history()) for c in self._clients)

    def failures(self, phases: Sequence[Phase]) -> list[FailedRequest]:
        """Every failed request, oldest first: ours with their backend from the LB's
        connection log, the workload's API clients' too; each with what was going on."""
        ours = [f for c in self._clients for f in c.failed()]
        ours = attribute(ours, parse_connections(self._lb_log(), parse_time))
        consistency = self.drill.consistency
        theirs = failures_of_operations(consistency.api_ops()) if consistency else []
        every = sorted([*ours, *theirs], key=lambda f: f.invoke)
        return [replace(f, during=during(f.invoke, phases)) for f in every]

    def _lb_log(self) -> str:
        cluster = self.drill.cluster
        texts = [
            cluster.control.logs(node, "haproxy", since_wall=self.started_wall - 5)
            for node in cluster.with_role("lb")
        ]
        return "\n".join(texts)


def report(drill: Drill, accounting: RequestAccounting, rolling: RollingRestart) -> list[str]:
    """Observe the figures (summary.json) and return every failed request, rendered."""
    failures = accounting.failures(rolling.phases)
    drill.observe("requests_through_lb", accounting.requests())
    drill.observe("failed_requests", len(failures))
    drill.observe("failed_by_reason", summarize(failures))
    drill.observe("failed_requests_list", [f.to_dict() for f in failures])
    drill.observe("hosts", [h.to_dict() for h in rolling.hosts])
    drill.observe("per_host_restart_s", {h.host: round(h.total_s, 3) for h in rolling.hosts})
    return [f.render() for f in failures]
