"""A bounded background writer: sequential keys into etcd, every operation recorded."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from kubedrill.probes.etcd import EtcdClient, EtcdError
from kubedrill.timeline import Timeline
from kubedrill.workload.history import Operation


@dataclass
class EtcdWriter:
    """Writes `<prefix>/<seq>` = seq every `interval` seconds until stopped or `max_duration`.

    Each put goes to one member at a time, trying the others on failure like a multi-endpoint
    client; an attempt that timed out leaves the operation `unknown` if no other member
    acknowledged it (it may have been applied).
    """

    client: EtcdClient
    timeline: Timeline
    prefix: str
    interval: float = 0.05
    max_duration: float = 300.0  # stops by itself even if nobody calls stop()
    attempt_timeout: float = 1.0
    name: str = "etcd-writer"
    ops: list[Operation] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._lock = threading.Lock()

    def start(self) -> EtcdWriter:
        self._thread.start()
        return self

    def stop(self) -> list[Operation]:
        self._stop.set()
        self._thread.join(timeout=10)
        return self.history()

    def history(self) -> list[Operation]:
        with self._lock:
            return list(self.ops)

    def _run(self) -> None:
        started = self.timeline.now()
        seq = 0
        nodes = self.client.nodes
        while not self._stop.is_set() and self.timeline.now() - started < self.max_duration:
            seq += 1
            key, value = f"{self.prefix}/{seq:08d}", str(seq)
            invoke = self.timeline.now()
            outcome, revision, error = "fail", 0, ""
            # Rotate the first member tried so load spreads as with a real client.
            order = nodes[seq % len(nodes) :] + nodes[: seq % len(nodes)]
            for node in order:
                try:
                    revision = self.client.put(key, value, node=node, timeout=self.attempt_timeout)
                    outcome = "ok"
                    break
                except EtcdError as exc:
                    error = str(exc)
                    if "Timeout" in error:
                        outcome = "unknown"
            op = Operation(
                self.name,
                "put",
                key,
                value,
                invoke,
                self.timeline.now(),
                outcome,
                revision,
                "" if outcome == "ok" else error,
            )
            with self._lock:
                self.ops.append(op)
            self._stop.wait(self.interval)
