"""When a delayed packet may leave: the delayer's pure schedule (delay, jitter, order kept).

A WAN link is modelled per destination address: a one-way delay plus a jitter drawn uniformly
from [-jitter, +jitter]. Unlike netem's jitter, a packet never leaves before the one queued
ahead of it for the same destination: real WAN paths rarely reorder, and reordering would make
TCP retransmit spuriously and measure the retransmits instead of the distance.
"""

from __future__ import annotations

import heapq
import ipaddress
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from kubedrill.errors import ConfigError

T = TypeVar("T")


@dataclass(frozen=True)
class LinkDelay:
    """One-way delay and jitter (ms) to the addresses of `network`."""

    network: ipaddress.IPv4Network
    delay_ms: float
    jitter_ms: float = 0.0

    @classmethod
    def parse(cls, text: str) -> LinkDelay:
        """`CIDR=DELAY[:JITTER]` in ms, e.g. `10.213.98.12/32=25:5`."""
        where, sep, value = text.partition("=")
        delay, _, jitter = value.partition(":")
        try:
            link = cls(ipaddress.IPv4Network(where), float(delay), float(jitter or 0))
        except ValueError as exc:
            raise ConfigError(
                f"link {text!r} is not CIDR=DELAY_MS[:JITTER_MS]: {exc}", "e.g. 10.0.0.2/32=25:5"
            ) from exc
        if not sep or link.delay_ms < 0 or link.jitter_ms < 0 or link.jitter_ms > link.delay_ms:
            raise ConfigError(f"link {text!r} needs 0 <= jitter <= delay", "e.g. 10.0.0.2/32=25:5")
        return link


def destination(ipv4_packet: bytes) -> ipaddress.IPv4Address | None:
    """The destination address of a raw IPv4 packet (what NFQUEUE hands over)."""
    if len(ipv4_packet) < 20 or ipv4_packet[0] >> 4 != 4:
        return None
    return ipaddress.IPv4Address(ipv4_packet[16:20])


@dataclass
class Schedule(Generic[T]):
    """Packets held until their release time; `default` applies where no link matches."""

    links: Sequence[LinkDelay]
    default: LinkDelay | None = None
    rng: random.Random = field(default_factory=random.Random)
    _heap: list[tuple[float, int, T]] = field(default_factory=list)
    _last: dict[ipaddress.IPv4Address | None, float] = field(default_factory=dict)
    _seq: int = 0

    def link_for(self, dst: ipaddress.IPv4Address | None) -> LinkDelay | None:
        if dst is not None:
            for link in self.links:
                if dst in link.network:
                    return link
        return self.default

    def hold(self, item: T, dst: ipaddress.IPv4Address | None, now: float) -> float:
        """Queue `item`; returns its release time (monotonic seconds)."""
        link = self.link_for(dst)
        delay = 0.0
        if link is not None:
            jitter = self.rng.uniform(-link.jitter_ms, link.jitter_ms) if link.jitter_ms else 0.0
            delay = (link.delay_ms + jitter) / 1000.0
        release = max(now + delay, self._last.get(dst, 0.0))  # never overtake the one ahead
        self._last[dst] = release
        self._seq += 1
        heapq.heappush(self._heap, (release, self._seq, item))
        return release

    def due(self, now: float) -> list[T]:
        out: list[T] = []
        while self._heap and self._heap[0][0] <= now:
            out.append(heapq.heappop(self._heap)[2])
        return out

    def next_release(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def drain(self) -> list[T]:
        out = [entry[2] for entry in sorted(self._heap)]
        self._heap.clear()
        return out

    def __len__(self) -> int:
        return len(self._heap)
