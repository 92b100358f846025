"""Network faults made with iptables and tc inside the victim nodes.

Rules live in a chain of kubedrill's own (KUBEDRILL) so that undo is "flush and unhook the
chain": idempotent and unable to touch anybody else's rules. Only traffic between cluster nodes
is dropped; the machine that runs kubedrill keeps reaching every node, so probes can still ask
an isolated node what it believes (e.g. whether the old leader stepped down).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kubedrill.errors import FaultError
from kubedrill.faults.base import FaultPlan
from kubedrill.faults.shape import (
    Selector,
    complete_grudge,
    isolate_grudge,
    majority_side,
)
from kubedrill.faults.victims import resolve_victims
from kubedrill.transport import TransportSpec
from kubedrill.transport.node_container import host_side, thaw_first
from kubedrill.transport.step import Step

if TYPE_CHECKING:
    from kubedrill.cluster import Cluster, Node

CHAIN = "KUBEDRILL"


def iptables_grudge_steps(
    node: Node, drop_from: Sequence[Node], *, port: int | None
) -> tuple[list[Step], list[Step]]:
    """Rules on `node` that drop traffic with every node in `drop_from`, both directions."""
    spec = node.transport
    inject = [
        Step(spec, ("iptables", "-w", "-N", CHAIN), ignore_errors=True),
        Step(spec, ("iptables", "-w", "-I", "INPUT", "1", "-j", CHAIN)),
        Step(spec, ("iptables", "-w", "-I", "OUTPUT", "1", "-j", CHAIN)),
    ]
    for peer in sorted(drop_from, key=lambda n: n.name):
        if port is None:
            inject += [_drop(spec, "-s", peer.address), _drop(spec, "-d", peer.address)]
        else:
            p = str(port)
            inject += [
                _drop(spec, "-s", peer.address, "-p", "tcp", "--dport", p),  # peer -> us
                _drop(spec, "-d", peer.address, "-p", "tcp", "--dport", p),  # us -> peer
                _drop(spec, "-s", peer.address, "-p", "tcp", "--sport", p),  # replies to us
            ]
    return inject, unhook_steps(spec)


def _drop(spec: TransportSpec, *match: str) -> Step:
    return Step(spec, ("iptables", "-w", "-A", CHAIN, *match, "-j", "DROP"))


def unhook_steps(spec: TransportSpec) -> list[Step]:
    """Undo: unhook the chain from INPUT/OUTPUT (every copy), flush it, delete it."""
    script = (
        f"while iptables -w -D INPUT -j {CHAIN} 2>/dev/null; do :; done; "
        f"while iptables -w -D OUTPUT -j {CHAIN} 2>/dev/null; do :; done; "
        f"iptables -w -F {CHAIN} 2>/dev/null; iptables -w -X {CHAIN} 2>/dev/null; "
        + chain_gone(CHAIN)
    )
    return [*thaw_first(spec), Step(spec, ("sh", "-c", script))]


def chain_gone(chain: str) -> str:
    """Shell test that succeeds only when `chain` is neither defined nor jumped to, so a heal
    that did not take is reported (and its undo record kept) instead of passing blindly."""
    return f"! iptables -w -S 2>/dev/null | grep -qE -- '(-N|-j) {chain}( |$)'"


def can_filter(node: Node) -> bool:
    """Whether kubedrill can put iptables rules on `node`. kind's load balancer is a plain proxy
    container with no iptables: its side of a cut is enforced by its peers' rules, which drop
    both directions (every rule pair matches the peer's address as source and destination)."""
    return not (node.roles == frozenset({"lb"}) and node.transport.kind == "docker")


def _grudge_plan(
    cluster: Cluster,
    name: str,
    description: str,
    grudge: Mapping[str, frozenset[str]],
    victims: tuple[str, ...],
    port: int | None,
) -> FaultPlan:
    inject: list[Step] = []
    undo: list[Step] = []
    for node_name in sorted(grudge):
        node = cluster.node(node_name)
        if not grudge[node_name] or not can_filter(node):
            continue
        i, u = iptables_grudge_steps(node, [cluster.node(n) for n in grudge[node_name]], port=port)
        inject += i
        undo += u
    etcd_members = [n.name for n in cluster.with_role("etcd")]
    side = majority_side(grudge, etcd_members)
    cut_off = frozenset((m, "etcd") for m in etcd_members if m not in side)
    return FaultPlan(
        name,
        victims,
        description,
        tuple(inject),
        tuple(undo),
        takes_down=cut_off,
        data={"port": str(port) if port else "all"},
    )


@dataclass(frozen=True)
class Isolate:
    """Cut victim nodes off from every other cluster node (all traffic, or one port only)."""

    victims: Selector = field(default_factory=Selector.leader)
    component: str = "etcd"  # whose leader/follower the selector refers to
    port: int | None = None  # e.g. 2380 to blackhole only etcd peer traffic

    @property
    def name(self) -> str:
        return "isolate" if self.port is None else f"blackhole port {self.port}"

    def available(self, cluster: Cluster) -> str | None:
        return None  # iptables: every target's nodes have it

    def plan(self, cluster: Cluster) -> FaultPlan:
        chosen = resolve_victims(cluster, self.component, self.victims)
        victims = chosen.names
        grudge = isolate_grudge(victims, [n.name for n in cluster.nodes])
        what = "all traffic" if self.port is None else f"tcp port {self.port}"
        role = " (leader)" if chosen.include_leader else ""
        return _grudge_plan(
            cluster,
            self.name,
            f"isolate {', '.join(victims)}{role} from the other nodes ({what})",
            grudge,
            victims,
            self.port,
        )


@dataclass(frozen=True)
class Partition:
    """Split the nodes into a minority and a majority that cannot reach each other."""

    minority: Selector = field(default_factory=lambda: Selector("minority"))
    component: str = "etcd"

    @property
    def name(self) -> str:
        return "partition"

    def available(self, cluster: Cluster) -> str | None:
        return None  # iptables: every target's nodes have it

    def plan(self, cluster: Cluster) -> FaultPlan:
        chosen = resolve_victims(cluster, self.component, self.minority)
        small, candidates = chosen.names, chosen.candidates
        if len(small) * 2 >= len(candidates):
            raise FaultError(f"{', '.join(small)} is not a minority of {', '.join(candidates)}")
        rest = [n.name for n in cluster.nodes if n.name not in small]
        grudge = complete_grudge([list(small), rest])
        return _grudge_plan(
            cluster,
            self.name,
            f"partition {{{', '.join(small)}}} from {{{', '.join(rest)}}}",
            grudge,
            small,
            None,
        )


@dataclass(frozen=True)
class NetemDelay:
    """Delay a node's outgoing traffic on one port (default: etcd peer traffic) with tc netem."""

    delay_ms: int
    victims: Selector = field(default_factory=Selector.leader)
    component: str = "etcd"
    port: int = 2380
    jitter_ms: int = 0
    device: str = "eth0"

    @property
    def name(self) -> str:
        return f"netem delay {self.delay_ms}ms"

    def available(self, cluster: Cluster) -> str | None:
        if cluster.facts.delay_method == "none":
            return (
                f"{cluster.name} can delay no packets: its kernel has no sch_netem and kubedrill's "
                "NFQUEUE delayer is not installed on its nodes"
            )
        return None

    def plan(self, cluster: Cluster) -> FaultPlan:
        if self.delay_ms <= 0 or self.jitter_ms < 0:
            raise FaultError(f"netem delay must be positive (got {self.delay_ms} ms)")
        chosen = resolve_victims(cluster, self.component, self.victims)
        victims = chosen.names
        inject: list[Step] = []
        undo: list[Step] = []
        method = cluster.facts.delay_method
        make_steps = nfqueue_steps if method == "nfqueue" else netem_steps
        for name in victims:
            inject_steps, undo_steps = make_steps(cluster.node(name).transport, self)
            inject += inject_steps
            undo += undo_steps
        role = " (leader)" if chosen.include_leader else ""
        return FaultPlan(
            self.name,
            victims,
            f"delay tcp port {self.port} traffic from {', '.join(victims)}{role} by "
            f"{self.delay_ms}ms",
            tuple(inject),
            tuple(undo),
            data={"delay_ms": str(self.delay_ms), "method": method},
        )


def netem_steps(spec: TransportSpec, fault: NetemDelay) -> tuple[list[Step], list[Step]]:
    """A prio qdisc whose third band is netem; u32 filters send only the port's packets there."""
    dev = fault.device
    delay = [f"{fault.delay_ms}ms"] + ([f"{fault.jitter_ms}ms"] if fault.jitter_ms else [])
    port = str(fault.port)
    inject = [
        Step(spec, ("tc", "qdisc", "add", "dev", dev, "root", "handle", "1:", "prio")),
        Step(
            spec,
            (
                "tc",
                "qdisc",
                "add",
                "dev",
                dev,
                "parent",
                "1:3",
                "handle",
                "30:",
                "netem",
                "delay",
                *delay,
            ),
        ),
    ]
    for direction in ("dport", "sport"):
        inject.append(
            Step(
                spec,
                (
                    "tc",
                    "filter",
                    "add",
                    "dev",
                    dev,
                    "parent",
                    "1:0",
                    "protocol",
                    "ip",
                    "prio",
                    "1",
                    "u32",
                    "match",
                    "ip",
                    direction,
                    port,
                    "0xffff",
                    "flowid",
                    "1:3",
                ),
            )
        )
    undo = [
        *thaw_first(spec),
        Step(
            spec,
            (
                "sh",
                "-c",
                f"tc qdisc del dev {dev} root 2>/dev/null; "
                f"! tc qdisc show dev {dev} 2>/dev/null | grep -q netem",
            ),
        ),
    ]
    return inject, undo


DELAY_CHAIN = "KUBEDRILL-DELAY"
DELAYER_MAX_SECONDS = 900  # the delayer stops by itself even if nobody heals


def nfqueue_steps(spec: TransportSpec, fault: NetemDelay) -> tuple[list[Step], list[Step]]:
    """Kernels without sch_netem: queue the port's packets to kubedrill's userspace delayer.

    --queue-bypass makes the rules fail open: with no delayer listening, packets pass; so the
    inject waits for the delayer to say it is bound before any packet is queued to it."""
    port = str(fault.port)
    queue = port
    # The delayer is Python: on a node container it runs on this machine inside the node's
    # network namespace (the node image has no Python); elsewhere on the node itself.
    helper = host_side(spec)
    base = f"/run/kubedrill-delayer-{spec.params.get('netns', spec.node)}"
    pidfile, ready = f"{base}.pid", f"{base}.ready"
    start = (
        f"rm -f {ready}; {sys.executable} -m kubedrill.faults.delayer --queue {queue} "
        f"--delay-ms {fault.delay_ms} --max-seconds {DELAYER_MAX_SECONDS} --ready-file {ready} "
        f">/dev/null 2>&1 & echo $! > {pidfile}"
    )
    wait_ready = f"until [ -f {ready} ]; do sleep 0.05; done"
    inject = [
        Step(helper, ("sh", "-c", start)),
        Step(helper, ("timeout", "10", "sh", "-c", wait_ready), timeout=15),
        Step(spec, ("iptables", "-w", "-N", DELAY_CHAIN), ignore_errors=True),
        Step(spec, ("iptables", "-w", "-I", "OUTPUT", "1", "-j", DELAY_CHAIN)),
    ]
    for direction in ("--dport", "--sport"):
        rule = (
            "-p",
            "tcp",
            direction,
            port,
            "-j",
            "NFQUEUE",
            "--queue-num",
            queue,
            "--queue-bypass",
        )
        inject.append(Step(spec, ("iptables", "-w", "-A", DELAY_CHAIN, *rule)))
    # Kill only a process that is still our delayer (the pid may have been reused).
    unhook = (
        f"while iptables -w -D OUTPUT -j {DELAY_CHAIN} 2>/dev/null; do :; done; "
        f"iptables -w -F {DELAY_CHAIN} 2>/dev/null; iptables -w -X {DELAY_CHAIN} 2>/dev/null; "
    )
    stop_delayer = (
        f"p=$(cat {pidfile} 2>/dev/null) && grep -qs kubedrill.faults.delayer /proc/$p/cmdline "
        f"&& kill $p; rm -f {pidfile} {ready}; "
    )
    if helper == spec:
        script = unhook + stop_delayer + chain_gone(DELAY_CHAIN)
        return inject, [*thaw_first(spec), Step(spec, ("sh", "-c", script))]
    return inject, [
        *thaw_first(spec),
        Step(spec, ("sh", "-c", unhook + chain_gone(DELAY_CHAIN))),
        Step(helper, ("sh", "-c", stop_delayer + "true")),
    ]
