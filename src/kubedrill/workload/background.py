"""A client that keeps working in a thread through a fault, recording every operation.

Bounded: it stops by itself after `max_duration` even if nobody calls stop()."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Self

from kubedrill.timeline import Timeline
from kubedrill.workload.history import Operation


@dataclass(kw_only=True)
class BackgroundClient:
    timeline: Timeline
    interval: float = 0.05
    max_duration: float = 300.0
    name: str = "client"
    ops: list[Operation] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        # "workload/<client>": runner_cpu counts these threads as the workload's, not as
        # measuring (a client named "etcd-watch" must not pass for a drill's "watch-" poller).
        self._thread = threading.Thread(target=self._run, name=f"workload/{self.name}", daemon=True)

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> list[Operation]:
        """Stop and return the history; a client never started (a dry run's) has none."""
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join(timeout=10)
        return self.history()

    def history(self) -> list[Operation]:
        with self._lock:
            return list(self.ops)

    def operation(self, seq: int) -> Operation:
        """One operation, invoked and completed on the drill's timeline."""
        raise NotImplementedError

    def close(self) -> None:
        """Release what the client holds (called once, from its thread, at the end)."""

    def _run(self) -> None:
        started = self.timeline.now()
        seq = 0
        try:
            while not self._stop.is_set() and self.timeline.now() - started < self.max_duration:
                seq += 1
                op = self.operation(seq)
                with self._lock:
                    self.ops.append(op)
                self._stop.wait(self.interval)
        finally:
            self.close()
