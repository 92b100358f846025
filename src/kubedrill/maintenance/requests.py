"""Request accounting through the load balancer: every failed request, when, where and why.

A bounded client sends GETs through the LB at a steady rate, each on a new TLS connection (so
the LB routes every request afresh, as a new kubectl or a restarted controller would be). A
failure is kept with its moment, its local port (which the LB's connection log ties to the
backend it chose) and a reason a person can act on: refused, reset, closed during the TLS
handshake, timeout, an HTTP status (429 with its Retry-After, 5xx) with the apiserver's own
message.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import ssl
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from kubedrill.cluster import KubeAccess
from kubedrill.workload.background import BackgroundClient
from kubedrill.workload.history import Operation


@dataclass(frozen=True)
class FailedRequest:
    """One request that did not get its 200: on the drill's timeline, with its reason."""

    client: str
    invoke: float  # drill timeline offsets
    complete: float
    wall: float  # wall clock at completion, to find the request in the LB's log
    port: int  # the client's local port (0: no TCP connection was made)
    reason: str  # what kind of failure, e.g. "connection reset", "HTTP 429"
    detail: str = ""  # the exception's text, or the apiserver's message
    retry_after: str = ""  # a 429/503's Retry-After header
    backend: str = ""  # the apiserver the LB sent it to, when its log says
    lb_detail: str = ""  # the LB's record of the connection (timers, termination, retries)
    during: str = ""  # what the rolling restart was doing then

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in ("", 0) or k == "invoke"}

    def render(self) -> str:
        where = f" via {self.backend}" if self.backend else " (backend unknown)"
        extra = f", Retry-After {self.retry_after}" if self.retry_after else ""
        detail = f": {self.detail}" if self.detail else ""
        lb = f" [LB: {self.lb_detail}]" if self.lb_detail else ""
        during = f" -- {self.during}" if self.during else ""
        return (
            f"+{self.invoke:.3f} s {self.client}: {self.reason}{extra}{where}{detail}{lb}{during}"
        )


def classify_exception(exc: BaseException, stage: str) -> tuple[str, str]:
    """(reason, detail) of a request that got no HTTP answer. `stage` is how far it got
    (connect, tls, request, response): a reset during the TLS handshake means the LB
    connected to a backend whose listener was going away; one after the request was sent,
    that the backend dropped a request it had accepted."""
    text = f"{type(exc).__name__}: {exc}".strip()
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused by the load balancer", text
    if isinstance(exc, TimeoutError | socket.timeout):
        return f"timeout ({stage})", text
    # RemoteDisconnected is a ConnectionResetError: the peer closed before any answer.
    if isinstance(exc, http.client.RemoteDisconnected):
        return "connection closed without a response", text
    if isinstance(exc, ConnectionResetError):
        return f"connection reset ({stage})", text
    if isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError) or (
        isinstance(exc, ssl.SSLError) and "EOF" in str(exc)
    ):
        return f"connection closed ({stage})", text
    if isinstance(exc, BrokenPipeError):
        return f"broken pipe ({stage})", text
    return f"{type(exc).__name__} ({stage})", text


def classify_status(status: int, body: bytes) -> str:
    """The apiserver's own message for a refused request (a Status object), else the body."""
    try:
        data = json.loads(body)
    except ValueError:
        return body[:200].decode(errors="replace").strip()
    if isinstance(data, dict):
        return str(data.get("message") or data.get("reason") or "")[:300]
    return ""


# `log-format "conn %ci:%cp %b/%s %Tw/%Tc/%Tt %B %ts %rc"` (the lab's lb_log_connections).
CONNECTION_LINE = re.compile(
    r"^(\S+) .*?conn (\S+):(\d+) (\S+)/(\S+) (\S+) (\d+) (\S+) (\+?\d+)\s*$"
)


@dataclass(frozen=True)
class LbConnection:
    wall: float
    client_port: int
    server: str  # "<NOSRV>" when no server took it
    timers: str  # Tw/Tc/Tt in ms (-1: that step never happened)
    bytes_out: int
    termination: str  # HAProxy's two-letter session state, e.g. "SD": server closed in data
    retries: str  # "+N" when redispatched

    def describe(self) -> str:
        retried = f", {self.retries.lstrip('+')} retries" if self.retries not in ("0", "") else ""
        redispatched = " (redispatched)" if self.retries.startswith("+") else ""
        return (
            f"server {self.server}, Tw/Tc/Tt {self.timers} ms, {self.bytes_out} B, "
            f"termination {self.termination}{retried}{redispatched}"
        )


