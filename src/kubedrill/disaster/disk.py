"""Slow and crashing disks (issue #13): what the stall and crash drills measure.

- Put latency from the drill's own writer (real puts, one at a time), before the fault and
  while it is held: p50/p99 and counts (`latency_figures`).
- A lease granted with a short TTL before the fault and kept alive through it, as a client
  would (`LeaseKeeper`): did a keepalive find it expired, the longest gap between answered
  keepalives.
- What etcd's own histograms saw on the stalled member (`Histograms`): the WAL fsync, the
  backend commit, from two scrapes of its /metrics.
- A member's process start time (`process_start_time_seconds`), so "it crashed and came
  back" is a fact from the member, not an inference from a missed probe.
- What makes a crash point run (`Trigger`): a put (raft save), a defragmentation of the
  victim, a compaction.
"""

from __future__ import annotations

import itertools
import math
import socket
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from kubedrill.cluster import EtcdAccess
from kubedrill.probes.etcd import EtcdClient, EtcdError
from kubedrill.probes.metrics import SeriesKey, parse_samples
from kubedrill.workload.background import BackgroundClient
from kubedrill.workload.history import Operation

# -- latency -----------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-quantile (0..1) by the nearest-rank method (a small sample's p99 is its
    maximum, never an interpolation below it); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class LatencyWindow:
    name: str
    puts: int
    failed: int
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "puts": self.puts,
            "failed": self.failed,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "max_ms": self.max_ms,
        }


def latency_window(
    name: str, ops: Iterable[Operation], start: float, end: float, *, overlapping: bool = False
) -> LatencyWindow:
    """Puts in [start, end): their latency (acknowledged ones) and failures. By default the
    puts invoked and answered inside it (a baseline untouched by what follows); `overlapping`
    takes every put in flight at some moment of it, so a put that was waiting when a fault
    began and answered only after seconds counts, with its whole latency (a leader change
    drops the old leader's proposals: the client waits etcd's request timeout, 5 s plus
    twice the election timeout, and only then tries another member)."""
    if overlapping:
        inside = [op for op in ops if op.kind == "put" and op.invoke < end and op.complete > start]
    else:
        inside = [op for op in ops if op.kind == "put" and start <= op.invoke and op.complete < end]
    acked = [(op.complete - op.invoke) * 1000 for op in inside if op.ok]

    def rounded(value: float | None) -> float | None:
        return None if value is None else round(value, 1)

    return LatencyWindow(
        name,
        len(acked),
        len(inside) - len(acked),
        rounded(percentile(acked, 0.5)),
        rounded(percentile(acked, 0.99)),
        rounded(max(acked) if acked else None),
    )


def acknowledged_between(ops: Iterable[Operation], start: float, end: float) -> int:
    """How many puts were answered OK in [start, end), whenever they were sent."""
    return sum(1 for op in ops if op.kind == "put" and op.ok and start <= op.complete < end)


# -- the lease ---------------------------------------------------------------------------------


