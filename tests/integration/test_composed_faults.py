"""Faults compose on a real lab: two partitions with rules on the same nodes, in place at once,
undone in both orders, by the runner and by `kubedrill heal` after a SIGKILL; and a delay (its
own chain and delayer) with a partition on the same node.

After the first undo the second partition must still be there, and still drop traffic (a real
TCP connect from one node's namespace to another's etcd peer port, and `iptables -S` in every
node's namespace); after the second nothing of kubedrill is left. The lab is its own (`kdcomp`),
so this module can run beside other labs.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from kubedrill.cluster import Cluster
from kubedrill.faults import NetemDelay, Partition, Selector
from kubedrill.faults.base import FaultPlan
from kubedrill.faults.network import delay_chain
from kubedrill.faults.runner import FaultSession
from kubedrill.ledger import Ledger
from kubedrill.polling import poll_until
from kubedrill.probes import etcd_checks
from kubedrill.probes.etcd import EtcdClient
from kubedrill.targets.lab import lab
from kubedrill.targets.lab.config import LabConfig, load_lab_config
from kubedrill.timeline import Timeline
from tests.integration.conftest import ROOT, leftovers, run_cli

LAB, SUBNET = "kdcomp", "10.213.72.0/24"
# Partition A cuts etcd-1 off, B cuts etcd-2 off: every node gets rules from both, and while
# both are in place etcd-3 is alone (declared quorum loss).
CUT_OFF = {"A": "etcd-1", "B": "etcd-2"}
PAIRS = [("etcd-1", "etcd-2"), ("etcd-1", "etcd-3"), ("etcd-2", "etcd-3")]


@pytest.fixture(scope="module")
def comp_lab() -> Iterator[tuple[Cluster, LabConfig]]:
    with tempfile.TemporaryDirectory(prefix="kdcomp-") as tmp:
        path = Path(tmp) / "lab.yaml"
        path.write_text(
            f"lab:\n  name: {LAB}\n  topology: etcd\n  members: 3\n  subnet: {SUBNET}\n"
        )
        config = load_lab_config(path)
    cluster = lab.up(config, progress=lambda _m: None)
    try:
        yield cluster, config
    finally:
        lab.down(config, progress=lambda _m: None)
        # Delayers and the host's own rules are machine-wide: other people's runs may own some.
        left = [x for x in leftovers(LAB) if not x.startswith(("delayer ", "host rule "))]
        assert not left, f"{LAB} left things behind: {left}"


@pytest.fixture
def ledger_dir() -> Iterator[Path]:
    """Not under tmp_path: concurrent pytest sessions of root prune each other's old
    /tmp/pytest-of-root/pytest-N directories, and an undo record must not vanish mid-test."""
    path = Path(tempfile.mkdtemp(prefix="kdcomp-ledger-"))
    try:
        yield path / "ledger"
    finally:
        shutil.rmtree(path, ignore_errors=True)


def reaches(cluster: Cluster, src: str, dst: str) -> bool:
    """A real TCP connect from `src`'s namespace to `dst`'s etcd peer port (a DROP times out)."""
    address = cluster.node(dst).address
    code = f"import socket; socket.create_connection(({address!r}, 2380), timeout=1.0).close()"
    return cluster.transport(src).run([sys.executable, "-c", code], timeout=10).ok


def links(cluster: Cluster) -> dict[tuple[str, str], bool]:
    return {(a, b): reaches(cluster, a, b) for a, b in PAIRS}


def expected_links(*in_place: str) -> dict[tuple[str, str], bool]:
    cut = {CUT_OFF[k] for k in in_place}
    return {(a, b): not ({a, b} & cut) for a, b in PAIRS}


def chains(cluster: Cluster) -> dict[str, list[str]]:
    """Every node's `iptables -S` lines that are kubedrill's, or anything not a policy."""
    found = {}
    for node in cluster.nodes:
        listing = cluster.transport(node).run(["iptables", "-w", "-S"]).stdout.splitlines()
        found[node.name] = [ln for ln in listing if not ln.startswith("-P ")]
    return found


def own_rules(cluster: Cluster, *plans: FaultPlan) -> dict[str, set[str]]:
    """What `iptables -S` shows on each node when exactly `plans` are in place."""
    want: dict[str, set[str]] = {n.name: set() for n in cluster.nodes}
    for plan in plans:
        chain = plan.data["chain"]
        for step in plan.inject:
            argv = step.argv[2:]  # iptables -w ...
            if argv[0] == "-N":
                want[step.transport.node].add(f"-N {chain}")
            else:  # -I INPUT 1 -j C  /  -A C ...
                rule = argv[1:2] + argv[3:] if argv[0] == "-I" else argv[1:]
                want[step.transport.node].add(" ".join(("-A", *rule)).replace("/32", ""))
    return want


def as_sets(found: dict[str, list[str]]) -> dict[str, set[str]]:
    return {n: {ln.replace("/32", "") for ln in lines} for n, lines in found.items()}


def assert_in_place(cluster: Cluster, plans: dict[str, FaultPlan], *in_place: str) -> None:
    assert as_sets(chains(cluster)) == own_rules(cluster, *(plans[k] for k in in_place))
    assert links(cluster) == expected_links(*in_place)


def wait_healthy(cluster: Cluster) -> None:
    etcd = EtcdClient(cluster.etcd)
    try:
        _, healthy = poll_until(lambda: etcd_checks.all_healthy(etcd), bool, timeout=60)
    finally:
        etcd.close()
    assert healthy, "the lab did not recover after both partitions were undone"


FAULTS = {"A": Partition(Selector.named("etcd-1")), "B": Partition(Selector.named("etcd-2"))}


@pytest.mark.parametrize("first", ["A", "B"])
def test_two_partitions_heal_in_either_order(
    comp_lab: tuple[Cluster, LabConfig], ledger_dir: Path, first: str
) -> None:
    cluster, _config = comp_lab
    wait_healthy(cluster)
    second = "B" if first == "A" else "A"
    ledger = Ledger(ledger_dir)
    session = FaultSession(cluster, Timeline(), ledger, log=lambda _m: None)
    held: dict[str, AbstractContextManager[FaultPlan]] = {
        "A": session.inject(FAULTS["A"]),
        "B": session.inject(FAULTS["B"], concurrent=True, allow_quorum_loss=True),
    }
    plans: dict[str, FaultPlan] = {}
    try:
        plans["A"] = held["A"].__enter__()
        plans["B"] = held["B"].__enter__()
        assert plans["A"].data["chain"] != plans["B"].data["chain"]
        assert_in_place(cluster, plans, "A", "B")

        held.pop(first).__exit__(None, None, None)
        assert_in_place(cluster, plans, second)
        assert [r.description for r in ledger.outstanding()] == [plans[second].description]

        held.pop(second).__exit__(None, None, None)
        assert_in_place(cluster, plans)
        assert chains(cluster) == {n.name: [] for n in cluster.nodes}
        assert ledger.outstanding() == []
    finally:
        for cm in held.values():  # a failed assertion still heals what is left
            cm.__exit__(None, None, None)
    wait_healthy(cluster)


CHILD = """
import sys, threading
from pathlib import Path
from kubedrill.faults import NetemDelay, Partition, Selector
from kubedrill.faults.runner import FaultSession
from kubedrill.ledger import Ledger
from kubedrill.targets.lab import lab
from kubedrill.timeline import Timeline

