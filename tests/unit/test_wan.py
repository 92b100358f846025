"""The WAN's pure parts: the delayer's schedule, the links and routes between regions, the
region outage's shape, the WanLinks plan, the regions topology and etcd's tuning advice."""

from __future__ import annotations

import dataclasses
import ipaddress
import random
import struct
import subprocess
from pathlib import Path

import pytest

from kubedrill.advise.etcd_tuning import PairRtt, advise, pair_rtts
from kubedrill.advise.peer_rtt import parse
from kubedrill.cluster import Cluster, ClusterFacts, EtcdAccess, Node
from kubedrill.errors import ConfigError, FaultError
from kubedrill.faults.delay_schedule import LinkDelay, Schedule, destination
from kubedrill.faults.etcd_flags import EtcdTimeFlags
from kubedrill.faults.shape import Selector
from kubedrill.faults.wan import RegionOutage, WanLinks, outage_grudge
from kubedrill.faults.wan_shape import LinkSpec, parse_link, wan_links, wan_routes
from kubedrill.targets.lab.config import LabConfig, load_lab_config
from kubedrill.targets.lab.control import LabControl
from kubedrill.targets.lab.overrides import read_flags
from kubedrill.targets.lab.topology import hosts
from kubedrill.transport import TransportSpec
from tests.unit.test_network_rules import StubControl

# -- the delayer's schedule ----------------------------------------------------------------

A = ipaddress.IPv4Address("10.0.0.2")
B = ipaddress.IPv4Address("10.0.0.3")


def test_link_delay_parses_and_refuses() -> None:
    link = LinkDelay.parse("10.0.0.2/32=25:5")
    assert (link.delay_ms, link.jitter_ms) == (25.0, 5.0)
    for bad in ("10.0.0.2/32", "nonsense=5", "10.0.0.2/32=5:6", "10.0.0.2/32=-1"):
        with pytest.raises(ConfigError):
            LinkDelay.parse(bad)


def test_destination_reads_the_ipv4_header() -> None:
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20, 0, 0, 64, 6, 0, A.packed, B.packed)
    assert destination(header) == B
    assert destination(b"\x60" + bytes(39)) is None  # IPv6: no link, the default applies
    assert destination(b"") is None


def test_schedule_delays_per_destination() -> None:
    s: Schedule[str] = Schedule(
        [LinkDelay.parse("10.0.0.2/32=25"), LinkDelay.parse("10.0.0.3/32=75")]
    )
    assert s.hold("to-b", B, 0.0) == pytest.approx(0.075)
    assert s.hold("to-a", A, 0.0) == pytest.approx(0.025)
    assert s.due(0.024) == []
    assert s.due(0.030) == ["to-a"]
    assert s.next_release() == pytest.approx(0.075)
    assert s.due(0.1) == ["to-b"]
    # No link and no default: released at once.
    assert s.hold("other", ipaddress.IPv4Address("10.9.9.9"), 1.0) == 1.0


def test_jitter_never_reorders_one_destination() -> None:
    s: Schedule[int] = Schedule([LinkDelay.parse("10.0.0.2/32=50:40")], rng=random.Random(7))
    releases = [s.hold(i, A, i * 0.001) for i in range(500)]
    assert releases == sorted(releases)
    assert s.due(10.0) == list(range(500))
    delays = [r - i * 0.001 for i, r in enumerate(releases)]
    assert min(delays) >= 0.010 - 1e-9 and max(delays) <= 0.090 + 1e-9


def test_drain_releases_everything_in_order() -> None:
    s: Schedule[str] = Schedule([], LinkDelay.parse("0.0.0.0/0=100"))
    s.hold("x", A, 0.0)
    s.hold("y", B, 0.01)
    assert s.drain() == ["x", "y"] and len(s) == 0


# -- links, routes, outage -------------------------------------------------------------------

REGIONS = ["r1", "r2", "r3"]


def test_links_default_and_overrides() -> None:
    links = wan_links(REGIONS, LinkSpec(25), ["r1-r3=50:5:0.5", "r3-r2=75"])
    assert links[frozenset({"r1", "r2"})] == LinkSpec(25)
    assert links[frozenset({"r1", "r3"})] == LinkSpec(50, 5, 0.5)
    assert links[frozenset({"r2", "r3"})].rtt_ms == 150


@pytest.mark.parametrize(
    "bad", ["r1-r1=5", "r1-r9=5", "r1r2=5", "r1-r2", "r1-r2=x", "r1-r2=5:1:2:3", "r1-r2=5:9"]
)
def test_bad_links_are_refused(bad: str) -> None:
    with pytest.raises(ConfigError):
        parse_link(bad, REGIONS)


def test_bad_link_values_are_refused() -> None:
    for args in ((0.0,), (10.0, 11.0), (10.0, 0.0, 100.0)):
        with pytest.raises(ConfigError):
            LinkSpec(*args)


