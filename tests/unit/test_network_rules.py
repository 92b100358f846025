"""The iptables / tc / NFQUEUE steps that Isolate, Partition and NetemDelay plan.

Plans are computed against a small fake Cluster (three etcd members and a load balancer). The
undo scripts are then executed against stateful stand-ins for `iptables` and `tc`: the scripts
run under /bin/sh with PATH restricted to a temporary directory holding only the stand-ins, so
the real iptables/tc on this machine can never be reached.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from kubedrill.cluster import Cluster, ClusterFacts, CommandLine, EtcdAccess, FaultSteps, Node
from kubedrill.errors import FaultError
from kubedrill.faults.base import FaultPlan
from kubedrill.faults.network import (
    DELAYER_MAX_SECONDS,
    Isolate,
    NetemDelay,
    Partition,
    chain_gone,
    delay_chain,
    drop_chain,
    iptables_grudge_steps,
    nfqueue_steps,
    qdisc_handle,
    queue_number,
    unhook_steps,
)
from kubedrill.faults.shape import Selector
from kubedrill.transport import TransportSpec
from kubedrill.transport.step import Step

ADDR = {"n1": "10.9.0.11", "n2": "10.9.0.12", "n3": "10.9.0.13", "lb1": "10.9.0.20"}

CHAIN = "KUBEDRILL-0123abcd"  # a fixed chain for the helpers' own tests
# The chain every fault used before faults composed; old undo records still name it.
LEGACY_CHAIN = "KUBEDRILL"


def chain_gone_check(chain: str) -> str:
    """The undo ends in a check that the chain is really gone, so a heal that did not take
    fails."""
    return f"! iptables -w -S 2>/dev/null | grep -qE -- '(-N|-j) {chain}( |$)'"


def ipt_undo(chain: str) -> str:
    return (
        f"while iptables -w -D INPUT -j {chain} 2>/dev/null; do :; done; "
        f"while iptables -w -D OUTPUT -j {chain} 2>/dev/null; do :; done; "
        f"iptables -w -F {chain} 2>/dev/null; iptables -w -X {chain} 2>/dev/null; "
        + chain_gone_check(chain)
    )


def netem_undo(dev: str, handle: str) -> str:
    return (
        f"tc qdisc del dev {dev} root handle {handle} 2>/dev/null; "
        f"! tc qdisc show dev {dev} 2>/dev/null | grep -q '^qdisc [a-z_]* {handle} '"
    )


def chain_of(plan: FaultPlan) -> str:
    """The plan's own chain, which it names in its data (random per plan, so read back)."""
    chain = plan.data["chain"]
    assert re.fullmatch(r"KUBEDRILL-[0-9a-f]{8}", chain), chain
    return chain


class StubControl:
    """ComponentControl that network faults must never call."""

    def stop(self, node: Node, component: str) -> FaultSteps:
        raise AssertionError("network faults do not stop components")

    def kill(self, node: Node, component: str) -> FaultSteps:
        raise AssertionError("network faults do not kill components")

    def pause(self, node: Node, component: str) -> FaultSteps:
        raise AssertionError("network faults do not pause components")

    def is_running(self, node: Node, component: str) -> bool:
        return True

    def components(self, node: Node) -> Sequence[str]:
        return ["etcd"] if "etcd" in node.roles else ["haproxy"]

    def logs(self, node: Node, component: str, *, since_wall: float | None = None) -> str:
        return ""

    def command_line(self, node: Node, component: str) -> CommandLine | None:
        return None


def spec(name: str) -> TransportSpec:
    return TransportSpec("netns", name, {"netns": f"kd-t-{name}"})


def make_cluster(leader: str | None = "n2", delay_method: str = "netem") -> Cluster:
    nodes = (
        *(
            Node(name, frozenset({"etcd", "control-plane"}), ADDR[name], spec(name))
            for name in ("n1", "n2", "n3")
        ),
        Node("lb1", frozenset({"lb"}), ADDR["lb1"], spec("lb1")),
    )
    cluster = Cluster(
        name="lab/t",
        target="lab",
        nodes=nodes,
        etcd=EtcdAccess({n: f"https://{ADDR[n]}:2379" for n in ("n1", "n2", "n3")}, None),
        control=StubControl(),
        observer=TransportSpec("local", "kubedrill"),
        facts=ClusterFacts("lab", "stacked", 3, delay_method=delay_method),
    )
    cluster.leader_locators["etcd"] = lambda: leader
    return cluster


def flat(steps: Sequence[Step]) -> list[tuple[str, tuple[str, ...]]]:
    return [(s.transport.node, s.argv) for s in steps]


def ipt(*args: str) -> tuple[str, ...]:
    return ("iptables", "-w", *args)


def hook(node: str, chain: str) -> list[tuple[str, tuple[str, ...]]]:
    return [
        (node, ipt("-N", chain)),
        (node, ipt("-I", "INPUT", "1", "-j", chain)),
        (node, ipt("-I", "OUTPUT", "1", "-j", chain)),
    ]


def drop_all(node: str, peer: str, chain: str) -> list[tuple[str, tuple[str, ...]]]:
    return [
        (node, ipt("-A", chain, "-s", ADDR[peer], "-j", "DROP")),
        (node, ipt("-A", chain, "-d", ADDR[peer], "-j", "DROP")),
    ]


def undo(node: str, chain: str) -> tuple[str, tuple[str, ...]]:
    return (node, ("sh", "-c", ipt_undo(chain)))


# --- Isolate ----------------------------------------------------------------------------------


