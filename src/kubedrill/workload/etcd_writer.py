"""A bounded background writer: sequential keys into etcd, every operation recorded."""

from __future__ import annotations

from dataclasses import dataclass

from kubedrill.probes.etcd import EtcdClient, EtcdError
from kubedrill.workload.background import BackgroundClient
from kubedrill.workload.history import Operation


@dataclass(kw_only=True)
class EtcdWriter(BackgroundClient):
    """Writes `<prefix>/<seq>` = seq every `interval` seconds.

    Each put goes to one member at a time, trying the others on failure like a multi-endpoint
    client; an attempt that timed out leaves the operation `unknown` if no other member
    acknowledged it (it may have been applied).
    """

    client: EtcdClient
    prefix: str
    attempt_timeout: float = 1.0

    def operation(self, seq: int) -> Operation:
        nodes = self.client.nodes
        key, value = f"{self.prefix}/{seq:08d}", str(seq)
        invoke = self.timeline.now()
        outcome, revision, errors = "fail", 0, []  # every attempt's error
        # Rotate the first member tried so load spreads as with a real client.
        order = nodes[seq % len(nodes) :] + nodes[: seq % len(nodes)]
        for node in order:
            try:
                revision = self.client.put(key, value, node=node, timeout=self.attempt_timeout)
                outcome = "ok"
                break
            except EtcdError as exc:
                errors.append(str(exc))
                if "Timeout" in errors[-1]:
                    outcome = "unknown"
        return Operation(
            self.name,
            "put",
            key,
            value,
            invoke,
            self.timeline.now(),
            outcome,
            revision,
            "" if outcome == "ok" else "; ".join(errors),
        )
