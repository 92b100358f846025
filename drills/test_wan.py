"""Multi-region drills over WAN links (issue #15): the lab's `regions` topology, one control
plane per region, the distance made real by kubedrill's delayer (`faults/wan.py`).

- etcd's time flags at distance: at each WAN delay, the seed's 100/1000 ms against what
  `kubedrill advise etcd` proposes from the measured round trip: leader changes per minute in
  steady state, write latency p50/p99, failover time after the leader is killed.
- a region goes dark and comes back: API writes through the surviving regions within the
  region RTO budget (the seed's < 5 min), the consistency workload throughout, the returning
  region's member caught up.

One-way delays: KUBEDRILL_WAN_DELAYS (ms, comma-separated; default 25, the CI variant;
`make drills-wan` runs 25,50,75), jitter 10 % of the delay.
"""

from __future__ import annotations

import os
import statistics
import time
import urllib.request

import pytest

from kubedrill.advise import peer_rtt
from kubedrill.advise.etcd_tuning import PairRtt, advise
from kubedrill.drill import Drill
from kubedrill.faults import KillComponent, Selector
from kubedrill.faults.etcd_flags import EtcdTimeFlags
from kubedrill.faults.wan import RegionOutage, WanLinks
from kubedrill.faults.wan_shape import LinkSpec
from kubedrill.probes import etcd_checks as check
from kubedrill.probes.etcd import EtcdClient
from kubedrill.probes.metrics import parse_samples

pytestmark = [pytest.mark.wan, pytest.mark.disruptive, pytest.mark.slow]

DELAYS = [float(d) for d in os.environ.get("KUBEDRILL_WAN_DELAYS", "25").split(",") if d]
JITTER = 0.1  # of the delay
STEADY_S = float(os.environ.get("KUBEDRILL_WAN_STEADY_S", "30"))  # steady-state window
ETCD_HEALTHY = "every etcd member answers and a quorum agrees on one leader"


def link(delay_ms: float) -> LinkSpec:
    return LinkSpec(delay_ms, round(delay_ms * JITTER, 1))


def leader_changes(drill: Drill) -> float:
    """The most leader changes any member has seen (each sees every change it was up for)."""
    seen = []
    for url in drill.cluster.etcd.metrics_urls.values():
        try:
            with urllib.request.urlopen(url, timeout=3) as resp:
                text = resp.read().decode()
        except OSError:
            continue
        samples = parse_samples(text, {"etcd_server_leader_changes_seen_total": ()})
        seen.append(samples.get(("etcd_server_leader_changes_seen_total", ()), 0.0))
    return max(seen, default=0.0)


def measure_flags(drill: Drill, etcd: EtcdClient, label: str) -> dict[str, float]:
    """Steady state for STEADY_S (leader changes, write latency), then kill the leader."""
    drill.steady_state(ETCD_HEALTHY, lambda: check.all_healthy(etcd), timeout=60)
    changes_before = leader_changes(drill)
    writer = drill.writer(interval=0.1, attempt_timeout=10.0)
    drill.hold(STEADY_S, lambda: None)
    ops = writer.stop()
    changes = leader_changes(drill) - changes_before
    latencies = sorted((op.complete - op.invoke) * 1000 for op in ops if op.ok)
    drill.expect(bool(latencies), f"writes were acknowledged with {label} flags", len(ops))
    before = etcd.leader_view()
    with drill.fault(KillComponent("etcd", Selector.leader()), concurrent=True):
        killed_at = time.monotonic()
        drill.wait_for(
            f"leader.elected.{label}",
            lambda: check.new_leader(etcd, before),
            budget="leader_election",
        )
        failover = time.monotonic() - killed_at
    drill.steady_state(ETCD_HEALTHY, lambda: check.all_healthy(etcd), timeout=60)
    row = {
        "leader_changes_per_min": changes * 60 / STEADY_S,
        "write_p50_ms": statistics.median(latencies),
        "write_p99_ms": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
        "writes": len(latencies),
        "failover_s": failover,
    }
    for key, value in row.items():
        drill.observe(f"{label}_{key}", round(value, 3))
    return row


@pytest.mark.no_consistency(
    "measures etcd's own write latency at distance; the workload would share the WAN"
)
@pytest.mark.parametrize("delay_ms", DELAYS, ids=[f"oneway{d:g}ms" for d in DELAYS])
def test_etcd_flags_at_distance(drill: Drill, etcd: EtcdClient, delay_ms: float) -> None:
    """At one WAN delay: the seed's flags, then the advised ones, measured the same way (once
    only when the advice is the seed's flags)."""
    drill.steady_state(ETCD_HEALTHY, lambda: check.all_healthy(etcd))
    with drill.fault(WanLinks(link(delay_ms))):
        seed = measure_flags(drill, etcd, "seed")
        no_pairs: list[PairRtt] = []
        pairs = drill.act(
            "measure the round trip between members (TCP handshakes from each member's host)",
            lambda: peer_rtt.probe(drill.cluster),
            dry=no_pairs,
        )
        if drill.dry_run:
            return
        advice = advise(pairs)
        drill.observe("rtt_mean_ms", round(advice.rtt_mean_ms, 1))
        drill.observe("advised_flags", " ".join(advice.flags()))
        drill.expect(
            advice.rtt_mean_ms >= 2 * delay_ms * 0.9,
            f"etcd measures at least the WAN's round trip ({2 * delay_ms:g} ms)",
            f"{advice.rtt_mean_ms:.1f} ms",
        )
        facts = drill.cluster.facts
        if (advice.heartbeat_ms, advice.election_ms) == (
            facts.heartbeat_interval_ms,
            facts.election_timeout_ms,
        ):
            # The advice is the flags the members run with: a second measurement would
            # restart every member to measure the same flags again (a minute of the drill).
            drill.observe("advised_is_seed", True)
            advised = seed
        else:
            flags = EtcdTimeFlags(advice.heartbeat_ms, advice.election_ms)
            with drill.fault(flags, concurrent=True):
                advised = measure_flags(drill, etcd, "advised")
    drill.observe("row", {"seed": seed, "advised": advised})


def test_region_outage(drill: Drill, etcd: EtcdClient) -> None:
    """The etcd leader's region goes dark, then comes back: writes through the other regions
    within the region RTO, the returning member caught up."""
    drill.steady_state(ETCD_HEALTHY, lambda: check.all_healthy(etcd))
    kube = drill.kube
    seq = iter(range(1_000_000))

    def api_write() -> bool:
        return kube.write_configmap("default", f"kubedrill-wan-{time.time_ns()}-{next(seq)}")

    with drill.fault(WanLinks(link(DELAYS[0]))):
        drill.steady_state("the API accepts writes", api_write, timeout=60)
        with drill.fault(RegionOutage(Selector.leader()), concurrent=True) as outage:
            drill.wait_for("api.write_accepted", api_write, budget="region_rto")
            drill.hold(10.0, lambda: None)  # the workload runs on the two regions left
        last = max(0, *(op.revision for op in drill.operations() if op.ok))
        with drill.verify():
            drill.within_budget("region_rto", "fault.injecting", "api.write_accepted")
            member = outage.victims[0]
            drill.wait_for(
                "region.caught_up",
                lambda: check.rejoined(etcd, member, last),
                budget="region_catch_up",
            )
            drill.within_budget("region_catch_up", "fault.healed", "region.caught_up")
            drill.verify_etcd_data()