def test_isolate_leader_all_traffic_exact_rules() -> None:
    plan = Isolate().plan(make_cluster(leader="n2"))
    c = chain_of(plan)

    assert plan.name == "isolate"
    assert plan.victims == ("n2",)
    assert plan.description == "isolate n2 (leader) from the other nodes (all traffic)"
    assert plan.takes_down == frozenset({("n2", "etcd")})
    assert plan.data == {"port": "all", "chain": c}
    assert plan.claims == frozenset()  # nothing it makes is shared: it composes with anything
    # fmt: off
    assert flat(plan.inject) == [
        ("lb1", ("iptables", "-w", "-N", c)),
        ("lb1", ("iptables", "-w", "-I", "INPUT", "1", "-j", c)),
        ("lb1", ("iptables", "-w", "-I", "OUTPUT", "1", "-j", c)),
        ("lb1", ("iptables", "-w", "-A", c, "-s", "10.9.0.12", "-j", "DROP")),
        ("lb1", ("iptables", "-w", "-A", c, "-d", "10.9.0.12", "-j", "DROP")),
        ("n1", ("iptables", "-w", "-N", c)),
        ("n1", ("iptables", "-w", "-I", "INPUT", "1", "-j", c)),
        ("n1", ("iptables", "-w", "-I", "OUTPUT", "1", "-j", c)),
        ("n1", ("iptables", "-w", "-A", c, "-s", "10.9.0.12", "-j", "DROP")),
        ("n1", ("iptables", "-w", "-A", c, "-d", "10.9.0.12", "-j", "DROP")),
        ("n2", ("iptables", "-w", "-N", c)),
        ("n2", ("iptables", "-w", "-I", "INPUT", "1", "-j", c)),
        ("n2", ("iptables", "-w", "-I", "OUTPUT", "1", "-j", c)),
        ("n2", ("iptables", "-w", "-A", c, "-s", "10.9.0.20", "-j", "DROP")),
        ("n2", ("iptables", "-w", "-A", c, "-d", "10.9.0.20", "-j", "DROP")),
        ("n2", ("iptables", "-w", "-A", c, "-s", "10.9.0.11", "-j", "DROP")),
        ("n2", ("iptables", "-w", "-A", c, "-d", "10.9.0.11", "-j", "DROP")),
        ("n2", ("iptables", "-w", "-A", c, "-s", "10.9.0.13", "-j", "DROP")),
        ("n2", ("iptables", "-w", "-A", c, "-d", "10.9.0.13", "-j", "DROP")),
        ("n3", ("iptables", "-w", "-N", c)),
        ("n3", ("iptables", "-w", "-I", "INPUT", "1", "-j", c)),
        ("n3", ("iptables", "-w", "-I", "OUTPUT", "1", "-j", c)),
        ("n3", ("iptables", "-w", "-A", c, "-s", "10.9.0.12", "-j", "DROP")),
        ("n3", ("iptables", "-w", "-A", c, "-d", "10.9.0.12", "-j", "DROP")),
    ]
    # fmt: on
    assert flat(plan.undo) == [undo("lb1", c), undo("n1", c), undo("n2", c), undo("n3", c)]
    # Nothing may fail, -N included: the chain is this fault's alone, an existing one is not.
    assert not any(s.ignore_errors for s in plan.inject + plan.undo)
    # Steps carry the node's own transport (the lab's netns), not the observer's.
    for step in plan.inject + plan.undo:
        assert step.transport == spec(step.transport.node)


def test_isolate_named_port_only() -> None:
    plan = Isolate(victims=Selector.named("n1"), port=2380).plan(make_cluster(leader="n2"))
    c = chain_of(plan)

    def port_drops(node: str, peer: str) -> list[tuple[str, tuple[str, ...]]]:
        a = ADDR[peer]
        return [
            (node, ipt("-A", c, "-s", a, "-p", "tcp", "--dport", "2380", "-j", "DROP")),
            (node, ipt("-A", c, "-d", a, "-p", "tcp", "--dport", "2380", "-j", "DROP")),
            (node, ipt("-A", c, "-s", a, "-p", "tcp", "--sport", "2380", "-j", "DROP")),
        ]

    assert plan.name == "blackhole port 2380"
    assert plan.victims == ("n1",)
    assert plan.description == "isolate n1 from the other nodes (tcp port 2380)"
    assert plan.data == {"port": "2380", "chain": c}
    assert plan.takes_down == frozenset({("n1", "etcd")})
    # fmt: off
    assert flat(plan.inject) == [
        *hook("lb1", c), *port_drops("lb1", "n1"),
        *hook("n1", c), *port_drops("n1", "lb1"), *port_drops("n1", "n2"),
        *port_drops("n1", "n3"),
        *hook("n2", c), *port_drops("n2", "n1"),
        *hook("n3", c), *port_drops("n3", "n1"),
    ]
    # fmt: on
    assert flat(plan.undo) == [undo("lb1", c), undo("n1", c), undo("n2", c), undo("n3", c)]


def test_isolate_two_victims_takes_quorum() -> None:
    plan = Isolate(victims=Selector.named("n1", "n3")).plan(make_cluster())
    assert plan.victims == ("n1", "n3")
    assert plan.description == "isolate n1, n3 from the other nodes (all traffic)"
    # n1 and n3 are each alone, so n1 also drops n3 and vice versa.
    n1_drops = [argv[5] for node, argv in flat(plan.inject) if node == "n1" and "-A" in argv]
    assert n1_drops == [ADDR["lb1"], ADDR["lb1"], ADDR["n2"], ADDR["n2"], ADDR["n3"], ADDR["n3"]]
    assert len(plan.takes_down) == 2
    assert {c for _n, c in plan.takes_down} == {"etcd"}


