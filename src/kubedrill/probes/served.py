"""Which certificate a control-plane node's ports serve right now: a fresh TLS handshake with
the apiserver, the etcd client port or the etcd peer port, the leaf's serial and notAfter read
from it (kubedrill's own probe, as blackbox_exporter's `probe_ssl_earliest_cert_expiry`).

A fresh connection each time: a renewed certificate is only ever served to new handshakes, and
an expired one only fails new handshakes (connections made before keep working)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from kubedrill.audit.certs import Endpoint, ServedCert, served_cert
from kubedrill.cluster import Cluster, Node
from kubedrill.probes.metrics import ScrapeResult, ScrapeTarget, SeriesKey, series_key

APISERVER_PORT = 6443
# What serves which certificate kind (targets/lab/certs.py names the kinds).
SERVED_KINDS = ("apiserver", "etcd-server", "etcd-peer")


@dataclass(frozen=True)
class ServedPort:
    kind: str
    node: str
    endpoint: Endpoint


def served_port(cluster: Cluster, node: Node, kind: str) -> ServedPort:
    port = {
        "apiserver": APISERVER_PORT,
        "etcd-server": cluster.etcd.client_port,
        "etcd-peer": cluster.etcd.peer_port,
    }[kind]
    return ServedPort(kind, node.name, Endpoint(f"{node.name} {kind}", node.address, port))


def served_ports(cluster: Cluster) -> list[ServedPort]:
    """Every port of the cluster that serves a certificate: each etcd member's client and peer
    ports, each control-plane node's apiserver."""
    ports = [
        served_port(cluster, node, kind)
        for node in cluster.with_role("etcd")
        for kind in ("etcd-server", "etcd-peer")
    ]
    if cluster.kube is not None:
        ports += [served_port(cluster, n, "apiserver") for n in cluster.with_role("control-plane")]
    return ports


def read(cluster: Cluster, port: ServedPort, timeout: float = 2.0) -> ServedCert:
    """The certificate `port` serves, with the etcd client cert offered when the server asks
    for one (etcd's peer port does)."""
    return served_cert(port.endpoint, cluster.etcd.tls, timeout=timeout)


# Seconds from the handshake to the served leaf's notAfter (negative once it has expired).
# A gauge of seconds left rather than blackbox_exporter's absolute `probe_ssl_earliest_cert_
# expiry`: promtool replays a drill's series from test time 0, with held states inserted, so
# `time()` there is not the wall clock a notAfter timestamp would need.
EXPIRY_METRIC = "kubedrill_tls_cert_expiry_seconds"


class ServedCertProbe:
    """Every served port's certificate as a scrape target of the metrics recorder: one fresh
    handshake per port and round, `kubedrill_tls_cert_expiry_seconds{instance, node, kind}`
    for each that answered. A port that did not answer has no sample (its component's own
    `up` says it is down)."""

    target = ScrapeTarget(
        job="kubedrill-tls", node="kubedrill", instance="kubedrill", url="", keep={}
    )

    def __init__(self, cluster: Cluster, timeout: float = 0.8) -> None:
        self.cluster = cluster
        self.ports = served_ports(cluster)
        self.timeout = timeout
        # Concurrent handshakes: a partitioned node's ports time out together, not in turn.
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, len(self.ports)), thread_name_prefix="served-cert"
        )

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def scrape(self) -> ScrapeResult:
        started, cpu = time.perf_counter(), time.thread_time()
        samples: dict[SeriesKey, float] = {}
        found = self._pool.map(lambda p: read(self.cluster, p, timeout=self.timeout), self.ports)
        for port, cert in zip(self.ports, found, strict=True):
            if cert.not_after is None:
                continue
            labels = {
                "job": self.target.job,
                "instance": f"{port.endpoint.host}:{port.endpoint.port}",
                "node": port.node,
                "kind": port.kind,
            }
            left = cert.not_after.timestamp() - time.time()
            samples[series_key(EXPIRY_METRIC, labels)] = round(left, 1)
        return ScrapeResult(
            self.target,
            True,
            samples,
            time.perf_counter() - started,
            time.thread_time() - cpu,
            mode="api",
        )