def parse_connections(text: str, parse_time: Any) -> list[LbConnection]:
    """The LB's connection lines; `parse_time` turns its ISO header into wall seconds."""
    found = []
    for line in text.splitlines():
        match = CONNECTION_LINE.match(line)
        if match is None:
            continue
        wall = parse_time(match.group(1))
        if wall is None:
            continue
        found.append(
            LbConnection(
                wall,
                int(match.group(3)),
                match.group(5),
                match.group(6),
                int(match.group(7)),
                match.group(8),
                match.group(9),
            )
        )
    return found


def attribute(
    failures: Iterable[FailedRequest], connections: Iterable[LbConnection], slack_s: float = 3.0
) -> list[FailedRequest]:
    """Each failure with the LB connection of its local port logged closest to its end (the
    LB logs a connection when it closes; ports are reused, hence the time)."""
    by_port: dict[int, list[LbConnection]] = {}
    for conn in connections:
        by_port.setdefault(conn.client_port, []).append(conn)
    out = []
    for failure in failures:
        near = [c for c in by_port.get(failure.port, []) if abs(c.wall - failure.wall) <= slack_s]
        if not near:
            out.append(failure)
            continue
        best = min(near, key=lambda c: abs(c.wall - failure.wall))
        server = "" if best.server.startswith("<") else best.server
        out.append(replace(failure, backend=server, lb_detail=best.describe()))
    return out


def _tls_context(access: KubeAccess) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(access.ca))
    context.load_cert_chain(str(access.cert), str(access.key))
    return context


@dataclass(kw_only=True)
class AccountedClient(BackgroundClient):
    """GETs through the load balancer, a new connection each, every failure explained."""

    access: KubeAccess
    path: str = "/api/v1/namespaces/kube-system"
    timeout: float = 2.0

    def __post_init__(self) -> None:
        super().__post_init__()
        url = urlsplit(self.access.server)
        self._host, self._port = url.hostname or "", url.port or 443
        self._context = _tls_context(self.access)
        self.failures: list[FailedRequest] = []

    def operation(self, seq: int) -> Operation:
        invoke = self.timeline.now()
        failure = self._request(invoke)
        complete = self.timeline.now()
        if failure is None:
            return Operation(self.name, "get", self.path, "", invoke, complete, "ok")
        failure = replace(failure, complete=complete)
        with self._lock:
            self.failures.append(failure)
        outcome = "unknown" if failure.reason.startswith("timeout") else "fail"
        return Operation(
            self.name, "get", self.path, "", invoke, complete, outcome, error=failure.reason
        )

    def _request(self, invoke: float) -> FailedRequest | None:
        stage, port = "connect", 0
        conn = http.client.HTTPSConnection(
            self._host, self._port, timeout=self.timeout, context=self._context
        )
        try:
            sock = socket.create_connection((self._host, self._port), timeout=self.timeout)
            port = sock.getsockname()[1]
            stage = "tls"
            conn.sock = self._context.wrap_socket(sock, server_hostname=self._host)
            stage = "request"
            conn.request("GET", self.path, headers={"Connection": "close"})
            stage = "response"
            resp = conn.getresponse()
            body = resp.read()
            if resp.status == 200:
                return None
            return FailedRequest(
                self.name,
                invoke,
                0.0,
                time.time(),
                port,
                f"HTTP {resp.status}",
                classify_status(resp.status, body),
                resp.getheader("Retry-After") or "",
            )
        except (OSError, http.client.HTTPException) as exc:
            reason, detail = classify_exception(exc, stage)
            return FailedRequest(self.name, invoke, 0.0, time.time(), port, reason, detail)
        finally:
            conn.close()

    def failed(self) -> list[FailedRequest]:
        with self._lock:
            return list(self.failures)


def failures_of_operations(ops: Iterable[Operation]) -> list[FailedRequest]:
    """Other clients' failed operations (the consistency workload's API clients) as failed
    requests: they carry less (no port, the error's class name), but each is still one."""
    return [
        FailedRequest(op.client, op.invoke, op.complete, 0.0, 0, op.error or op.outcome)
        for op in ops
        if not op.ok
    ]


def summarize(failures: Iterable[FailedRequest]) -> Mapping[str, int]:
    """How many failures of each reason, most frequent first."""
    counts: dict[str, int] = {}
    for failure in failures:
        counts[failure.reason] = counts.get(failure.reason, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))