def test_isolate_follower_never_the_leader() -> None:
    plan = Isolate(victims=Selector.follower()).plan(make_cluster(leader="n2"))
    assert len(plan.victims) == 1
    assert plan.victims[0] in ("n1", "n3")
    assert "(leader)" not in plan.description


def test_isolate_leader_without_leader_fails() -> None:
    with pytest.raises(FaultError, match="no leader"):
        Isolate().plan(make_cluster(leader=None))


def test_isolate_named_does_not_ask_for_the_leader() -> None:
    cluster = make_cluster()

    def no_leader() -> str | None:
        raise AssertionError("a named selector must not look up the leader")

    cluster.leader_locators["etcd"] = no_leader
    plan = Isolate(victims=Selector.named("n3")).plan(cluster)
    assert plan.victims == ("n3",)


def test_plan_render_lists_inject_and_undo() -> None:
    plan = Isolate().plan(make_cluster())
    c = chain_of(plan)
    text = plan.render()
    assert text.startswith(
        "fault: isolate n2 (leader) from the other nodes (all traffic)\n"
        f"  inject:\n    [lb1] iptables -w -N {c}\n"
    )
    assert f"  undo:\n    [lb1] sh -c {ipt_undo(c)}\n" in text
    assert text.count("\n    [") == len(plan.inject) + len(plan.undo)


# --- Partition --------------------------------------------------------------------------------


def test_partition_minority_with_leader_exact_rules() -> None:
    plan = Partition().plan(make_cluster(leader="n2"))
    c = chain_of(plan)
    assert plan.name == "partition"
    assert plan.victims == ("n2",)
    assert plan.description == "partition {n2} from {n1, n3, lb1}"
    assert plan.takes_down == frozenset({("n2", "etcd")})
    assert plan.data == {"port": "all", "chain": c}
    # fmt: off
    assert flat(plan.inject) == [
        *hook("lb1", c), *drop_all("lb1", "n2", c),
        *hook("n1", c), *drop_all("n1", "n2", c),
        *hook("n2", c), *drop_all("n2", "lb1", c), *drop_all("n2", "n1", c),
        *drop_all("n2", "n3", c),
        *hook("n3", c), *drop_all("n3", "n2", c),
    ]
    # fmt: on
    assert flat(plan.undo) == [undo("lb1", c), undo("n1", c), undo("n2", c), undo("n3", c)]


@pytest.mark.parametrize("selector", [Selector("majority"), Selector.named("n1", "n2")])
def test_partition_refuses_a_non_minority(selector: Selector) -> None:
    with pytest.raises(FaultError, match="is not a minority of n1, n2, n3"):
        Partition(minority=selector).plan(make_cluster())


def test_partition_refuses_a_half() -> None:
    cluster = make_cluster()
    cluster.nodes = (*cluster.nodes, Node("n4", frozenset({"etcd"}), "10.9.0.14", spec("n4")))
    with pytest.raises(FaultError, match="n1, n2 is not a minority of n1, n2, n3, n4"):
        Partition(minority=Selector.named("n1", "n2")).plan(cluster)
    plan = Partition(minority=Selector.named("n4")).plan(cluster)
    assert plan.victims == ("n4",)
    assert plan.takes_down == frozenset({("n4", "etcd")})


# --- NetemDelay -------------------------------------------------------------------------------


def test_netem_delay_exact_tc_commands() -> None:
    plan = NetemDelay(200).plan(make_cluster(leader="n3"))
    token = plan.data["token"]
    h = qdisc_handle(token)
    assert plan.name == "netem delay 200ms"
    assert plan.victims == ("n3",)
    assert plan.description == "delay tcp port 2380 traffic from n3 (leader) by 200ms"
    assert plan.data == {"delay_ms": "200", "method": "netem", "token": token}
    assert plan.takes_down == frozenset()
    # One root qdisc per device: the runner refuses a second netem fault on it.
    assert plan.claims == frozenset({"the root qdisc of eth0 on n3"})
    # fmt: off
    assert flat(plan.inject) == [
        ("n3", ("tc", "qdisc", "add", "dev", "eth0", "root", "handle", h, "prio")),
        ("n3", ("tc", "qdisc", "add", "dev", "eth0", "parent", f"{h}3", "netem",
                "delay", "200ms")),
        ("n3", ("tc", "filter", "add", "dev", "eth0", "parent", f"{h}0", "protocol", "ip",
                "prio", "1", "u32", "match", "ip", "dport", "2380", "0xffff", "flowid",
                f"{h}3")),
        ("n3", ("tc", "filter", "add", "dev", "eth0", "parent", f"{h}0", "protocol", "ip",
                "prio", "1", "u32", "match", "ip", "sport", "2380", "0xffff", "flowid",
                f"{h}3")),
    ]
    # fmt: on
    assert flat(plan.undo) == [("n3", ("sh", "-c", netem_undo("eth0", h)))]
    assert not any(s.ignore_errors for s in plan.inject + plan.undo)


def test_netem_jitter_port_device_and_named_victims() -> None:
    fault = NetemDelay(
        50, victims=Selector.named("n1", "n2"), port=2379, jitter_ms=10, device="veth9"
    )
    plan = fault.plan(make_cluster(leader="n2"))
    h = qdisc_handle(plan.data["token"])
    assert plan.victims == ("n1", "n2")
    assert plan.description == "delay tcp port 2379 traffic from n1, n2 by 50ms"
    assert [n for n, _ in flat(plan.inject)] == ["n1"] * 4 + ["n2"] * 4
    netem = plan.inject[1].argv
    assert netem[-4:] == ("netem", "delay", "50ms", "10ms")
    assert plan.inject[0].argv[4] == "veth9"
    assert plan.inject[2].argv[-5:] == ("dport", "2379", "0xffff", "flowid", f"{h}3")
    assert flat(plan.undo) == [
        ("n1", ("sh", "-c", netem_undo("veth9", h))),
        ("n2", ("sh", "-c", netem_undo("veth9", h))),
    ]
    assert plan.claims == frozenset(
        {"the root qdisc of veth9 on n1", "the root qdisc of veth9 on n2"}
    )


