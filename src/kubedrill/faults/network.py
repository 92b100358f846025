"""Network faults made with iptables and tc inside the victim nodes.

Each fault's rules live in a chain of its own (`KUBEDRILL-<token>`, the token chosen when the
fault is planned) so that undo is "unhook, flush and delete *this* chain": idempotent, unable to
touch anybody else's rules, and unable to touch another kubedrill fault's rules either, so faults
compose (two partitions on one node, undone in either order). Only traffic between cluster nodes
is dropped; the machine that runs kubedrill keeps reaching every node, so probes can still ask
an isolated node what it believes (e.g. whether the old leader stepped down).
"""

from __future__ import annotations

import secrets
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

# Every kubedrill chain starts with this, so `iptables -S | grep KUBEDRILL` still finds them all.
# Records written before faults composed name the bare prefix: their undo scripts are stored
# whole in the ledger, so `kubedrill heal` still replays them as they were.
CHAIN_PREFIX = "KUBEDRILL"
CHAIN_NAME_MAX = 28  # iptables' limit (XT_EXTENSION_MAXNAMELEN - 1)


def new_token() -> str:
    """8 hex digits chosen once, when a fault is planned. Its chain names, NFQUEUE number,
    qdisc handle and delayer files derive from it, so the plan (and its undo in the ledger,
    replayable after a SIGKILL) names exactly its own kernel objects and nobody else's."""
    return secrets.token_hex(4)


def drop_chain(token: str) -> str:
    return _checked(f"{CHAIN_PREFIX}-{token}")


def delay_chain(token: str) -> str:
    return _checked(f"{CHAIN_PREFIX}-DELAY-{token}")


def _checked(chain: str) -> str:
    if len(chain) > CHAIN_NAME_MAX:  # iptables would refuse it only at inject time
        raise FaultError(f"iptables chain name {chain!r} is longer than {CHAIN_NAME_MAX}")
    return chain


def iptables_grudge_steps(
    node: Node, drop_from: Sequence[Node], *, port: int | None, chain: str
) -> tuple[list[Step], list[Step]]:
    """Rules on `node`, in `chain`, that drop traffic with every node in `drop_from`, both
    directions. Only DROP rules: a packet that matches none returns to INPUT/OUTPUT and meets
    the next fault's chain, so the faults in place on a node add up."""
    spec = node.transport
    # -N must succeed: the chain is this fault's alone, so an existing one is not ours to fill.
    inject = [
        Step(spec, ("iptables", "-w", "-N", chain)),
        Step(spec, ("iptables", "-w", "-I", "INPUT", "1", "-j", chain)),
        Step(spec, ("iptables", "-w", "-I", "OUTPUT", "1", "-j", chain)),
    ]
    for peer in sorted(drop_from, key=lambda n: n.name):
        if port is None:
            inject += [
                _drop(spec, chain, "-s", peer.address),
                _drop(spec, chain, "-d", peer.address),
            ]
        else:
            p = str(port)
            inject += [
                _drop(spec, chain, "-s", peer.address, "-p", "tcp", "--dport", p),  # peer -> us
                _drop(spec, chain, "-d", peer.address, "-p", "tcp", "--dport", p),  # us -> peer
                _drop(spec, chain, "-s", peer.address, "-p", "tcp", "--sport", p),  # replies
            ]
    return inject, unhook_steps(spec, chain)


def _drop(spec: TransportSpec, chain: str, *match: str) -> Step:
    return Step(spec, ("iptables", "-w", "-A", chain, *match, "-j", "DROP"))


