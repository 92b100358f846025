"""Certificates as the endpoints serve them: a TLS handshake with every apiserver (and the
load balancer in front of them) and every etcd member's client and peer port, the leaf
certificate read from the handshake. No key or certificate file is read on any node, so it
works the same on every target; nothing but the public certificate is looked at or logged.

Judged: expired or expiring within 7 days fails, within 30 days warns (the seed rotates every
90 days).
"""

from __future__ import annotations

import datetime as dt
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from cryptography import x509

from kubedrill.audit.finding import Judgement, worst
from kubedrill.cluster import TLSFiles

FAIL_DAYS = 7
WARN_DAYS = 30


@dataclass(frozen=True)
class Endpoint:
    name: str  # "control-1 etcd client"
    host: str
    port: int

    @classmethod
    def of_url(cls, name: str, url: str, default_port: int) -> Endpoint:
        parts = urlsplit(url)
        return cls(name, parts.hostname or "", parts.port or default_port)


@dataclass(frozen=True)
class ServedCert:
    endpoint: Endpoint
    subject: str = ""
    not_after: dt.datetime | None = None
    error: str = ""  # the handshake failed: why
    serial: int = 0  # tells a renewed certificate from the one before


def _handshake(endpoint: Endpoint, client: TLSFiles | None, timeout: float) -> bytes:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # we read the certificate; we do not trust it
    if client is not None:
        context.load_cert_chain(str(client.cert), str(client.key))
    with (
        socket.create_connection((endpoint.host, endpoint.port), timeout=timeout) as raw,
        context.wrap_socket(raw) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    if not der:
        raise ssl.SSLError("the endpoint sent no certificate")
    return der


def served_cert(
    endpoint: Endpoint, client: TLSFiles | None = None, timeout: float = 5.0
) -> ServedCert:
    """The endpoint's leaf certificate. First without a client certificate (a TLS 1.3 server
    has sent its certificate before it asks for ours); then, if the server refused that, with
    the cluster's client certificate when there is one."""
    errors: list[str] = []
    for present in (None, client) if client is not None else (None,):
        try:
            der = _handshake(endpoint, present, timeout)
        except (OSError, ssl.SSLError) as exc:
            errors.append(f"{type(exc).__name__}: {exc}"[:160])
            continue
        cert = x509.load_der_x509_certificate(der)
        return ServedCert(
            endpoint,
            cert.subject.rfc4514_string(),
            cert.not_valid_after_utc,
            serial=cert.serial_number,
        )
    return ServedCert(endpoint, error="; ".join(errors))


def judge_certs(certs: Sequence[ServedCert], now: dt.datetime) -> Judgement:
    if not certs:
        return Judgement(
            "warn", "no TLS endpoint to look at", "give kubedrill the cluster's endpoints"
        )
    lines: list[tuple[str, str]] = []
    for c in certs:
        where = f"{c.endpoint.name} {c.endpoint.host}:{c.endpoint.port}"
        if c.not_after is None:
            lines.append(("fail", f"{where}: no TLS handshake ({c.error})"))
            continue
        days = (c.not_after - now).total_seconds() / 86400
        status = "fail" if days <= FAIL_DAYS else "warn" if days <= WARN_DAYS else "pass"
        when = f"expired {-days:.1f} days ago" if days < 0 else f"expires in {days:.1f} days"
        lines.append((status, f"{where}: {c.subject} {when} ({c.not_after:%Y-%m-%d %H:%M} UTC)"))
    status = worst(s for s, _ in lines)  # type: ignore[misc]
    dated = [c for c in certs if c.not_after is not None]
    soonest = min(dated, key=lambda c: c.not_after or now) if dated else None
    details = tuple(f"{s.upper():4s} {line}" for s, line in lines)
    bad = [line for s, line in lines if s == status]
    if status == "pass" and soonest is not None and soonest.not_after is not None:
        days = (soonest.not_after - now).total_seconds() / 86400
        evidence = (
            f"{len(certs)} endpoints; soonest expiry in {days:.0f} days "
            f"({soonest.endpoint.name}, {soonest.not_after:%Y-%m-%d})"
        )
        return Judgement("pass", evidence, "", details)
    evidence = f"{len(bad)} of {len(certs)} endpoints: {bad[0]}"
    unreachable = any("no TLS handshake" in b for b in bad)
    fix = (
        "bring the unreachable endpoints back (or fix the endpoint list), then audit again"
        if unreachable
        else f"renew these certificates now (kubeadm: `kubeadm certs renew all`, then restart "
        f"the static pods) and rotate them before {WARN_DAYS} days are left"
    )
    return Judgement(status, evidence, fix, details)