@pytest.mark.parametrize(
    ("token", "handle", "queue"),
    [
        ("00000000", "1:", 0),
        ("0a1b2c3d", "a1c:", 0x0A1B),
        ("fffeffff", "1:", 0xFFFE),
        ("ffffffff", "2:", 0xFFFF),
        ("fffdabcd", "fffe:", 0xFFFD),
    ],
)
def test_handles_and_queues_derive_from_the_token(token: str, handle: str, queue: int) -> None:
    # A root handle is never 0 (none) or ffff (ingress), in tc's own lower-case hex.
    assert qdisc_handle(token) == handle
    assert queue_number(token) == queue
    assert drop_chain(token) == f"KUBEDRILL-{token}"
    assert delay_chain(token) == f"KUBEDRILL-DELAY-{token}"
    assert len(delay_chain(token)) <= 28  # iptables' limit on chain names


def test_chain_name_too_long_is_refused_when_planned() -> None:
    with pytest.raises(FaultError, match="longer than 28"):
        delay_chain("0123456789abcdef")


@pytest.mark.parametrize(("delay", "jitter"), [(0, 0), (-5, 0), (100, -1)])
def test_netem_rejects_bad_numbers(delay: int, jitter: int) -> None:
    with pytest.raises(FaultError, match="netem delay must be positive"):
        NetemDelay(delay, jitter_ms=jitter).plan(make_cluster())


def test_nfqueue_delay_exact_steps() -> None:
    plan = NetemDelay(150).plan(make_cluster(leader="n1", delay_method="nfqueue"))
    token = plan.data["token"]
    chain, queue = f"KUBEDRILL-DELAY-{token}", str(int(token[:4], 16))
    # Named after the node's netns and the fault, so two lab clusters with a node "n1", or two
    # delay faults on one node, do not share files.
    pidfile = f"/run/kubedrill-delayer-kd-t-n1-{token}.pid"
    ready = f"/run/kubedrill-delayer-kd-t-n1-{token}.ready"
    assert plan.data == {"delay_ms": "150", "method": "nfqueue", "token": token}
    assert plan.victims == ("n1",)
    assert plan.claims == frozenset()  # own chain, queue and delayer: delays compose
    # fmt: off
    assert flat(plan.inject) == [
        ("n1", ("sh", "-c",
                f"rm -f {ready}; {sys.executable} -m kubedrill.faults.delayer --queue {queue} "
                f"--delay-ms 150 --max-seconds {DELAYER_MAX_SECONDS} --ready-file {ready} "
                f">/dev/null 2>&1 & echo $! > {pidfile}")),
        ("n1", ("timeout", "10", "sh", "-c",
                f"until [ -f {ready} ]; do sleep 0.05; done")),
        ("n1", ("iptables", "-w", "-N", chain)),
        ("n1", ("iptables", "-w", "-I", "OUTPUT", "1", "-j", chain)),
        ("n1", ("iptables", "-w", "-A", chain, "-p", "tcp", "--dport", "2380", "-j",
                "NFQUEUE", "--queue-num", queue, "--queue-bypass")),
        ("n1", ("iptables", "-w", "-A", chain, "-p", "tcp", "--sport", "2380", "-j",
                "NFQUEUE", "--queue-num", queue, "--queue-bypass")),
    ]
    # fmt: on
    assert not any(s.ignore_errors for s in plan.inject)
    # The wait gives up after 10 s by itself; the step's own timeout is only a backstop.
    assert [s.timeout for s in plan.inject] == [30.0, 15.0, 30.0, 30.0, 30.0, 30.0]
    # fmt: off
    assert flat(plan.undo) == [
        ("n1", ("sh", "-c",
                f"while iptables -w -D OUTPUT -j {chain} 2>/dev/null; do :; done; "
                f"iptables -w -F {chain} 2>/dev/null; "
                f"iptables -w -X {chain} 2>/dev/null; "
                f"p=$(cat {pidfile} 2>/dev/null) && "
                "grep -qs kubedrill.faults.delayer /proc/$p/cmdline && kill $p; "
                f"rm -f {pidfile} {ready}; " + chain_gone_check(chain))),
    ]
    # fmt: on
    assert not any(s.ignore_errors for s in plan.undo)


def test_nfqueue_files_are_named_per_netns_or_node() -> None:
    cluster = make_cluster(leader="n1", delay_method="nfqueue")
    plan = NetemDelay(20, victims=Selector.named("n1", "n3")).plan(cluster)
    t = plan.data["token"]
    assert [n for n, _ in flat(plan.inject)] == ["n1"] * 6 + ["n3"] * 6
    assert f"--ready-file /run/kubedrill-delayer-kd-t-n1-{t}.ready " in plan.inject[0].argv[2]
    assert f"--ready-file /run/kubedrill-delayer-kd-t-n3-{t}.ready " in plan.inject[6].argv[2]
    assert f"/run/kubedrill-delayer-kd-t-n3-{t}.pid" in plan.undo[1].argv[2]
    assert "kd-t-n3" not in plan.undo[0].argv[2]
    # A transport without a netns (e.g. ssh) falls back to the node name.
    base = "/run/kubedrill-delayer-far1-0123abcd"
    inject, und = nfqueue_steps(
        TransportSpec("ssh", "far1", {"host": "h"}), NetemDelay(20), "0123abcd"
    )
    assert inject[0].argv[2].endswith(f"& echo $! > {base}.pid")
    assert inject[1].argv[-1] == f"until [ -f {base}.ready ]; do sleep 0.05; done"
    assert f"rm -f {base}.pid {base}.ready; " in und[0].argv[2]


