"""Clients of the Kubernetes API through the load balancer that write ConfigMaps.

* `ConfigMapCreator` creates a new ConfigMap every tick: each acknowledged create must exist
  afterwards with its value (nothing lost across the failover).
* `ConfigMapRegister` alternates a GET of one ConfigMap with a PUT carrying the resourceVersion
  it read -- Kubernetes' optimistic concurrency, i.e. a compare-and-set register. A 409
  Conflict is a CAS whose compare failed. Several registers share one ConfigMap, so their
  operations overlap and the history is worth a linearizability check.

Outcomes: a connection refused or a 4xx means "not applied" (fail); a timeout or a 5xx means
the apiserver may have written to etcd before failing (unknown).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests

from kubedrill.cluster import KubeAccess
from kubedrill.workload.background import BackgroundClient
from kubedrill.workload.history import Operation

LABEL = "kubedrill.io/workload"


def api_session(access: KubeAccess) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # never through a proxy; the cluster's CA only
    session.verify = str(access.ca)
    session.cert = (str(access.cert), str(access.key))
    # A new connection per request: the load balancer routes each one afresh.
    session.headers["Connection"] = "close"
    return session


def configmap_body(name: str, value: str, run: str, resource_version: str = "") -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "labels": {LABEL: run}}
    if resource_version:
        metadata["resourceVersion"] = resource_version
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": {"v": value}}


def write_outcome(status: int) -> str:
    if status in (200, 201):
        return "ok"
    if status == 409:
        return "ok"  # the compare failed: an answer, not an error
    return "unknown" if status >= 500 else "fail"


@dataclass(kw_only=True)
class ConfigMapClient(BackgroundClient):
    access: KubeAccess
    namespace: str
    run: str  # label value shared by everything this drill's workload creates
    timeout: float = 2.0

    def __post_init__(self) -> None:
        super().__post_init__()
        self._session = api_session(self.access)

    def url(self, name: str = "") -> str:
        base = f"{self.access.server}/api/v1/namespaces/{self.namespace}/configmaps"
        return f"{base}/{name}" if name else base

    def close(self) -> None:
        self._session.close()

    def send(self, method: str, url: str, body: dict[str, Any] | None = None) -> Answer:
        """One request; a timeout is `unknown` (it may have been applied), any other failure to
        get an answer is `fail`."""
        try:
            resp = self._session.request(method, url, json=body, timeout=self.timeout)
        except requests.Timeout:
            return Answer(None, "unknown", "timeout")
        except requests.RequestException as exc:
            return Answer(None, "fail", type(exc).__name__)
        return Answer(resp, "", "")


@dataclass(frozen=True)
class Answer:
    response: requests.Response | None
    outcome: str  # set when there is no response
    error: str

    @property
    def status(self) -> int:
        return self.response.status_code if self.response is not None else 0

    def resource_version(self) -> int:
        assert self.response is not None
        return int(self.response.json()["metadata"]["resourceVersion"])


@dataclass(kw_only=True)
class ConfigMapCreator(ConfigMapClient):
    def operation(self, seq: int) -> Operation:
        name, value = f"{self.run}-{seq:06d}", str(seq)
        invoke = self.timeline.now()
        answer = self.send("POST", self.url(), configmap_body(name, value, self.run))
        outcome, error, revision = answer.outcome, answer.error, 0
        if answer.response is not None:
            # 409 here means the name exists: this create did not apply.
            outcome = write_outcome(answer.status) if answer.status != 409 else "fail"
            if outcome == "ok":
                revision = answer.resource_version()
            else:
                error = f"HTTP {answer.status}"
        return Operation(
            self.name, "put", name, value, invoke, self.timeline.now(), outcome, revision, error
        )


@dataclass(kw_only=True)
class ConfigMapRegister(ConfigMapClient):
    register: str  # the shared ConfigMap's name

    def __post_init__(self) -> None:
        super().__post_init__()
        self._read: tuple[str, str] | None = None  # (value, resourceVersion) last read

    def operation(self, seq: int) -> Operation:
        if self._read is None:
            return self._get()
        (expected, version), self._read = self._read, None
        return self._cas(seq, expected, version)

    def _get(self) -> Operation:
        invoke = self.timeline.now()
        answer = self.send("GET", self.url(self.register))
        outcome, value, error, revision = answer.outcome, "", answer.error, 0
        if answer.status == 200:
            assert answer.response is not None
            data = answer.response.json()
            value = str((data.get("data") or {}).get("v", ""))
            revision = int(data["metadata"]["resourceVersion"])
            outcome = "ok"
            self._read = (value, data["metadata"]["resourceVersion"])
        elif answer.status == 404:
            outcome = "ok"  # absent: reads as ""
        elif answer.response is not None:
            outcome, error = "fail", f"HTTP {answer.status}"
        return Operation(
            self.name, "get", self.register, value, invoke, self.timeline.now(), outcome,
            revision, error,
        )  # fmt: skip

    def _cas(self, seq: int, expected: str, version: str) -> Operation:
        new = f"{self.name}-{seq}"
        invoke = self.timeline.now()
        body = configmap_body(self.register, new, self.run, version)
        answer = self.send("PUT", self.url(self.register), body)
        outcome, applied, error, revision = answer.outcome, True, answer.error, 0
        if answer.response is not None:
            outcome = write_outcome(answer.status)
            if answer.status == 200:
                revision = answer.resource_version()
            elif answer.status == 409:
                applied = False  # the compare failed: the resourceVersion moved on
            else:
                error = f"HTTP {answer.status}"
        return Operation(
            self.name, "cas", self.register, new, invoke, self.timeline.now(), outcome,
            revision, error, expected=expected, applied=applied,
        )  # fmt: skip
