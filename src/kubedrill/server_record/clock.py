"""How far a node's clock is from the runner's: zero where they share a kernel clock (the lab's
network namespaces, kind's containers), measured over the transport elsewhere (SSH)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from kubedrill.cluster import Cluster, Node
from kubedrill.transport.registry import transport_for

SHARED_CLOCK_TARGETS = frozenset({"lab", "kind"})


@dataclass(frozen=True)
class Offset:
    seconds: float  # node clock minus runner clock
    uncertainty: float  # half the round trip of the measurement


def measure_offset(node: Node, samples: int = 3) -> Offset | None:
    """Ask the node for its time (`date +%s.%N`) and compare it with the midpoint of the
    request; the sample with the shortest round trip wins (NTP's own rule)."""
    transport = transport_for(node.transport)
    best: Offset | None = None
    for _ in range(samples):
        before = time.time()
        result = transport.run(["date", "+%s.%N"], timeout=10)
        after = time.time()
        if not result.ok:
            continue
        try:
            remote = float(result.stdout.strip())
        except ValueError:
            continue
        candidate = Offset(remote - (before + after) / 2, (after - before) / 2)
        if best is None or candidate.uncertainty < best.uncertainty:
            best = candidate
    return best


@dataclass
class ClockOffsets:
    """Per-node offsets, measured once per node and cached."""

    cluster: Cluster
    _known: dict[str, Offset] = field(default_factory=dict)

    def offset(self, node: Node) -> Offset:
        if self.cluster.target in SHARED_CLOCK_TARGETS:
            return Offset(0.0, 0.0)
        if node.name not in self._known:
            # Unmeasurable: assume none, but say it is unknown by a whole second.
            self._known[node.name] = measure_offset(node) or Offset(0.0, 1.0)
        return self._known[node.name]

    def offset_of(self, name: str) -> Offset:
        """By node name; a name that is no node of the cluster is off by an unknown amount."""
        if self.cluster.target in SHARED_CLOCK_TARGETS:
            return Offset(0.0, 0.0)
        node = next((n for n in self.cluster.nodes if n.name == name), None)
        return self.offset(node) if node is not None else Offset(0.0, 1.0)