def test_nfqueue_wait_for_ready_file(tmp_path: Path) -> None:
    """The wait step, run for real with the ready file moved into tmp_path."""
    plan = NetemDelay(150).plan(make_cluster(leader="n1", delay_method="nfqueue"))
    ready = tmp_path / "delayer.ready"
    run_ready = f"/run/kubedrill-delayer-kd-t-n1-{plan.data['token']}.ready"
    argv = [a.replace(run_ready, str(ready)) for a in plan.inject[1].argv]
    assert argv[:2] == ["timeout", "10"]
    argv[1] = "0.5"  # the same script, a shorter deadline

    def run() -> int:
        return subprocess.run(argv, capture_output=True, check=False, timeout=10).returncode

    assert run() == 124  # no delayer ever said it is bound: the inject fails, no rules follow
    ready.write_text("4242")
    assert run() == 0


def test_grudge_helpers_directly() -> None:
    cluster = make_cluster()
    inject, und = iptables_grudge_steps(
        cluster.node("n1"), [cluster.node("n3"), cluster.node("n2")], port=None, chain=CHAIN
    )
    assert flat(inject) == hook("n1", CHAIN) + drop_all("n1", "n2", CHAIN) + drop_all(
        "n1", "n3", CHAIN
    )
    assert und == unhook_steps(spec("n1"), CHAIN)
    assert flat(und) == [undo("n1", CHAIN)]


# --- undo scripts against stateful stand-ins --------------------------------------------------

# FAKE_IPT_FAIL lists operations that change nothing and fail; FAKE_IPT_LIE lists operations
# that change nothing yet report success: a heal that did not take, which the undo must report.
FAKE_IPTABLES = r"""#!/bin/sh
# Stateful stand-in for the iptables subcommands kubedrill uses.
PATH=/usr/bin:/bin
s="$FAKE_NET_STATE"
echo "iptables $*" >> "$s/calls"
[ "$1" = "-w" ] && shift
op="$1"; shift
case " $FAKE_IPT_FAIL " in *" $op "*) exit 1 ;; esac
case " $FAKE_IPT_LIE " in *" $op "*) exit 0 ;; esac
case "$op" in
  -N) [ -e "$s/chain.$1" ] && exit 1; : > "$s/chain.$1" ;;
  -I) [ -e "$s/chain.$4" ] || exit 2; echo "$2" >> "$s/hooks.$1.$4" ;;
  -D) f="$s/hooks.$1.$3"; [ -s "$f" ] || exit 1; sed -i '$d' "$f"; [ -s "$f" ] || rm -f "$f" ;;
  -A) c="$1"; shift; [ -e "$s/chain.$c" ] || exit 1; echo "$*" >> "$s/rules.$c" ;;
  -F) [ -e "$s/chain.$1" ] || exit 1; rm -f "$s/rules.$1" ;;
  -X) [ -e "$s/chain.$1" ] || exit 1
      for f in "$s"/hooks.*."$1"; do [ -s "$f" ] && exit 1; done
      [ -s "$s/rules.$1" ] && exit 1
      rm -f "$s/chain.$1" ;;
  -S) [ $# -eq 0 ] || exit 2
      printf -- '-P INPUT ACCEPT\n-P FORWARD ACCEPT\n-P OUTPUT ACCEPT\n'
      for f in "$s"/chain.*; do [ -e "$f" ] && echo "-N ${f##*/chain.}"; done
      for f in "$s"/hooks.*; do
        [ -e "$f" ] || continue
        h="${f##*/hooks.}"
        while read -r _pos; do echo "-A ${h%%.*} -j ${h#*.}"; done < "$f"
      done
      for f in "$s"/rules.*; do
        [ -e "$f" ] || continue
        while read -r r; do echo "-A ${f##*/rules.} $r"; done < "$f"
      done ;;
  *) exit 2 ;;
esac
exit 0
"""

# FAKE_TC_LIE=1 makes `qdisc del` report success without removing anything. Like the kernel,
# `qdisc del ... root handle H:` refuses (Invalid handle) when the root qdisc is not H:.
FAKE_TC = r"""#!/bin/sh
# Stateful stand-in for the tc subcommands kubedrill uses.
PATH=/usr/bin:/bin
s="$FAKE_NET_STATE"
echo "tc $*" >> "$s/calls"
case "$1 $2 $5" in
  "qdisc add root") [ -e "$s/qdisc.$4" ] && exit 2; echo "root $7" > "$s/qdisc.$4" ;;
  "qdisc add parent"|"filter add parent") [ -e "$s/qdisc.$4" ] || exit 2
      echo "$*" >> "$s/qdisc.$4" ;;
  "qdisc del root") [ -e "$s/qdisc.$4" ] || exit 2
      if [ "$6" = handle ] && [ "$(head -n1 "$s/qdisc.$4")" != "root $7" ]; then exit 2; fi
      [ -n "$FAKE_TC_LIE" ] && exit 0
      rm -f "$s/qdisc.$4" ;;
  "qdisc show ") [ $# -eq 4 ] && [ "$3" = dev ] || exit 2
      if [ -e "$s/qdisc.$4" ]; then
        h=$(head -n1 "$s/qdisc.$4"); h=${h#root }
        echo "qdisc prio $h root refcnt 2 bands 3"
        grep -q netem "$s/qdisc.$4" && echo "qdisc netem 8001: parent ${h}3 limit 1000 delay 1ms"
      else
        echo "qdisc noqueue 0: root refcnt 2"
      fi ;;
  *) exit 2 ;;
esac
exit 0
"""


