"""The WAN between regions as plain data: which link each pair of regions has, and what each
host delays and drops on its way to every host of another region. Pure, unit-tested."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from kubedrill.errors import ConfigError

_HINT = "write a link as REGION-REGION=DELAY_MS[:JITTER_MS[:LOSS_PCT]], e.g. r1-r3=50:5:0.5"


@dataclass(frozen=True)
class LinkSpec:
    """One direction of a WAN link: one-way delay and jitter (ms), loss (% of packets)."""

    delay_ms: float
    jitter_ms: float = 0.0
    loss_pct: float = 0.0

    def __post_init__(self) -> None:
        if self.delay_ms <= 0 or not 0 <= self.jitter_ms <= self.delay_ms:
            raise ConfigError(
                f"WAN link {self.delay_ms} ms ± {self.jitter_ms} ms is invalid",
                "the delay must be positive and the jitter at most the delay",
            )
        if not 0 <= self.loss_pct < 100:
            raise ConfigError(f"WAN loss {self.loss_pct} % is invalid", "give 0 <= loss < 100")

    @property
    def rtt_ms(self) -> float:
        return 2 * self.delay_ms

    def __str__(self) -> str:
        text = f"{self.delay_ms:g} ms"
        if self.jitter_ms:
            text += f" ± {self.jitter_ms:g}"
        if self.loss_pct:
            text += f", {self.loss_pct:g} % loss"
        return text


Pair = frozenset[str]


def parse_link(text: str, regions: Sequence[str]) -> tuple[Pair, LinkSpec]:
    pair_text, sep, value = text.partition("=")
    ends = pair_text.split("-")
    if not sep or len(ends) != 2 or ends[0] == ends[1]:
        raise ConfigError(f"WAN link {text!r} is malformed", _HINT)
    unknown = [r for r in ends if r not in regions]
    if unknown:
        raise ConfigError(
            f"WAN link {text!r} names unknown region {unknown[0]!r}",
            f"regions: {', '.join(regions)}",
        )
    parts = value.split(":")
    try:
        numbers = [float(p) for p in parts]
    except ValueError as exc:
        raise ConfigError(f"WAN link {text!r} is malformed", _HINT) from exc
    if not 1 <= len(numbers) <= 3:
        raise ConfigError(f"WAN link {text!r} is malformed", _HINT)
    return frozenset(ends), LinkSpec(*numbers)


def wan_links(
    regions: Sequence[str], default: LinkSpec, overrides: Sequence[str] = ()
) -> dict[Pair, LinkSpec]:
    """Every pair of regions: `default`, or its override (symmetric: both directions)."""
    links = {frozenset(p): default for p in itertools.combinations(regions, 2)}
    for text in overrides:
        pair, spec = parse_link(text, regions)
        links[pair] = spec
    return links


@dataclass(frozen=True)
class Route:
    """On one host: what it sends to `address` (in another region) goes over `link`."""

    peer: str
    address: str
    link: LinkSpec


def wan_routes(
    region_of: Mapping[str, str | None],
    addresses: Mapping[str, str],
    links: Mapping[Pair, LinkSpec],
) -> dict[str, tuple[Route, ...]]:
    """Per host with a region: a route to every host of another region. Hosts without a region
    (the lab's load balancer and kubedrill's own seat) are reached undelayed: they stand for
    the clients, who sit next to whichever region they use."""
    routes: dict[str, tuple[Route, ...]] = {}
    for host, region in sorted(region_of.items()):
        if region is None:
            continue
        out = []
        for peer, peer_region in sorted(region_of.items()):
            if peer_region is None or peer_region == region:
                continue
            pair = frozenset((region, peer_region))
            if pair not in links:
                raise ConfigError(f"no WAN link between {region} and {peer_region}", _HINT)
            out.append(Route(peer, addresses[peer], links[pair]))
        if out:
            routes[host] = tuple(out)
    return routes


def regions_of(region_of: Mapping[str, str | None]) -> list[str]:
    return sorted({r for r in region_of.values() if r is not None})


def loss_rule(chain: str, source: str, loss_pct: float) -> tuple[str, ...]:
    """iptables arguments that drop `loss_pct` % of what arrives from `source`: lost on arrival
    (INPUT), not on sending, since a drop in OUTPUT is reported to the sender (EPERM), which a
    packet lost on a WAN never is."""
    probability = f"{loss_pct / 100:.6f}"
    return ("-A", chain, "-s", source, "-m", "statistic", "--mode", "random",
            "--probability", probability, "-j", "DROP")  # fmt: skip


def queue_rule(chain: str, destination: str, queue: int | str) -> tuple[str, ...]:
    """iptables arguments that hand what is sent to `destination` to the delayer's queue (let
    through if no delayer is bound, never dropped)."""
    return ("-A", chain, "-d", destination, "-j", "NFQUEUE", "--queue-num", str(queue),
            "--queue-bypass")  # fmt: skip