def unhook_steps(spec: TransportSpec, chain: str) -> list[Step]:
    """Undo: unhook `chain` from INPUT/OUTPUT (every copy), flush it, delete it; other chains,
    kubedrill's included, are left as they are."""
    script = (
        f"while iptables -w -D INPUT -j {chain} 2>/dev/null; do :; done; "
        f"while iptables -w -D OUTPUT -j {chain} 2>/dev/null; do :; done; "
        f"iptables -w -F {chain} 2>/dev/null; iptables -w -X {chain} 2>/dev/null; "
        + chain_gone(chain)
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


def grudge_plan(
    cluster: Cluster,
    name: str,
    description: str,
    grudge: Mapping[str, frozenset[str]],
    victims: tuple[str, ...],
    port: int | None,
) -> FaultPlan:
    chain = drop_chain(new_token())
    inject: list[Step] = []
    undo: list[Step] = []
    for node_name in sorted(grudge):
        node = cluster.node(node_name)
        if not grudge[node_name] or not can_filter(node):
            continue
        drop_from = [cluster.node(n) for n in grudge[node_name]]
        i, u = iptables_grudge_steps(node, drop_from, port=port, chain=chain)
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
        data={"port": str(port) if port else "all", "chain": chain},
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
        return grudge_plan(
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
        return grudge_plan(
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
        token = new_token()
        inject: list[Step] = []
        undo: list[Step] = []
        claims: set[str] = set()
        method = cluster.facts.delay_method
        for name in victims:
            spec = cluster.node(name).transport
            if method == "nfqueue":
                inject_steps, undo_steps = nfqueue_steps(spec, self, token)
            else:
                inject_steps, undo_steps = netem_steps(spec, self, token)
                # A device has one root qdisc: a second netem fault there cannot be in place.
                claims.add(f"the root qdisc of {self.device} on {name}")
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
            data={"delay_ms": str(self.delay_ms), "method": method, "token": token},
            claims=frozenset(claims),
        )


def qdisc_handle(token: str) -> str:
    """The fault's own root qdisc handle, `<major>:` in tc's lower-case hex; majors 0 (none)
    and ffff (ingress/clsact) are never chosen. Undo deletes the root only if it has this
    handle (the kernel checks it), so it can never remove a qdisc somebody else put there."""
    major = 1 + int(token[:4], 16) % 0xFFFE
    return f"{major:x}:"


def netem_steps(
    spec: TransportSpec, fault: NetemDelay, token: str
) -> tuple[list[Step], list[Step]]:
    """A prio qdisc whose third band is netem; u32 filters send only the port's packets there."""
    dev = fault.device
    handle = qdisc_handle(token)
    band = f"{handle}3"
    delay = [f"{fault.delay_ms}ms"] + ([f"{fault.jitter_ms}ms"] if fault.jitter_ms else [])
    port = str(fault.port)
    tc_dev = ("tc", "qdisc", "add", "dev", dev)
    inject = [
        Step(spec, (*tc_dev, "root", "handle", handle, "prio")),
        Step(spec, (*tc_dev, "parent", band, "netem", "delay", *delay)),
    ]
    for direction in ("dport", "sport"):
        match = ("u32", "match", "ip", direction, port, "0xffff", "flowid", band)
        filter_add = ("tc", "filter", "add", "dev", dev, "parent", f"{handle}0")
        inject.append(Step(spec, (*filter_add, "protocol", "ip", "prio", "1", *match)))
    # The check: our root (with the netem under it) is gone, whatever else is on the device.
    script = (
        f"tc qdisc del dev {dev} root handle {handle} 2>/dev/null; "
        f"! tc qdisc show dev {dev} 2>/dev/null | grep -q '^qdisc [a-z_]* {handle} '"
    )
    return inject, [*thaw_first(spec), Step(spec, ("sh", "-c", script))]


DELAYER_MAX_SECONDS = 900  # the delayer stops by itself even if nobody heals


def queue_number(token: str) -> int:
    """The fault's own NFQUEUE number (one delayer binds one queue). Two delay faults on one
    node collide with odds of 1 in 65536; then the second delayer cannot bind, never says it is
    ready, and that inject fails by itself, its undo touching only its own chain and files."""
    return int(token[:4], 16)


def nfqueue_steps(
    spec: TransportSpec, fault: NetemDelay, token: str
) -> tuple[list[Step], list[Step]]:
    """Kernels without sch_netem: queue the port's packets to kubedrill's userspace delayer.

    --queue-bypass makes the rules fail open: with no delayer listening, packets pass; so the
    inject waits for the delayer to say it is bound before any packet is queued to it.
    Chain, queue and delayer files are the fault's own (from `token`), so delay faults on one
    node compose; while two are in place the newer one's delay applies (its jump comes first,
    and a packet the delayer accepts leaves OUTPUT), the older one's again after the newer's
    undo."""
    chain = delay_chain(token)
    port = str(fault.port)
    queue = str(queue_number(token))
    # The delayer is Python: on a node container it runs on this machine inside the node's
    # network namespace (the node image has no Python); elsewhere on the node itself.
    helper = host_side(spec)
    base = f"/run/kubedrill-delayer-{spec.params.get('netns', spec.node)}-{token}"
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
        Step(spec, ("iptables", "-w", "-N", chain)),
        Step(spec, ("iptables", "-w", "-I", "OUTPUT", "1", "-j", chain)),
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
        inject.append(Step(spec, ("iptables", "-w", "-A", chain, *rule)))
    # Kill only a process that is still our delayer (the pid may have been reused).
    unhook = (
        f"while iptables -w -D OUTPUT -j {chain} 2>/dev/null; do :; done; "
        f"iptables -w -F {chain} 2>/dev/null; iptables -w -X {chain} 2>/dev/null; "
    )
    stop_delayer = (
        f"p=$(cat {pidfile} 2>/dev/null) && grep -qs kubedrill.faults.delayer /proc/$p/cmdline "
        f"&& kill $p; rm -f {pidfile} {ready}; "
    )
    if helper == spec:
        script = unhook + stop_delayer + chain_gone(chain)
        return inject, [*thaw_first(spec), Step(spec, ("sh", "-c", script))]
    return inject, [
        *thaw_first(spec),
        Step(spec, ("sh", "-c", unhook + chain_gone(chain))),
        Step(helper, ("sh", "-c", stop_delayer + "true")),
    ]