class FakeHost:
    """One node's network state, changed only through the stand-in commands."""

    def __init__(self, root: Path, **env: str) -> None:
        self.bin = root / "bin"
        self.state = root / "state"
        self.bin.mkdir()
        self.state.mkdir()
        for name, text in (("iptables", FAKE_IPTABLES), ("tc", FAKE_TC)):
            path = self.bin / name
            path.write_text(text)
            path.chmod(0o755)
        # grep matters: without it `! ... | grep -q` would succeed blindly.
        for tool in ("cat", "rm", "grep"):
            (self.bin / tool).symlink_to(f"/bin/{tool}")
        self.env = {"PATH": str(self.bin), "FAKE_NET_STATE": str(self.state), **env}

    def run(self, step: Step, *, text: str | None = None) -> int:
        return self.call(step, text=text).returncode

    def call(self, step: Step, *, text: str | None = None) -> subprocess.CompletedProcess[str]:
        argv = list(step.argv)
        if argv[0] == "sh":
            assert argv[1] == "-c"
            argv = ["/bin/sh", "-c", text if text is not None else argv[2]]
        else:
            assert argv[0] in ("iptables", "tc"), argv
            argv[0] = str(self.bin / argv[0])
        return subprocess.run(
            argv, env=self.env, capture_output=True, text=True, check=False, timeout=10
        )

    def inject(self, steps: Sequence[Step]) -> None:
        for step in steps:
            code = self.run(step)
            assert code == 0 or step.ignore_errors, (step.render(), code)

    def residue(self) -> list[str]:
        return sorted(p.name for p in self.state.iterdir() if p.name != "calls")

    def calls(self) -> list[str]:
        return (self.state / "calls").read_text().splitlines()


def test_stand_in_really_models_iptables(tmp_path: Path) -> None:
    """The stand-in must fail like iptables does, or the idempotency tests prove nothing."""
    host = FakeHost(tmp_path)
    s = spec("n1")
    policies = ["-P INPUT ACCEPT", "-P FORWARD ACCEPT", "-P OUTPUT ACCEPT"]
    assert host.call(Step(s, ipt("-S"))).stdout.splitlines() == policies
    assert host.run(Step(s, ipt("-D", "INPUT", "-j", CHAIN))) != 0
    assert host.run(Step(s, ipt("-F", CHAIN))) != 0
    assert host.run(Step(s, ipt("-I", "INPUT", "1", "-j", CHAIN))) != 0
    assert host.run(Step(s, ipt("-N", CHAIN))) == 0
    assert host.run(Step(s, ipt("-N", CHAIN))) != 0
    assert host.run(Step(s, ipt("-I", "INPUT", "1", "-j", CHAIN))) == 0
    assert host.run(Step(s, ipt("-A", CHAIN, "-s", "10.9.0.12", "-j", "DROP"))) == 0
    assert host.run(Step(s, ipt("-X", CHAIN))) != 0  # still referenced
    assert host.residue() == [f"chain.{CHAIN}", f"hooks.INPUT.{CHAIN}", f"rules.{CHAIN}"]
    assert host.call(Step(s, ipt("-S"))).stdout.splitlines() == [
        *policies,
        f"-N {CHAIN}",
        f"-A INPUT -j {CHAIN}",
        f"-A {CHAIN} -s 10.9.0.12 -j DROP",
    ]


def test_stand_in_really_models_the_root_qdisc(tmp_path: Path) -> None:
    host = FakeHost(tmp_path)
    s = spec("n1")
    assert (
        host.run(Step(s, ("tc", "qdisc", "add", "dev", "eth0", "root", "handle", "a:", "prio")))
        == 0
    )
    assert (
        host.run(Step(s, ("tc", "qdisc", "add", "dev", "eth0", "root", "handle", "b:", "prio")))
        != 0
    )
    assert host.run(Step(s, ("tc", "qdisc", "del", "dev", "eth0", "root", "handle", "b:"))) != 0
    assert host.call(Step(s, ("tc", "qdisc", "show", "dev", "eth0"))).stdout.startswith(
        "qdisc prio a: root"
    )
    assert host.run(Step(s, ("tc", "qdisc", "del", "dev", "eth0", "root", "handle", "a:"))) == 0
    assert host.residue() == []


def test_chain_gone_matches_the_chain_only() -> None:
    assert chain_gone(CHAIN) == chain_gone_check(CHAIN)
    pattern = f"(-N|-j) {CHAIN}( |$)"

    def grep(listing: str) -> int:
        return subprocess.run(
            ["grep", "-qE", "--", pattern], input=listing, text=True, check=False
        ).returncode

    assert grep(f"-N {CHAIN}\n") == 0
    assert grep(f"-A OUTPUT -j {CHAIN}\n") == 0
    assert grep(f"-A OUTPUT -p tcp -j {CHAIN} -m comment\n") == 0
    # Another fault's chain, the old shared chain, or the chain's own rules do not count.
    assert grep("-N KUBEDRILL-0123abce\n-A OUTPUT -j KUBEDRILL-0123abce\n") == 1
    assert grep("-N KUBEDRILL\n-A OUTPUT -j KUBEDRILL\n") == 1
    assert grep(f"-N {CHAIN}0\n-A OUTPUT -j {CHAIN}0\n") == 1
    assert grep(f"-A {CHAIN} -s 10.9.0.12 -j DROP\n") == 1
    assert grep("-P INPUT ACCEPT\n") == 1


