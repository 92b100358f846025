"""Faults compose: several in place at once, on the same node or not, each undo removing exactly
its own rules, and the runner and ledger healing them in any order.

The network plans run against the stateful iptables/tc stand-ins of test_network_rules (never
the real tools); the runner runs harmless local commands on files in tmp_path.
"""

from __future__ import annotations

import itertools
from collections.abc import Generator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from kubedrill.cluster import FaultSteps, Node
from kubedrill.errors import GuardError
from kubedrill.faults import network
from kubedrill.faults.base import FaultPlan
from kubedrill.faults.network import Isolate, NetemDelay, Partition, delay_chain, drop_chain
from kubedrill.faults.process import KillComponent, PauseComponent, StopComponent
from kubedrill.faults.runner import FaultSession, check_claims
from kubedrill.faults.shape import Selector
from kubedrill.ledger import Ledger
from kubedrill.timeline import Timeline
from kubedrill.transport import TransportSpec
from kubedrill.transport.step import Step
from tests.unit.test_network_rules import FakeHost, StubControl, chain_of, make_cluster, spec

LOCAL = TransportSpec("local", "kubedrill")
ORDERS = [("first", "second"), ("second", "first")]


@pytest.fixture
def tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fixed tokens, one per plan, so that two plans differ by construction in every test."""
    fixed = (f"{n:04x}abcd" for n in itertools.count(0x1A2B))
    monkeypatch.setattr(network, "new_token", lambda: next(fixed))


def on(plan: FaultPlan, node: str) -> list[Step]:
    return [s for s in plan.inject + plan.undo if s.transport.node == node]


def inject_on(host: FakeHost, plan: FaultPlan, node: str) -> None:
    host.inject([s for s in plan.inject if s.transport.node == node])


def undo_on(host: FakeHost, plan: FaultPlan, node: str) -> list[int]:
    return [host.run(s) for s in plan.undo if s.transport.node == node]


def files(chain: str, *hooks: str) -> list[str]:
    return [f"chain.{chain}", *(f"hooks.{h}.{chain}" for h in hooks), f"rules.{chain}"]


# --- every plan names its own kernel objects --------------------------------------------------


def test_two_plans_of_one_fault_name_different_chains() -> None:
    cluster = make_cluster(leader="n2")
    a, b = Partition().plan(cluster), Partition().plan(cluster)
    assert chain_of(a) != chain_of(b)
    for plan, other in ((a, b), (b, a)):
        text = "\n".join(" ".join(s.argv) for s in plan.inject + plan.undo)
        assert chain_of(other) not in text
        # No step names the old shared chain on its own.
        assert " KUBEDRILL " not in text and not text.endswith(" KUBEDRILL")


def test_two_delays_name_different_chains_queues_and_files() -> None:
    cluster = make_cluster(leader="n1", delay_method="nfqueue")
    a, b = NetemDelay(100).plan(cluster), NetemDelay(300).plan(cluster)
    ta, tb = a.data["token"], b.data["token"]
    assert ta != tb
    text_a = "\n".join(" ".join(s.argv) for s in a.inject + a.undo)
    assert tb not in text_a
    assert f"--queue-num {int(ta[:4], 16)} " in text_a
    assert delay_chain(ta) in text_a


# --- two faults on one node, undone in both orders -------------------------------------------


@pytest.mark.usefixtures("tokens")
@pytest.mark.parametrize("order", ORDERS)
def test_two_partitions_on_one_node_undo_only_their_own(
    tmp_path: Path, order: tuple[str, str]
) -> None:
    cluster = make_cluster(leader="n2")
    plans = {
        "first": Partition(Selector.named("n2")).plan(cluster),
        "second": Isolate(Selector.named("n2"), port=2380).plan(cluster),
    }
    chains = {k: chain_of(p) for k, p in plans.items()}
    host = FakeHost(tmp_path)  # n2's netfilter, where both faults put rules
    for plan in plans.values():
        inject_on(host, plan, "n2")
    assert host.residue() == sorted(
        files(chains["first"], "INPUT", "OUTPUT") + files(chains["second"], "INPUT", "OUTPUT")
    )
    kept = (host.state / f"rules.{chains[order[1]]}").read_text()

    assert undo_on(host, plans[order[0]], "n2") == [0]
    # The other fault is untouched: its chain, its hooks, its rules, byte for byte.
    assert host.residue() == files(chains[order[1]], "INPUT", "OUTPUT")
    assert (host.state / f"rules.{chains[order[1]]}").read_text() == kept
    assert undo_on(host, plans[order[0]], "n2") == [0]  # a replay still leaves it alone

    assert undo_on(host, plans[order[1]], "n2") == [0]
    assert host.residue() == []


@pytest.mark.usefixtures("tokens")
@pytest.mark.parametrize("order", ORDERS)
def test_isolate_and_nfqueue_delay_on_one_node(tmp_path: Path, order: tuple[str, str]) -> None:
    cluster = make_cluster(leader="n1", delay_method="nfqueue")
    isolate = Isolate(Selector.named("n1"), port=2379).plan(cluster)
    delay = NetemDelay(200, Selector.named("n1")).plan(cluster)
    host = FakeHost(tmp_path)
    inject_on(host, isolate, "n1")
    host.inject(delay.inject[2:])  # the rules; starting a delayer needs root and NFQUEUE
    left = {
        "first": files(delay_chain(delay.data["token"]), "OUTPUT"),
        "second": files(chain_of(isolate), "INPUT", "OUTPUT"),
    }
    # The delayer's files are moved into tmp_path so nothing under /run is touched.
    base = f"/run/kubedrill-delayer-kd-t-n1-{delay.data['token']}"
    delay_undo = delay.undo[0].argv[2].replace(base, str(tmp_path / "delayer"))
    undo = {
        "first": lambda: undo_on(host, isolate, "n1"),
        "second": lambda: [host.run(delay.undo[0], text=delay_undo)],
    }
    assert undo[order[0]]() == [0]
    assert host.residue() == left[order[0]]
    assert undo[order[1]]() == [0]
    assert host.residue() == []


@pytest.mark.usefixtures("tokens")
def test_a_second_netem_on_one_device_fails_and_its_undo_spares_the_first(
    tmp_path: Path,
) -> None:
    cluster = make_cluster(leader="n1")
    first, second = NetemDelay(100).plan(cluster), NetemDelay(300).plan(cluster)
    assert first.claims == second.claims  # so the runner refuses the pair up front
    host = FakeHost(tmp_path)
    host.inject(first.inject)
    kept = (host.state / "qdisc.eth0").read_text()
    # Were it tried anyway (another run), the kernel refuses the second root qdisc ...
    assert host.run(second.inject[0]) != 0
    # ... and the runner's clean-up of the failed inject leaves the first's qdisc in place.
    assert [host.run(s) for s in second.undo] == [0]
    assert (host.state / "qdisc.eth0").read_text() == kept
    assert [host.run(s) for s in first.undo] == [0]
    assert host.residue() == []


LEGACY_UNDO = (  # as `kubedrill` wrote it into undo records before faults composed
    "while iptables -w -D INPUT -j KUBEDRILL 2>/dev/null; do :; done; "
    "while iptables -w -D OUTPUT -j KUBEDRILL 2>/dev/null; do :; done; "
    "iptables -w -F KUBEDRILL 2>/dev/null; iptables -w -X KUBEDRILL 2>/dev/null; "
    "! iptables -w -S 2>/dev/null | grep -qE -- '(-N|-j) KUBEDRILL( |$)'"
)


@pytest.mark.usefixtures("tokens")
def test_an_old_record_heals_the_shared_chain_and_spares_a_new_fault(tmp_path: Path) -> None:
    host = FakeHost(tmp_path)
    old = [
        Step(spec("n1"), ("iptables", "-w", *argv))
        for argv in (
            ("-N", "KUBEDRILL"),
            ("-I", "INPUT", "1", "-j", "KUBEDRILL"),
            ("-A", "KUBEDRILL", "-s", "10.9.0.12", "-j", "DROP"),
        )
    ]
    host.inject(old)
    new = Isolate(Selector.named("n1")).plan(make_cluster())
    inject_on(host, new, "n1")
    assert host.run(Step(spec("n1"), ("sh", "-c", LEGACY_UNDO))) == 0
    assert host.residue() == files(chain_of(new), "INPUT", "OUTPUT")
    assert undo_on(host, new, "n1") == [0]
    assert host.residue() == []


def test_chain_names_fit_iptables() -> None:
    assert len(delay_chain("ffffffff")) <= network.CHAIN_NAME_MAX
    assert drop_chain("0123abcd") == "KUBEDRILL-0123abcd"


# --- what cannot be split is claimed, and the runner refuses a second claim ------------------


class HoldingControl(StubControl):
    """Stop/pause/kill as a lab supervisor would plan them (here: no commands at all)."""

    def stop(self, node: Node, component: str) -> FaultSteps:
        return FaultSteps((), ())

    def pause(self, node: Node, component: str) -> FaultSteps:
        return FaultSteps((), ())

    def kill(self, node: Node, component: str) -> FaultSteps:
        return FaultSteps((), ())


def test_stop_and_pause_claim_the_component_kill_does_not() -> None:
    cluster = make_cluster(leader="n2")
    cluster.control = HoldingControl()
    stop = StopComponent("etcd", Selector.named("n1")).plan(cluster)
    pause = PauseComponent("etcd", Selector.named("n1", "n3")).plan(cluster)
    kill = KillComponent("etcd", Selector.named("n1")).plan(cluster)
    assert stop.claims == frozenset({"etcd on n1"})
    assert pause.claims == frozenset({"etcd on n1", "etcd on n3"})
    assert kill.claims == frozenset()
    with pytest.raises(GuardError, match=r"already holds etcd on n1, and undoing either"):
        check_claims(pause, [kill, stop])
    check_claims(kill, [stop])
    check_claims(PauseComponent("etcd", Selector.named("n3")).plan(cluster), [stop])


def test_two_netem_delays_on_one_device_are_refused_by_the_runner(tmp_path: Path) -> None:
    cluster = make_cluster(leader="n1")
    session = FaultSession(cluster, Timeline(), Ledger(tmp_path / "ledger"), log=lambda _m: None)
    first = NetemDelay(100).plan(cluster)
    session.active.append(first)  # as if injected
    refused = session.inject(NetemDelay(300), concurrent=True)
    with pytest.raises(GuardError, match="the root qdisc of eth0 on n1"):
        refused.__enter__()
    assert not (tmp_path / "ledger").exists()  # refused before any record was written


# --- the runner: inject A, inject B, heal in either order ------------------------------------


def marker_plan(tmp_path: Path, name: str, *, takes_down: Sequence[str] = ()) -> FaultPlan:
    """A plan whose fault is a file: inject creates it, undo removes it and checks it is gone."""
    path = tmp_path / f"{name}.fault"
    return FaultPlan(
        name,
        ("n1",),
        f"{name} on n1",
        inject=(Step(LOCAL, ("touch", str(path))),),
        undo=(Step(LOCAL, ("sh", "-c", f"rm -f {path}; [ ! -e {path} ]")),),
        takes_down=frozenset((n, "etcd") for n in takes_down),
    )


@pytest.mark.parametrize("order", ORDERS)
def test_session_heals_concurrent_faults_in_either_order(
    tmp_path: Path, order: tuple[str, str]
) -> None:
    ledger = Ledger(tmp_path / "ledger")
    session = FaultSession(make_cluster(), Timeline(), ledger, log=lambda _m: None)
    plans = {"first": marker_plan(tmp_path, "first"), "second": marker_plan(tmp_path, "second")}
    cms: dict[str, AbstractContextManager[FaultPlan]] = {
        "first": session.inject(plans["first"]),
        "second": session.inject(plans["second"], concurrent=True),
    }
    for key in ("first", "second"):
        assert cms[key].__enter__() is plans[key]
    assert session.active == [plans["first"], plans["second"]]
    assert len(ledger.outstanding()) == 2

    cms[order[0]].__exit__(None, None, None)
    assert session.active == [plans[order[1]]]
    assert not (tmp_path / f"{order[0]}.fault").exists()
    assert (tmp_path / f"{order[1]}.fault").exists()
    assert [r.fault for r in ledger.outstanding()] == [order[1]]

    cms[order[1]].__exit__(None, None, None)
    assert session.active == []
    assert not list(tmp_path.glob("*.fault"))
    assert ledger.outstanding() == []


def test_session_heals_the_right_one_of_two_equal_plans(tmp_path: Path) -> None:
    """Equal plans are still two faults: healing one leaves the other active (by identity)."""
    ledger = Ledger(tmp_path / "ledger")
    session = FaultSession(make_cluster(), Timeline(), ledger, log=lambda _m: None)
    a, b = marker_plan(tmp_path, "same"), marker_plan(tmp_path, "same")
    assert a == b
    outer, inner = session.inject(a), session.inject(b, concurrent=True)
    outer.__enter__()
    inner.__enter__()
    outer.__exit__(None, None, None)
    assert len(session.active) == 1 and session.active[0] is b
    inner.__exit__(None, None, None)
    assert session.active == []


def test_session_quorum_guard_counts_every_active_fault(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger")
    session = FaultSession(make_cluster(), Timeline(), ledger, log=lambda _m: None)
    first = marker_plan(tmp_path, "a", takes_down=["n1"])
    second = marker_plan(tmp_path, "b", takes_down=["n3"])

    def both(allow: bool) -> Generator[None]:
        with (
            session.inject(first),
            session.inject(second, concurrent=True, allow_quorum_loss=allow),
        ):
            yield

    with pytest.raises(GuardError, match="lose quorum"):
        next(both(False))
    assert not list(tmp_path.glob("*.fault"))  # the first healed on the way out
    gen = both(True)
    next(gen)
    assert sorted(p.name for p in tmp_path.glob("*.fault")) == ["a.fault", "b.fault"]
    gen.close()
    assert not list(tmp_path.glob("*.fault"))
    assert ledger.outstanding() == []