session = FaultSession(lab.load_cluster(Path(sys.argv[1])), Timeline(), Ledger(), log=print)
with session.inject(Partition(Selector.named("etcd-1"))) as a:
    with session.inject(
        Partition(Selector.named("etcd-2")), concurrent=True, allow_quorum_loss=True
    ) as b:
        print("INJECTED", a.data["chain"], b.data["chain"], flush=True)
        threading.Event().wait(120)  # until SIGKILL: neither `finally` runs
"""


@pytest.mark.parametrize("how", ["A then heal", "B then heal", "heal both"])
def test_two_records_left_by_sigkill_heal_in_any_order(
    comp_lab: tuple[Cluster, LabConfig], ledger_dir: Path, how: str
) -> None:
    cluster, config = comp_lab
    wait_healthy(cluster)
    env = {"KUBEDRILL_LEDGER_DIR": str(ledger_dir)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(config.state_dir)],
        cwd=ROOT,
        env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = ""
        while not line.startswith("INJECTED"):
            line = child.stdout.readline()
            assert line, child.stderr.read() if child.stderr else "the child died"
        chain = dict(zip("AB", line.split()[1:], strict=True))
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    ledger = Ledger(ledger_dir)
    records = {r.description: r for r in ledger.outstanding()}
    assert len(records) == 2, "SIGKILL should leave both undo records"
    assert links(cluster) == expected_links("A", "B")

    if how != "heal both":
        first = how[0]
        second = "B" if first == "A" else "A"
        node = CUT_OFF[first]
        (rec,) = [r for d, r in records.items() if d.startswith(f"partition {{{node}}}")]
        assert ledger.heal(rec).ok  # what `kubedrill heal` does per record
        assert links(cluster) == expected_links(second)
        for name, lines in chains(cluster).items():
            assert f"-N {chain[second]}" in lines, name
            assert not [ln for ln in lines if chain[first] in ln], name
    healed = run_cli("heal", env=env)
    assert healed.returncode == 0, healed.stdout + healed.stderr
    assert healed.stdout.count("healed ") == (2 if how == "heal both" else 1)
    assert not list(ledger_dir.glob("*.json")), "undo record left behind"
    assert chains(cluster) == {n.name: [] for n in cluster.nodes}
    assert links(cluster) == expected_links()
    wait_healthy(cluster)


def delayers(token: str) -> list[str]:
    """This fault's delayer processes on this machine (the lab's nodes share its pid space)."""
    found = subprocess.run(["pgrep", "-af", "kubedrill.faults.delayer"], capture_output=True)
    return [ln for ln in found.stdout.decode().splitlines() if f"-{token}.ready" in ln]


def delayer_gone(token: str) -> bool:
    """The undo signals the delayer; it releases what it holds and exits a moment later."""
    return poll_until(lambda: delayers(token), lambda d: not d, timeout=10, interval=0.1)[1]


@pytest.mark.parametrize("first", ["delay", "partition"])
def test_delay_and_partition_on_one_node_heal_in_either_order(
    comp_lab: tuple[Cluster, LabConfig], ledger_dir: Path, first: str
) -> None:
    """Another family on the same node: the delay's chain and delayer process are its own."""
    cluster, _config = comp_lab
    if cluster.facts.delay_method != "nfqueue":
        pytest.skip("netem on this kernel: a delay's qdisc is checked by the unit tests")
    wait_healthy(cluster)
    session = FaultSession(cluster, Timeline(), Ledger(ledger_dir), log=lambda _m: None)
    held: dict[str, AbstractContextManager[FaultPlan]] = {
        "delay": session.inject(NetemDelay(300, Selector.named("etcd-1"))),
        "partition": session.inject(FAULTS["A"], concurrent=True),
    }
    try:
        delay = held["delay"].__enter__()
        partition = held["partition"].__enter__()
        token, chain = delay.data["token"], delay_chain(delay.data["token"])
        assert len(delayers(token)) == 1
        assert f"-N {chain}" in chains(cluster)["etcd-1"]
        assert links(cluster) == expected_links("A")

        held.pop(first).__exit__(None, None, None)
        etcd_1 = chains(cluster)["etcd-1"]
        if first == "delay":
            assert delayer_gone(token)
            assert not [ln for ln in etcd_1 if "DELAY" in ln]
            assert f"-N {partition.data['chain']}" in etcd_1
            assert links(cluster) == expected_links("A")
        else:
            assert len(delayers(token)) == 1
            assert not [ln for ln in etcd_1 if partition.data["chain"] in ln]
            assert f"-N {chain}" in etcd_1
            assert links(cluster) == expected_links()

        for cm in held.values():
            cm.__exit__(None, None, None)
        held.clear()
        assert chains(cluster) == {n.name: [] for n in cluster.nodes}
        assert delayer_gone(token)
    finally:
        for cm in held.values():
            cm.__exit__(None, None, None)
    wait_healthy(cluster)
