"""A bounded background client of the Kubernetes API through the load balancer.

Each request opens a new connection (`Connection: close`), so every request is routed by the
load balancer afresh: the failures recorded are the ones a new client would see."""

from __future__ import annotations

import errno
import ssl
from dataclasses import dataclass

import requests

from kubedrill.cluster import KubeAccess
from kubedrill.workload.api_configmaps import api_session
from kubedrill.workload.background import BackgroundClient
from kubedrill.workload.history import Operation


def tls_reason(text: str) -> str:
    """OpenSSL's reason in a requests SSLError ("certificate has expired"), else its end."""
    marker = "certificate verify failed: "
    if marker in text:
        return text.split(marker, 1)[1].split(" (_ssl", 1)[0]
    return text[-80:]


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
        except requests.exceptions.SSLError as exc:
            error = f"SSLError: {tls_reason(str(exc))}"
        except requests.RequestException as exc:
            error = failure_reason(exc)
        return Operation(
            self.name, "get", self.path, "", invoke, self.timeline.now(), outcome, 0, error
        )

    def close(self) -> None:
        self._session.close()


def failure_reason(exc: BaseException) -> str:
    """The exception's class and, when a system call failed under it, that errno's name
    (`ConnectionError: ECONNREFUSED`, `...: ECONNRESET`): the reasons a failover's failed
    requests are counted by. requests wraps urllib3 wraps the OSError: follow every link."""
    seen: set[int] = set()
    todo: list[object] = [exc]
    while todo:
        item = todo.pop(0)
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, ssl.SSLError):  # its errno is OpenSSL's, not the system's
            return f"{type(exc).__name__}: {item.reason or 'SSL'}"
        code = item.errno if isinstance(item, OSError) else None
        if code is not None and code in errno.errorcode:
            return f"{type(exc).__name__}: {errno.errorcode[code]}"
        todo += [item.__cause__, item.__context__, getattr(item, "reason", None), *item.args]
    return type(exc).__name__