REGION_OF: dict[str, str | None] = {
    "control-1": "r1",
    "control-2": "r2",
    "control-3": "r3",
    "lb": None,
    "workers": None,
}
ADDRS = {h: f"10.1.0.{11 + i}" for i, h in enumerate(REGION_OF)}


def test_routes_cross_regions_only() -> None:
    links = wan_links(REGIONS, LinkSpec(25), ["r1-r3=50"])
    routes = wan_routes(REGION_OF, ADDRS, links)
    assert sorted(routes) == ["control-1", "control-2", "control-3"]  # lb/workers: no region
    to = {r.peer: r.link.delay_ms for r in routes["control-1"]}
    assert to == {"control-2": 25, "control-3": 50}
    assert {r.address for r in routes["control-3"]} == {ADDRS["control-1"], ADDRS["control-2"]}


def test_outage_cuts_the_region_from_everyone() -> None:
    grudge = outage_grudge("r2", REGION_OF)
    assert grudge["control-2"] == {"control-1", "control-3", "lb", "workers"}
    assert grudge["lb"] == {"control-2"}
    with pytest.raises(FaultError):
        outage_grudge("r9", REGION_OF)


# -- plans against a small regions cluster ---------------------------------------------------


def regions_cluster(leader: str = "control-2", with_regions: bool = True) -> Cluster:
    nodes = tuple(
        Node(
            h,
            frozenset({"etcd", "control-plane"}) if h.startswith("control") else frozenset({"lb"}),
            ADDRS[h],
            TransportSpec("netns", h, {"netns": f"kd-t-{h}"}),
            region=r if with_regions else None,
        )
        for h, r in REGION_OF.items()
        if h != "workers"
    )
    members = [n.name for n in nodes if "etcd" in n.roles]
    cluster = Cluster(
        name="lab/t",
        target="lab",
        nodes=nodes,
        etcd=EtcdAccess({n: f"https://{ADDRS[n]}:2379" for n in members}, None),
        control=StubControl(),
        observer=TransportSpec("local", "kubedrill"),
        facts=ClusterFacts("lab", "regions", 3, delay_method="nfqueue"),
    )
    cluster.leader_locators["etcd"] = lambda: leader
    return cluster


def test_wan_plan_runs_a_delayer_per_regional_host_and_undoes_it() -> None:
    plan = WanLinks(LinkSpec(25, 5, 1.0), ("r1-r3=50",)).plan(regions_cluster())
    assert plan.victims == ("control-1", "control-2", "control-3")
    starts = [s for s in plan.inject if "kubedrill.faults.delayer" in " ".join(s.argv)]
    assert len(starts) == 3
    c1 = next(" ".join(s.argv) for s in starts if s.transport.node == "control-1")
    assert f"--link {ADDRS['control-3']}/32=50:0" in c1
    assert f"--link {ADDRS['control-2']}/32=25:5" in c1
    assert ADDRS["lb"] not in c1
    drops = [s.argv for s in plan.inject if "statistic" in s.argv]
    assert len(drops) == 4  # the 1 % links only (r1-r2, r2-r3), one rule per peer and host
    assert all("0.010000" in argv for argv in drops)
    # The first inject step starts the delayer before any packet is queued to it.
    assert "kubedrill.faults.delayer" in " ".join(plan.inject[0].argv)
    undo = " ".join(" ".join(s.argv) for s in plan.undo)
    chain = plan.inject[2].argv[-1]
    assert (
        f"iptables -w -D INPUT -j {chain}" in undo and f"iptables -w -D OUTPUT -j {chain}" in undo
    )
    assert undo.count("kill $p") == 3


def test_wan_needs_regions() -> None:
    flat = regions_cluster(with_regions=False)
    assert "no regions" in (WanLinks(LinkSpec(25)).available(flat) or "")
    with pytest.raises(FaultError):
        WanLinks(LinkSpec(25)).plan(flat)
    assert RegionOutage().available(flat) is not None


def test_region_outage_picks_the_leaders_region() -> None:
    plan = RegionOutage(Selector.leader()).plan(regions_cluster(leader="control-2"))
    assert plan.victims == ("control-2",)
    assert plan.data["region"] == "r2"
    assert plan.takes_down == {("control-2", "etcd")}  # quorum kept: two regions of three
    follower = RegionOutage(Selector.follower()).plan(regions_cluster(leader="control-2"))
    assert follower.data["region"] != "r2"


# -- the regions topology --------------------------------------------------------------------


def test_regions_topology_places_one_control_plane_per_region() -> None:
    layout = {h.name: h for h in hosts(LabConfig(topology="regions"))}
    assert [layout[f"control-{i}"].region for i in (1, 2, 3)] == ["r1", "r2", "r3"]
    assert layout["lb"].region is None and layout["workers"].region is None
    assert all(h.region is None for h in hosts(LabConfig(topology="stacked")))


