"""A bounded background client of the Kubernetes API through the load balancer.

Each request opens a new connection (`Connection: close`), so every request is routed by the
load balancer afresh: the failures recorded are the ones a new client would see."""

from __future__ import annotations

from dataclasses import dataclass

import requests

from kubedrill.cluster import KubeAccess
from kubedrill.workload.api_configmaps import api_session
from kubedrill.workload.background import BackgroundClient
from kubedrill.workload.history import Operation


@dataclass(kw_only=True)
class ApiReader(BackgroundClient):
    access: KubeAccess
    path: str = "/api/v1/namespaces/kube-system"
    timeout: float = 2.0

    def __post_init__(self) -> None:
        super().__post_init__()
        self._session = api_session(self.access)

    def operation(self, seq: int) -> Operation:
        invoke = self.timeline.now()
        outcome, error = "fail", ""
        try:
            resp = self._session.get(self.access.server + self.path, timeout=self.timeout)
            outcome = "ok" if resp.status_code == 200 else "fail"
            error = "" if outcome == "ok" else f"HTTP {resp.status_code}"
        except requests.Timeout:
            outcome, error = "unknown", "timeout"
        except requests.RequestException as exc:
            error = type(exc).__name__
        return Operation(
            self.name, "get", self.path, "", invoke, self.timeline.now(), outcome, 0, error
        )

    def close(self) -> None:
        self._session.close()