def chain_files(chain: str, *hooks: str) -> list[str]:
    """The stand-in's state files for one chain that has rules and is jumped to from hooks."""
    return [f"chain.{chain}", *(f"hooks.{h}.{chain}" for h in hooks), f"rules.{chain}"]


def test_iptables_undo_cleans_up_and_is_idempotent(tmp_path: Path) -> None:
    plan = Isolate().plan(make_cluster(leader="n2"))
    c = chain_of(plan)
    host = FakeHost(tmp_path)
    n2_inject = [s for s in plan.inject if s.transport.node == "n2"]
    n2_undo = [s for s in plan.undo if s.transport.node == "n2"]
    host.inject(n2_inject)
    assert host.residue() == chain_files(c, "INPUT", "OUTPUT")
    assert (host.state / f"rules.{c}").read_text().count("DROP") == 6

    for _ in range(3):  # replaying the undo (e.g. `kubedrill heal` after a crash) is safe
        assert [host.run(s) for s in n2_undo] == [0]
        assert host.residue() == []


def test_iptables_undo_removes_every_copy_of_the_hook(tmp_path: Path) -> None:
    host = FakeHost(tmp_path)
    cluster = make_cluster()
    inject, und = iptables_grudge_steps(
        cluster.node("n1"), [cluster.node("n2")], port=2380, chain=CHAIN
    )
    host.inject(inject)
    host.inject(inject[1:])  # the hooks inserted twice (an inject replayed by hand)
    assert (host.state / f"hooks.INPUT.{CHAIN}").read_text().splitlines() == ["1", "1"]
    assert [host.run(s) for s in und] == [0]
    assert host.residue() == []


def test_iptables_undo_on_a_clean_node_succeeds(tmp_path: Path) -> None:
    host = FakeHost(tmp_path)
    assert [host.run(s) for s in unhook_steps(spec("n3"), CHAIN)] == [0]
    assert host.residue() == []
    assert host.calls() == [
        f"iptables -w -D INPUT -j {CHAIN}",
        f"iptables -w -D OUTPUT -j {CHAIN}",
        f"iptables -w -F {CHAIN}",
        f"iptables -w -X {CHAIN}",
        "iptables -w -S",
    ]


def test_iptables_undo_ignores_the_delay_chain(tmp_path: Path) -> None:
    """A delay fault still in place must not make the isolate's heal look failed."""
    host = FakeHost(tmp_path)
    delay = NetemDelay(150).plan(make_cluster(leader="n1", delay_method="nfqueue"))
    host.inject(delay.inject[2:])
    assert [host.run(s) for s in unhook_steps(spec("n1"), CHAIN)] == [0]
    assert host.residue() == chain_files(delay_chain(delay.data["token"]), "OUTPUT")


@pytest.mark.parametrize(
    ("env", "left"),
    [
        # -D and -X refuse: nothing is removed but the rules.
        ({"FAKE_IPT_FAIL": "-D -X"}, ["chain.{c}", "hooks.INPUT.{c}", "hooks.OUTPUT.{c}"]),
        # -D does nothing and fails (a -D that "succeeded" would loop forever), -X does nothing
        # and claims success.
        (
            {"FAKE_IPT_FAIL": "-D", "FAKE_IPT_LIE": "-X"},
            ["chain.{c}", "hooks.INPUT.{c}", "hooks.OUTPUT.{c}"],
        ),
        # The hooks are gone, but -X claims success and leaves the (empty) chain defined.
        ({"FAKE_IPT_LIE": "-X"}, ["chain.{c}"]),
        # The hooks cannot be removed, so -X refuses: the chain is still jumped to.
        ({"FAKE_IPT_FAIL": "-D"}, ["chain.{c}", "hooks.INPUT.{c}", "hooks.OUTPUT.{c}"]),
    ],
)
def test_iptables_undo_fails_when_the_chain_survives(
    tmp_path: Path, env: dict[str, str], left: list[str]
) -> None:
    plan = Isolate().plan(make_cluster(leader="n2"))
    c = chain_of(plan)
    host = FakeHost(tmp_path, **env)
    host.inject([s for s in plan.inject if s.transport.node == "n2"])
    n2_undo = [s for s in plan.undo if s.transport.node == "n2"]
    for _ in range(2):  # replaying does not make a failed heal look done
        assert [host.run(s) for s in n2_undo] == [1]
        assert host.residue() == [f.format(c=c) for f in left]
    assert host.calls()[-1] == "iptables -w -S"


def test_netem_undo_cleans_up_and_is_idempotent(tmp_path: Path) -> None:
    plan = NetemDelay(100, jitter_ms=5).plan(make_cluster(leader="n1"))
    h = qdisc_handle(plan.data["token"])
    host = FakeHost(tmp_path)
    host.inject(plan.inject)
    assert host.residue() == ["qdisc.eth0"]
    assert len((host.state / "qdisc.eth0").read_text().splitlines()) == 4
    # Injecting again on top must fail (no silent double qdisc); undo first, then it works.
    assert host.run(plan.inject[0]) != 0
    for _ in range(2):
        assert [host.run(s) for s in plan.undo] == [0]
        assert host.residue() == []
        assert host.calls()[-2:] == [
            f"tc qdisc del dev eth0 root handle {h}",
            "tc qdisc show dev eth0",
        ]
    host.inject(plan.inject)
    assert host.residue() == ["qdisc.eth0"]


