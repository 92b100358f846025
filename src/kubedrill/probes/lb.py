"""The load balancer's own view of its apiserver backends, by node name: 'UP' or 'DOWN'.

Two readers, one answer shape, so a drill asks `backend_is(node, "DOWN")` the same way on every
target:
- `HaproxySocket`: HAProxy's stats socket (`show stat`), the lab's LB and an SSH target's;
- `EnvoyAdmin`: Envoy's admin `/clusters` text, the external load balancer of a kind HA cluster
  (kind's Envoy, or the compatible proxy in kubedrill's node-image build). Envoy names backends
  by address, so the reader maps addresses back to node names.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import requests


class LoadBalancerView(Protocol):
    def states(self) -> dict[str, str]:
        """Backend node -> 'UP' | 'DOWN' (HAProxy's transitional states keep their first word).
        Raises OSError or requests.RequestException when the LB cannot be asked."""
        ...


@dataclass(frozen=True)
class HaproxySocket:
    path: Path
    backend: str = "kube-apiserver"

    def states(self) -> dict[str, str]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(2)
            sock.connect(str(self.path))
            sock.sendall(b"show stat\n")
            chunks = []
            while data := sock.recv(65536):
                chunks.append(data)
        return parse_haproxy_stat(b"".join(chunks).decode(), self.backend)


def parse_haproxy_stat(text: str, backend: str) -> dict[str, str]:
    lines = text.splitlines()
    if not lines:
        return {}
    header = lines[0].lstrip("# ").split(",")
    states: dict[str, str] = {}
    for line in lines[1:]:
        row = dict(zip(header, line.split(","), strict=False))
        if row.get("pxname") == backend and row.get("svname") not in ("FRONTEND", "BACKEND"):
            states[row["svname"]] = row.get("status", "").split(" ")[0]
    return states


@dataclass(frozen=True)
class EnvoyAdmin:
    url: str  # e.g. http://10.213.40.10:10000
    names: Mapping[str, str] = field(default_factory=dict)  # address or host -> node name
    cluster: str = "kube_apiservers"
    timeout: float = 1.0

    def states(self) -> dict[str, str]:
        resp = requests.get(f"{self.url}/clusters", timeout=self.timeout)
        resp.raise_for_status()
        return parse_envoy_clusters(resp.text, self.cluster, self.names)


def parse_envoy_clusters(text: str, cluster: str, names: Mapping[str, str]) -> dict[str, str]:
    """`kube_apiservers::10.0.0.2:6443::health_flags::healthy` lines -> {node: 'UP'|'DOWN'}.

    Envoy prints `healthy` or a list of failure flags (`/failed_active_hc`, `/pending_active_hc`
    ...); anything but `healthy` means the proxy would not send a new connection there."""
    states: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split("::")
        if len(parts) != 4 or parts[0] != cluster or parts[2] != "health_flags":
            continue
        host = parts[1].rsplit(":", 1)[0].strip("[]")
        node = names.get(host, host)
        states[node] = "UP" if parts[3].strip() == "healthy" else "DOWN"
    return states


@dataclass(frozen=True)
class FirstAnswering:
    """The LBs of a keepalived pair: both check the same backends, so the first that answers
    speaks for them (one may be down: that is what the pair is for)."""

    views: tuple[LoadBalancerView, ...]

    def states(self) -> dict[str, str]:
        error: Exception = OSError("no load balancer to ask")
        for view in self.views:
            try:
                return view.states()
            except (OSError, requests.RequestException) as exc:
                error = exc
        raise error
