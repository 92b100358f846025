"""Kubernetes probes: readiness through the load balancer, Lease holders, HAProxy's view."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import requests
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from kubedrill.cluster import KubeAccess


def api_client(access: KubeAccess) -> k8s.ApiClient:
    configuration = k8s.Configuration()
    k8s_config.load_kube_config(
        config_file=str(access.kubeconfig), client_configuration=configuration
    )
    configuration.retries = 0  # probes measure; they must not hide failures behind retries
    return k8s.ApiClient(configuration)


class ReadyzProbe:
    """GET /readyz, through the load balancer or on one apiserver, with a short timeout."""

    def __init__(self, access: KubeAccess, timeout: float = 1.0) -> None:
        self.access = access
        self.timeout = timeout
        self.session = requests.Session()
        self.session.trust_env = False  # never through a proxy; the lab's CA only
        self.session.verify = str(access.ca)
        self.session.cert = (str(access.cert), str(access.key))

    def ready(self, server: str | None = None) -> bool:
        try:
            resp = self.session.get(f"{server or self.access.server}/readyz", timeout=self.timeout)
        except requests.RequestException:
            return False
        return resp.status_code == 200

    def close(self) -> None:
        self.session.close()


def lease_holder(
    api: k8s.ApiClient, name: str, namespace: str = "kube-system"
) -> tuple[str | None, int]:
    """(node holding the Lease, leaseTransitions). Identities are '<hostname>_<uuid>'."""
    try:
        lease: Any = k8s.CoordinationV1Api(api).read_namespaced_lease(
            name, namespace, _request_timeout=2
        )
    except Exception:
        return None, -1
    identity = lease.spec.holder_identity or ""
    return (identity.split("_", 1)[0] or None), int(lease.spec.lease_transitions or 0)


def haproxy_servers(sock_path: Path) -> dict[str, str]:
    """Backend server -> state as HAProxy sees it ('UP', 'DOWN', 'UP 1/2', ...)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(2)
        sock.connect(str(sock_path))
        sock.sendall(b"show stat\n")
        chunks = []
        while True:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
    states: dict[str, str] = {}
    lines = b"".join(chunks).decode().splitlines()
    if not lines:
        return states
    header = lines[0].lstrip("# ").split(",")
    for line in lines[1:]:
        row = dict(zip(header, line.split(","), strict=False))
        if row.get("pxname") == "kube-apiserver" and row.get("svname") not in (
            "FRONTEND",
            "BACKEND",
        ):
            states[row["svname"]] = row.get("status", "")
    return states
