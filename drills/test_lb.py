"""Load balancer pair drills (issue #14): the keepalived pair in front of the apiservers loses
its active host in three ways, and the VIP, with the API behind it, must move to the standby
within `detect`. Each counts the requests that failed through the VIP meanwhile, by reason.

Run on a lab with a pair (`make drill-lb`: fixtures/labs/lb-pair.yaml with HAProxy and
lb-nginx.yaml with nginx); skipped with the reason on a single-LB lab and on kind/SSH."""

from __future__ import annotations

from collections import Counter

import pytest

from kubedrill.drill import Drill
from kubedrill.faults import CrashHost, Isolate, Selector, StopComponent
from kubedrill.probes.kube import KubeProbes
from kubedrill.probes.vip import LbPair

pytestmark = [pytest.mark.lb, pytest.mark.disruptive]

STEADY = "the API answers through the VIP, one LB host holds it, both run the proxy and keepalived"


def pair_of(drill: Drill) -> LbPair:
    found = LbPair.of(drill.cluster)
    if isinstance(found, str):
        pytest.skip(found)
    return found


def fail_over(
    drill: Drill, kube: KubeProbes, pair: LbPair, active: str, since: str = "fault.injecting"
) -> None:
    """While the fault holds: only the standby holds the VIP, and the API answers through it,
    both within `detect` of the fault (`since`: its start, or for a fault whose inject takes
    long and acts only once whole, its end)."""
    standby = pair.other(active)
    drill.wait_for("vip.moved", lambda: pair.held_only_by(standby), budget="detect", to=standby)
    drill.wait_for("api.ready", kube.ready, budget="detect")
    drill.within_budget("detect", since, "vip.moved", name="vip_failover")
    drill.within_budget("detect", since, "api.ready", name="api_failover")
    drill.observe(
        "inject_s", round(drill.offset("fault.injected") - drill.offset("fault.injecting"), 3)
    )
    drill.hold(2.0, lambda: None if pair.held_only_by(standby) else "the VIP moved again")


def verify(drill: Drill, pair: LbPair) -> None:
    """After heal: the pair is whole again (the healed host a backup: nopreempt), the API's
    longest run of failed requests stayed under `detect`; failures counted by reason."""
    with drill.verify():
        drill.wait_for("lb.pair_whole", pair.whole, budget="recovery")
        failed = Counter(op.error for op in drill.api_reader_ops() if not op.ok)
        drill.observe("api_failed_by_reason", dict(failed))
        drill.assert_api_available()


def start(drill: Drill, kube: KubeProbes) -> tuple[LbPair, str]:
    pair = pair_of(drill)
    drill.steady_state(STEADY, lambda: kube.ready() and pair.whole())
    active = pair.holders()[0]
    drill.observe("lb_kind", pair.proxy)
    drill.observe("vip_before", active)
    drill.api_reader()
    return pair, active


def test_crash_active_lb_host(drill: Drill, kube: KubeProbes) -> None:
    """Every process on the LB host holding the VIP dies at once (SIGKILL: keepalived sends no
    goodbye), held down until heal. The standby stops hearing adverts and takes the VIP."""
    pair, active = start(drill, kube)
    with drill.fault(CrashHost("keepalived", Selector.leader())):
        fail_over(drill, kube, pair, active)
    verify(drill, pair)


def test_stop_proxy_keepalived_stays(drill: Drill, kube: KubeProbes) -> None:
    """Only the proxy stops on the active host; keepalived keeps running there. Its health
    script (the seed's check-apiserver.sh) fails, and keepalived gives the VIP up."""
    pair, active = start(drill, kube)
    with drill.fault(StopComponent(pair.proxy, Selector.leader())):
        fail_over(drill, kube, pair, active)
    verify(drill, pair)


def test_isolate_active_lb(drill: Drill, kube: KubeProbes) -> None:
    """The active LB host is cut off from every other lab host (its peer and the apiservers):
    the standby takes the VIP after missed adverts, the isolated host's health script fails
    (no backend answers) and it gives the VIP up, so the split brain ends."""
    pair, active = start(drill, kube)
    with drill.fault(Isolate(Selector.leader(), component="keepalived")):
        # Timed from the end of the inject: the grudge's rules go on every lab host one
        # iptables call at a time (31 s under a load of 50 here), and the host is cut off from
        # its peer and the apiservers only once they all are.
        fail_over(drill, kube, pair, active, since="fault.injected")
    verify(drill, pair)