def test_regions_topology_is_accepted() -> None:
    assert load_lab_config(topology="regions").topology == "regions"


# -- etcd's tuning advice --------------------------------------------------------------------


def pair(mean_ms: float, p99_ms: float | None = None, peer: str = "b") -> PairRtt:
    return PairRtt("a", peer, mean_ms / 1000, (p99_ms or mean_ms) / 1000, 10)


@pytest.mark.parametrize(
    ("rtt_ms", "heartbeat", "election"),
    [(0.2, 100, 1000), (50, 100, 1000), (101, 110, 1100), (150, 150, 1500), (400, 400, 4000)],
)
def test_advice_follows_the_tuning_guide(rtt_ms: float, heartbeat: int, election: int) -> None:
    advice = advise([pair(rtt_ms / 3, peer="near"), pair(rtt_ms, peer="far")])
    assert (advice.heartbeat_ms, advice.election_ms) == (heartbeat, election)
    assert advice.slowest == "a -> far"
    assert advice.election_ms >= 5 * advice.heartbeat_ms


def test_advice_caps_the_election_timeout() -> None:
    advice = advise([pair(6000)])
    assert advice.election_ms == 50_000
    assert any("too far apart" in r for r in advice.reasons)


def test_no_measurement_no_advice() -> None:
    with pytest.raises(ValueError, match="no round trip"):
        advise([PairRtt("a", "b", 0, 0, 0)])


METRICS = """\
# TYPE etcd_network_peer_round_trip_time_seconds histogram
etcd_network_peer_round_trip_time_seconds_bucket{To="8e9e05c52164694d",le="0.0512"} 0
etcd_network_peer_round_trip_time_seconds_bucket{To="8e9e05c52164694d",le="0.1024"} {low}
etcd_network_peer_round_trip_time_seconds_bucket{To="8e9e05c52164694d",le="0.2048"} {n}
etcd_network_peer_round_trip_time_seconds_bucket{To="8e9e05c52164694d",le="+Inf"} {n}
etcd_network_peer_round_trip_time_seconds_sum{To="8e9e05c52164694d"} {total}
etcd_network_peer_round_trip_time_seconds_count{To="8e9e05c52164694d"} {n}
"""


def metrics(low: int, n: int, total: float) -> str:
    return METRICS.replace("{low}", str(low)).replace("{n}", str(n)).replace("{total}", str(total))


def test_peer_histograms_between_two_scrapes() -> None:
    first = parse(metrics(10, 10, 0.5))  # 10 probes at ~50 ms before the WAN
    second = parse(metrics(10, 20, 2.0))  # then 10 more at 150 ms
    [rtt] = pair_rtts(
        "control-1",
        first.buckets,
        second.buckets,
        (first.sums, second.sums),
        (first.counts, second.counts),
    )
    assert rtt.peer == "8e9e05c52164694d" and rtt.samples == 10
    assert rtt.mean_s == pytest.approx(0.150)
    assert 0.1024 < rtt.p99_s <= 0.2048
    [idle] = pair_rtts(
        "control-1", second.buckets, second.buckets, (second.sums,) * 2, (second.counts,) * 2
    )
    assert idle.samples == 0


# -- etcd's flags restarted with an override -------------------------------------------------


def lab_cluster(state_dir: Path) -> Cluster:
    cluster = regions_cluster()
    return dataclasses.replace(cluster, control=LabControl(state_dir))


def test_etcd_flags_refuses_a_ratio_etcd_refuses(tmp_path: Path) -> None:
    with pytest.raises(FaultError, match="5x"):
        EtcdTimeFlags(200, 900).plan(lab_cluster(tmp_path))
    assert EtcdTimeFlags(100, 1000).available(regions_cluster()) is not None  # not a lab


def test_etcd_flags_override_and_undo_run(tmp_path: Path) -> None:
    """The inject writes each member's override (no member runs here: nothing to restart);
    the undo removes them and its own check passes; run again, it is a no-op that passes."""
    plan = EtcdTimeFlags(150, 1500).plan(lab_cluster(tmp_path))
    for step in plan.inject:
        subprocess.run(step.argv, check=True)
    for member in ("control-1", "control-2", "control-3"):
        flags = read_flags(tmp_path, f"{member}__etcd")
        assert flags == {"--heartbeat-interval": "150", "--election-timeout": "1500"}
    with pytest.raises(FaultError, match="already has a flag override"):
        EtcdTimeFlags(150, 1500).plan(lab_cluster(tmp_path))
    for _ in range(2):
        [undo] = plan.undo
        assert subprocess.run(undo.argv, check=False).returncode == 0
    assert not (tmp_path / "overrides").exists() or not any((tmp_path / "overrides").iterdir())
