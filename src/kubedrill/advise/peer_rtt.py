"""The round trip between etcd members as etcd measures it: its prober's histogram
`etcd_network_peer_round_trip_time_seconds` (per peer, label `To`, the peer's member ID in hex),
read from every member's /metrics twice, a window apart."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass

from kubedrill.advise.etcd_tuning import PairRtt, pair_rtts
from kubedrill.cluster import Cluster
from kubedrill.errors import TargetError
from kubedrill.probes.etcd import EtcdClient
from kubedrill.probes.metrics import parse_samples

METRIC = "etcd_network_peer_round_trip_time_seconds"
KEEP = {
    f"{METRIC}_bucket": ("To", "le"),
    f"{METRIC}_sum": ("To",),
    f"{METRIC}_count": ("To",),
}


@dataclass(frozen=True)
class PeerHistograms:
    """One member's scrape: per peer ID, cumulative buckets, sum and count."""

    buckets: Mapping[str, Mapping[float, float]]
    sums: Mapping[str, float]
    counts: Mapping[str, float]


def parse(text: str) -> PeerHistograms:
    buckets: dict[str, dict[float, float]] = {}
    sums: dict[str, float] = {}
    counts: dict[str, float] = {}
    for (name, labels), value in parse_samples(text, KEEP).items():
        tags = dict(labels)
        peer = tags.get("To", "")
        if name.endswith("_bucket"):
            buckets.setdefault(peer, {})[float(tags["le"])] = value
        elif name.endswith("_sum"):
            sums[peer] = value
        else:
            counts[peer] = value
    return PeerHistograms(buckets, sums, counts)


def scrape(url: str, timeout: float = 3.0) -> PeerHistograms | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return parse(resp.read().decode(errors="replace"))
    except (urllib.error.URLError, OSError):
        return None


def measure(cluster: Cluster, window_s: float) -> list[PairRtt]:
    """Every member's round trips to its peers over `window_s` seconds (peer IDs resolved to
    member names). A member whose metrics do not answer is left out."""
    urls = cluster.etcd.metrics_urls
    if not urls:
        raise TargetError(
            f"{cluster.name} exposes no etcd metrics URLs",
            "advise needs each member's /metrics (etcd --listen-metrics-urls)",
        )
    client = EtcdClient(cluster.etcd, timeout=3.0)
    try:
        names = {format(int(i), "x"): n for i, n in client.member_names().items()}
    finally:
        client.close()
    before = {m: scrape(u) for m, u in urls.items()}
    threading.Event().wait(window_s)  # the window itself, not a poll: etcd probes every ~4 s
    pairs: list[PairRtt] = []
    for member, url in sorted(urls.items()):
        first, second = before.get(member), scrape(url)
        if first is None or second is None:
            continue
        for pair in pair_rtts(
            member,
            first.buckets,
            second.buckets,
            (first.sums, second.sums),
            (first.counts, second.counts),
        ):
            pairs.append(
                PairRtt(
                    pair.member,
                    names.get(pair.peer, pair.peer),
                    pair.mean_s,
                    pair.p99_s,
                    pair.samples,
                )
            )
    return pairs
