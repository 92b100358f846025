"""etcd's time parameters from the measured round trip between members: pure arithmetic.

etcd's tuning guide: the heartbeat interval should be around the maximum of the average
round-trip times between members (0.5-1.5x); the election timeout at least 10x the round-trip
time (the factor is the allowance for the network's variance), and at least 5x the heartbeat
(etcd refuses less); its upper limit is 50 s. Both rest on the slowest pair's *mean* round trip
(jitter included): etcd's histogram has doubling buckets, so its p99 is only known to within a
factor of two (it is shown, not used). Never below the seed's 100 ms / 1000 ms: a shorter
heartbeat than the LAN default only costs CPU and traffic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from kubedrill.disaster.disk import bucket_quantile

SEED_HEARTBEAT_MS = 100
SEED_ELECTION_MS = 1000
ELECTION_RTT_FACTOR = 10  # the guide: "at least 10 times the round-trip time"
ELECTION_HEARTBEAT_FACTOR = 5  # etcd refuses an election timeout below 5x the heartbeat
ELECTION_MAX_MS = 50_000  # the guide's upper limit


@dataclass(frozen=True)
class PairRtt:
    """Round trip from one member to one peer, from etcd's prober histogram (seconds)."""

    member: str
    peer: str
    mean_s: float
    p99_s: float
    samples: int


@dataclass(frozen=True)
class EtcdAdvice:
    heartbeat_ms: int
    election_ms: int
    rtt_mean_ms: float  # the slowest pair's mean: the basis of both
    rtt_p99_ms: float  # the slowest p99 (doubling buckets: shown, not used)
    slowest: str  # "member -> peer"
    reasons: tuple[str, ...]

    def flags(self) -> tuple[str, str]:
        return (
            f"--heartbeat-interval={self.heartbeat_ms}",
            f"--election-timeout={self.election_ms}",
        )


def round_up(value: float, step: int) -> int:
    return int(math.ceil(value / step) * step)


def advise(pairs: list[PairRtt]) -> EtcdAdvice:
    """The advice for the slowest measured pair; raises ValueError with no measurement."""
    measured = [p for p in pairs if p.samples > 0]
    if not measured:
        raise ValueError("no round trip measured between members yet")
    by_mean = max(measured, key=lambda p: p.mean_s)
    worst_p99 = max(p.p99_s for p in measured)
    mean_ms, p99_ms = by_mean.mean_s * 1000, worst_p99 * 1000
    heartbeat = max(SEED_HEARTBEAT_MS, round_up(mean_ms, 10))
    election = max(
        SEED_ELECTION_MS,
        round_up(ELECTION_RTT_FACTOR * mean_ms, 100),
        ELECTION_HEARTBEAT_FACTOR * heartbeat,
    )
    reasons = [
        f"heartbeat {heartbeat} ms: around the slowest pair's mean round trip "
        f"({mean_ms:.1f} ms, {by_mean.member} -> {by_mean.peer}), never below the seed's "
        f"{SEED_HEARTBEAT_MS} ms",
        f"election timeout {min(election, ELECTION_MAX_MS)} ms: at least {ELECTION_RTT_FACTOR}x "
        f"that round trip and {ELECTION_HEARTBEAT_FACTOR}x the heartbeat, never below the "
        f"seed's {SEED_ELECTION_MS} ms (slowest p99 {p99_ms:.0f} ms, to a factor of two)",
    ]
    if election > ELECTION_MAX_MS:
        reasons.append(
            f"the round trip asks for {election} ms, above etcd's {ELECTION_MAX_MS} ms limit: "
            "these members are too far apart for one etcd cluster"
        )
        election = ELECTION_MAX_MS
    return EtcdAdvice(
        heartbeat, election, mean_ms, p99_ms, f"{by_mean.member} -> {by_mean.peer}", tuple(reasons)
    )


def pair_rtts(
    member: str,
    before: Mapping[str, Mapping[float, float]] | None,
    after: Mapping[str, Mapping[float, float]],
    sums: tuple[Mapping[str, float], Mapping[str, float]],
    counts: tuple[Mapping[str, float], Mapping[str, float]],
) -> list[PairRtt]:
    """Per peer (etcd's `To` label): the histogram's growth between two scrapes of `member`
    (cumulative `le` -> count buckets, sums and counts by peer); without `before`, since the
    member started."""
    out: list[PairRtt] = []
    for peer, buckets in sorted(after.items()):
        base = (before or {}).get(peer, {})
        delta = {le: n - base.get(le, 0.0) for le, n in buckets.items()}
        count = counts[1].get(peer, 0.0) - counts[0].get(peer, 0.0)
        total = sums[1].get(peer, 0.0) - sums[0].get(peer, 0.0)
        p99 = bucket_quantile(0.99, delta)
        if count <= 0 or p99 is None:
            out.append(PairRtt(member, peer, 0.0, 0.0, 0))
            continue
        out.append(PairRtt(member, peer, total / count, p99, int(count)))
    return out
