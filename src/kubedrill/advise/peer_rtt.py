"""The round trip between etcd members, two ways.

`probe`: from each member's host, TCP handshakes to every peer's peer port (SYN out, SYN-ACK
back: one round trip, the network's alone). What the advice rests on.

`measure`: etcd's own prober histogram `etcd_network_peer_round_trip_time_seconds` (per peer,
label `To`, the peer's member ID in hex), read from every member's /metrics twice, a window
apart. Shown beside the probes, not used for the advice: etcd's prober opens a new TLS
connection for every probe (its peer transport keeps no idle connections), so each sample is
a TCP handshake, a TLS handshake and the request, about three round trips plus the TLS CPU
(measured on the lab at 25 ms one way: etcd's mean 170 ms for a 50 ms round trip)."""

from __future__ import annotations

import json
import statistics
import sys
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
from kubedrill.transport import transport_for
from kubedrill.transport.node_container import host_side

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


# Run with the member host's Python (on a node container: this machine's, in its netns, as the
# delayer is): connect to each peer in turn, `count` rounds, print milliseconds per peer.
_PROBE = """
import json, socket, sys, time
peers, port = json.loads(sys.argv[1]), int(sys.argv[2])
count, gap = int(sys.argv[3]), float(sys.argv[4])
out = {name: [] for name in peers}
for _ in range(count):
    for name, address in peers.items():
        s = socket.socket()
        s.settimeout(5)
        started = time.monotonic()
        try:
            s.connect((address, port))
            out[name].append((time.monotonic() - started) * 1000)
        except OSError:
            pass
        finally:
            s.close()
    time.sleep(gap)
print(json.dumps(out))
"""


def probe(cluster: Cluster, count: int = 10, gap_s: float = 0.1) -> list[PairRtt]:
    """TCP handshake times from every member's host to every peer's peer port."""
    members = cluster.with_role("etcd")
    pairs: list[PairRtt] = []
    for member in members:
        peers = {p.name: p.address for p in members if p.name != member.name}
        argv = [
            sys.executable,
            "-c",
            _PROBE,
            json.dumps(peers),
            str(cluster.etcd.peer_port),
            str(count),
            str(gap_s),
        ]
        timeout = count * (len(peers) * 5 + gap_s) + 10
        result = transport_for(host_side(member.transport)).run(argv, timeout=timeout)
        if not result.ok:
            raise TargetError(
                f"round-trip probe from {member.name} failed (exit {result.exit_code})",
                result.stderr.strip()[-300:] or "see the host's logs",
            )
        for peer, times in sorted(json.loads(result.stdout).items()):
            ordered = sorted(times)
            if not ordered:
                pairs.append(PairRtt(member.name, peer, 0.0, 0.0, 0))
                continue
            p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
            pairs.append(
                PairRtt(
                    member.name, peer, statistics.fmean(ordered) / 1000, p99 / 1000, len(ordered)
                )
            )
    return pairs