@dataclass(kw_only=True)
class LeaseKeeper(BackgroundClient):
    """Keeps one lease alive every `interval` (a client's TTL/3), each keepalive tried on the
    members in turn with `attempt_timeout`; records every keepalive as an operation whose
    value is the TTL etcd answered ("0": the lease had expired)."""

    access: EtcdAccess
    ttl_s: int = 3
    attempt_timeout: float = 1.0
    lease_id: str = ""
    _client: EtcdClient | None = None

    @property
    def client(self) -> EtcdClient:
        if self._client is None:
            self._client = EtcdClient(self.access, timeout=self.attempt_timeout)
        return self._client

    def grant(self) -> str:
        """Grant the lease (through any member); its id."""
        errors = []
        for node in self.client.nodes:
            try:
                data = self.client.call(node, "/v3/lease/grant", {"TTL": self.ttl_s}, timeout=5.0)
                self.lease_id = str(data["ID"])
                return self.lease_id
            except EtcdError as exc:
                errors.append(str(exc))
        raise EtcdError("lease grant failed: " + "; ".join(errors))

    def operation(self, seq: int) -> Operation:
        nodes = self.client.nodes
        order = nodes[seq % len(nodes) :] + nodes[: seq % len(nodes)]
        invoke = self.timeline.now()
        errors = []
        for node in order:
            try:
                data = self.client.call(node, "/v3/lease/keepalive", {"ID": self.lease_id})
            except EtcdError as exc:
                errors.append(str(exc))
                continue
            ttl = str(data.get("result", {}).get("TTL", "0"))
            return Operation(
                self.name, "keepalive", self.lease_id, ttl, invoke, self.timeline.now(), "ok"
            )
        return Operation(
            self.name,
            "keepalive",
            self.lease_id,
            "",
            invoke,
            self.timeline.now(),
            "fail",
            error="; ".join(errors),
        )

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def summary(self) -> dict[str, Any]:
        """The recorder's figures in summary.json (the drill reports the lease itself)."""
        ops = self.history()
        return {"lease_id": self.lease_id, "ttl_s": self.ttl_s, "keepalives": len(ops)}

    def time_to_live(self) -> int | None:
        """The lease's remaining TTL now (-1: expired), or None when nobody answers."""
        for node in self.client.nodes:
            try:
                data = self.client.call(node, "/v3/lease/timetolive", {"ID": self.lease_id})
                return int(data.get("TTL", -1))
            except EtcdError:
                continue
        return None

    def revoke(self) -> None:
        for node in self.client.nodes:
            try:
                self.client.call(node, "/v3/lease/revoke", {"ID": self.lease_id})
                return
            except EtcdError:
                continue


@dataclass(frozen=True)
class LeaseFigures:
    keepalives: int
    answered: int
    expired_seen: bool  # a keepalive was answered TTL 0: the lease had expired
    longest_gap_s: float  # between answered keepalives that found it alive
    ttl_after: int | None  # time-to-live asked after the fault (-1: expired)

    @property
    def expired(self) -> bool:
        return self.expired_seen or self.ttl_after == -1

    def to_dict(self) -> dict[str, Any]:
        return {
            "keepalives": self.keepalives,
            "answered": self.answered,
            "expired": self.expired,
            "longest_gap_s": self.longest_gap_s,
            "ttl_after": self.ttl_after,
        }


def lease_figures(ops: Sequence[Operation], ttl_after: int | None) -> LeaseFigures:
    alive = [op.complete for op in ops if op.ok and op.value not in ("", "0")]
    gaps = [b - a for a, b in itertools.pairwise(alive)]
    return LeaseFigures(
        keepalives=len(ops),
        answered=sum(op.ok for op in ops),
        expired_seen=any(op.ok and op.value == "0" for op in ops),
        longest_gap_s=round(max(gaps), 3) if gaps else 0.0,
        ttl_after=ttl_after,
    )


# -- etcd's own histograms ---------------------------------------------------------------------

HISTOGRAMS = {
    "wal_fsync": "etcd_disk_wal_fsync_duration_seconds",
    "backend_commit": "etcd_disk_backend_commit_duration_seconds",
}
_KEEP = {
    f"{metric}{suffix}": (("le",) if suffix == "_bucket" else ())
    for metric in HISTOGRAMS.values()
    for suffix in ("_bucket", "_sum", "_count")
} | {"process_start_time_seconds": ()}

Samples = Mapping[SeriesKey, float]


def scrape(url: str, timeout: float = 2.0) -> Samples | None:
    """The member's histograms and start time from its /metrics; None when it does not
    answer."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            text = resp.read().decode(errors="replace")
    except (urllib.error.URLError, OSError):
        return None
    return parse_samples(text, _KEEP)


def start_time(samples: Samples | None) -> float | None:
    if samples is None:
        return None
    return samples.get(("process_start_time_seconds", ()))


def bucket_quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """Prometheus' histogram_quantile over cumulative bucket counts (upper bound -> count),
    linear inside the bucket; None for no observations."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    total = buckets[bounds[-1]]
    rank = q * total
    previous_bound, previous_count = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return previous_bound  # as Prometheus: the highest finite bound
            inside = count - previous_count
            share = (rank - previous_count) / inside if inside > 0 else 1.0
            return previous_bound + (bound - previous_bound) * share
        previous_bound, previous_count = bound, count
    return previous_bound