def test_netem_undo_fails_when_netem_survives(tmp_path: Path) -> None:
    plan = NetemDelay(100).plan(make_cluster(leader="n1"))
    h = qdisc_handle(plan.data["token"])
    host = FakeHost(tmp_path, FAKE_TC_LIE="1")
    host.inject(plan.inject)
    show = host.call(Step(spec("n1"), ("tc", "qdisc", "show", "dev", "eth0"))).stdout
    assert f"qdisc prio {h} root" in show
    assert "qdisc netem" in show
    for _ in range(2):
        assert [host.run(s) for s in plan.undo] == [1]
        assert host.residue() == ["qdisc.eth0"]


def nfq_base(plan: FaultPlan, node: str = "n1") -> str:
    return f"/run/kubedrill-delayer-kd-t-{node}-{plan.data['token']}"


def nfqueue_undo_here(plan: FaultPlan, tmp_path: Path) -> str:
    """The undo script with its /run files moved into tmp_path, so that the test can never
    signal a real lab's delayer or remove its files."""
    script = plan.undo[0].argv[2]
    base = nfq_base(plan)
    assert script.count(f"{base}.pid") == 2
    assert script.count(f"{base}.ready") == 1
    local = script.replace(base, str(tmp_path / "delayer"))
    assert "/run" not in local
    return local


def wait_for_cmdline(proc: subprocess.Popen[bytes], needle: bytes) -> None:
    cmdline = Path(f"/proc/{proc.pid}/cmdline")
    for _ in range(200):
        if needle in cmdline.read_bytes():
            return
        time.sleep(0.01)
    raise AssertionError(f"{needle!r} never showed in {cmdline}")


def test_nfqueue_undo_stops_delayer_and_is_idempotent(tmp_path: Path) -> None:
    plan = NetemDelay(150).plan(make_cluster(leader="n1", delay_method="nfqueue"))
    chain = delay_chain(plan.data["token"])
    host = FakeHost(tmp_path)
    # Rules only: the delayer start and ready wait (inject[:2]) need NFQUEUE and root.
    host.inject(plan.inject[2:])
    assert host.residue() == chain_files(chain, "OUTPUT")
    # A harmless stand-in whose command line names the delayer module, as the real one's does.
    fake = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(30)", "kubedrill.faults.delayer"]
    )
    try:
        wait_for_cmdline(fake, b"kubedrill.faults.delayer")
        pidfile, ready = tmp_path / "delayer.pid", tmp_path / "delayer.ready"
        pidfile.write_text(f"{fake.pid}\n")
        ready.write_text(f"{fake.pid}")
        local = nfqueue_undo_here(plan, tmp_path)

        assert host.run(plan.undo[0], text=local) == 0
        assert fake.wait(timeout=5) == -signal.SIGTERM
        assert not pidfile.exists()
        assert not ready.exists()
        assert host.residue() == []
        for _ in range(2):
            assert host.run(plan.undo[0], text=local) == 0
            assert host.residue() == []
    finally:
        if fake.poll() is None:
            os.kill(fake.pid, signal.SIGKILL)
            fake.wait()


def test_nfqueue_undo_spares_a_process_that_is_not_the_delayer(tmp_path: Path) -> None:
    """The pid in the pid file may have been reused by now: only the delayer is killed."""
    plan = NetemDelay(150).plan(make_cluster(leader="n1", delay_method="nfqueue"))
    host = FakeHost(tmp_path)
    host.inject(plan.inject[2:])
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        wait_for_cmdline(sleeper, b"sleep\0" + b"30")
        pidfile, ready = tmp_path / "delayer.pid", tmp_path / "delayer.ready"
        pidfile.write_text(f"{sleeper.pid}\n")
        ready.write_text(f"{sleeper.pid}")
        local = nfqueue_undo_here(plan, tmp_path)

        assert host.run(plan.undo[0], text=local) == 0
        time.sleep(0.2)
        assert sleeper.poll() is None  # still running
        assert not pidfile.exists()
        assert not ready.exists()
        assert host.residue() == []
    finally:
        os.kill(sleeper.pid, signal.SIGKILL)
        sleeper.wait()


def test_nfqueue_undo_fails_when_the_delay_chain_survives(tmp_path: Path) -> None:
    plan = NetemDelay(150).plan(make_cluster(leader="n1", delay_method="nfqueue"))
    host = FakeHost(tmp_path, FAKE_IPT_LIE="-X")
    host.inject(plan.inject[2:])
    local = nfqueue_undo_here(plan, tmp_path)
    for _ in range(2):
        assert host.run(plan.undo[0], text=local) == 1
        assert host.residue() == [f"chain.{delay_chain(plan.data['token'])}"]


def test_every_undo_step_is_a_shell_script_ending_in_its_check() -> None:
    cluster = make_cluster(leader="n2")
    isolate, blackhole, partition = (
        Isolate().plan(cluster),
        Isolate(port=2379).plan(cluster),
        Partition().plan(cluster),
    )
    netem = NetemDelay(10).plan(cluster)
    nfq = NetemDelay(10).plan(make_cluster(delay_method="nfqueue"))
    plans: list[tuple[FaultPlan, str]] = [
        (isolate, chain_gone_check(chain_of(isolate))),
        (blackhole, chain_gone_check(chain_of(blackhole))),
        (partition, chain_gone_check(chain_of(partition))),
        (netem, netem_undo("eth0", qdisc_handle(netem.data["token"]))),
        (nfq, chain_gone_check(delay_chain(nfq.data["token"]))),
    ]
    for plan, check in plans:
        assert plan.undo
        for step in plan.undo:
            assert step.argv[:2] == ("sh", "-c")
            assert step.argv[2].endswith(check.split("; ")[-1])
            assert not step.argv[2].endswith("true")
