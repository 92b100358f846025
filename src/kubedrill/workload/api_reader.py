"""A bounded background client of the Kubernetes API through the load balancer.

Each request opens a new connection (`Connection: close`), so every request is routed by the
load balancer afresh: the failures recorded are the ones a new client would see."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import requests

from kubedrill.cluster import KubeAccess
from kubedrill.timeline import Timeline
from kubedrill.workload.history import Operation


@dataclass
class ApiReader:
    access: KubeAccess
    timeline: Timeline
    path: str = "/api/v1/namespaces/kube-system"
    interval: float = 0.05
    max_duration: float = 300.0
    timeout: float = 2.0
    name: str = "api-reader"
    ops: list[Operation] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)

    def start(self) -> ApiReader:
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
        session = requests.Session()
        session.trust_env = False
        session.verify = str(self.access.ca)
        session.cert = (str(self.access.cert), str(self.access.key))
        session.headers["Connection"] = "close"
        started = self.timeline.now()
        try:
            while not self._stop.is_set() and self.timeline.now() - started < self.max_duration:
                invoke = self.timeline.now()
                outcome, error = "fail", ""
                try:
                    resp = session.get(self.access.server + self.path, timeout=self.timeout)
                    outcome = "ok" if resp.status_code == 200 else "fail"
                    error = "" if outcome == "ok" else f"HTTP {resp.status_code}"
                except requests.Timeout:
                    outcome, error = "unknown", "timeout"
                except requests.RequestException as exc:
                    error = type(exc).__name__
                op = Operation(
                    self.name, "get", self.path, "", invoke, self.timeline.now(), outcome, 0, error
                )
                with self._lock:
                    self.ops.append(op)
                self._stop.wait(self.interval)
        finally:
            session.close()