@dataclass(frozen=True)
class HistogramDelta:
    """One histogram between two scrapes: observations, mean and p99 (seconds)."""

    count: int
    mean_s: float | None
    p99_s: float | None

    def to_dict(self) -> dict[str, Any]:
        def ms(value: float | None) -> float | None:
            return None if value is None else round(value * 1000, 2)

        return {"observations": self.count, "mean_ms": ms(self.mean_s), "p99_ms": ms(self.p99_s)}


def histogram_delta(metric: str, before: Samples, after: Samples) -> HistogramDelta:
    def value(samples: Samples, name: str, labels: tuple[tuple[str, str], ...] = ()) -> float:
        return samples.get((name, labels), 0.0)

    count = value(after, f"{metric}_count") - value(before, f"{metric}_count")
    total = value(after, f"{metric}_sum") - value(before, f"{metric}_sum")
    buckets: dict[float, float] = {}
    for (name, labels), cumulative in after.items():
        if name != f"{metric}_bucket":
            continue
        le = float(dict(labels)["le"])
        buckets[le] = cumulative - before.get((name, labels), 0.0)
    if count <= 0:
        return HistogramDelta(0, None, None)
    return HistogramDelta(int(count), total / count, bucket_quantile(0.99, buckets))


def histogram_deltas(before: Samples, after: Samples) -> dict[str, HistogramDelta]:
    return {short: histogram_delta(m, before, after) for short, m in HISTOGRAMS.items()}


# -- crash triggers ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Trigger:
    """What makes the failpoint's code run on the victim: a description and the action
    (which may fail: the member dies under the request)."""

    what: str
    run: Callable[[EtcdClient, str, str], str]  # (etcd, victim, another member) -> outcome


def _outcome(action: Callable[[], object]) -> str:
    try:
        action()
    except EtcdError as exc:
        return f"failed: {exc}"
    return "answered"


def put_trigger(etcd: EtcdClient, victim: str, other: str) -> str:
    return _outcome(lambda: etcd.put("/kubedrill/disk/trigger", "x", node=other, timeout=5.0))


def defrag_trigger(etcd: EtcdClient, victim: str, other: str) -> str:
    return _outcome(lambda: etcd.call(victim, "/v3/maintenance/defragment", {}, timeout=15.0))


def compact_trigger(etcd: EtcdClient, victim: str, other: str) -> str:
    def compact() -> None:
        # A few revisions to compact away, then compact to the current revision.
        for index in range(5):
            etcd.put("/kubedrill/disk/compact", str(index), node=other, timeout=5.0)
        revision = etcd.status(other).revision
        etcd.call(other, "/v3/kv/compaction", {"revision": revision}, timeout=15.0)

    return _outcome(compact)


TRIGGERS = {
    "put": Trigger("a put (the leader saves the entry to its WAL)", put_trigger),
    "defrag": Trigger("defragment the victim", defrag_trigger),
    "compact": Trigger("compact to the current revision", compact_trigger),
}


@dataclass(frozen=True)
class CrashPoint:
    """A crash drill's case: the failpoint armed with `panic`, on whom, and what runs it."""

    failpoint: str
    victim: str  # "leader" or "follower"
    trigger: str  # a TRIGGERS key
    why: str = field(default="", compare=False)


def process_gone(metrics_url: str, timeout: float = 0.3) -> bool:
    """True when nothing listens on the member's metrics port any more: its process is gone
    (the listener dies with it, and unlike a status request it does not wait on raft, so a
    slow or stalled member is not taken for a dead one). A timeout proves nothing: False."""
    parts = urlsplit(metrics_url)
    try:
        with socket.create_connection((parts.hostname or "", parts.port or 80), timeout=timeout):
            return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False


def answers(etcd: EtcdClient, node: str) -> bool:
    try:
        etcd.status(node)
    except EtcdError:
        return False
    return True


def longest_up(access: EtcdAccess, nodes: Sequence[str]) -> str:
    """Of `nodes`, the member whose process started first (its metrics' start time); a member
    whose metrics do not answer counts as just started."""

    def started(node: str) -> float:
        url = access.metrics_urls.get(node)
        return (start_time(scrape(url, timeout=1.0)) if url else None) or math.inf

    return min(nodes, key=lambda n: (started(n), n))


def other_member(nodes: Sequence[str], victim: str) -> str:
    return next(n for n in nodes if n != victim)
