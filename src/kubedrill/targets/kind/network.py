"""kubedrill's own podman network for one kind cluster, on a fixed IPv4 subnet.

kind's podman provider creates a network named `kind` on a subnet podman picks; the node
addresses can only be pinned on a subnet known in advance, so kubedrill makes the network itself
(`kind-kubedrill-<cluster>`, labelled with the cluster) and points kind at it with
KIND_EXPERIMENTAL_PODMAN_NETWORK. It is IPv4 only (kind's IPv4 clusters need nothing more) with
DNS on: the nodes find each other by name through aardvark-dns. Dynamic addresses come from the
upper half of the subnet, away from the pinned ones.

Before anything is created the subnet is checked against every podman network and every address
and route on the host; a name or subnet in use is a ConfigError, and nothing is touched.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
from dataclasses import dataclass
from typing import Any

from kubedrill.errors import ConfigError, TargetError

LABEL = "io.kubedrill.kind-cluster"


def network_name(cluster: str) -> str:
    """`kind-kubedrill-<cluster>`, dots made dashes: kind looks the network up with the name
    regex-quoted (`podman network inspect a\\.b`), which podman does not find."""
    return f"kind-kubedrill-{cluster.replace('.', '-')}"


def _podman(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        ["podman", *args], capture_output=True, text=True, timeout=120, check=False
    )
    if check and done.returncode != 0:
        raise TargetError(
            f"`podman {' '.join(args[:3])}` exited {done.returncode}: {done.stderr.strip()[-500:]}",
            "check podman (`podman info`)",
        )
    return done


@dataclass(frozen=True)
class ExistingNetwork:
    name: str
    subnets: tuple[str, ...]
    labels: dict[str, str]


def podman_networks() -> list[ExistingNetwork]:
    names = _podman("network", "ls", "--format", "{{.Name}}").stdout.split()
    if not names:
        return []
    data: list[dict[str, Any]] = json.loads(_podman("network", "inspect", *names).stdout)
    return [
        ExistingNetwork(
            str(n.get("name", "")),
            tuple(str(s["subnet"]) for s in n.get("subnets") or []),
            {str(k): str(v) for k, v in (n.get("labels") or {}).items()},
        )
        for n in data
    ]


def host_networks() -> list[tuple[str, str]]:
    """(network, where) for every IPv4 address and route on the host, default route excluded."""
    found: list[tuple[str, str]] = []
    addrs: list[dict[str, Any]] = json.loads(
        subprocess.run(["ip", "-j", "-4", "addr"], capture_output=True, text=True,
                       check=True).stdout or "[]"
    )  # fmt: skip
    for link in addrs:
        for info in link.get("addr_info", []):
            net = ipaddress.ip_network(f"{info['local']}/{info['prefixlen']}", strict=False)
            found.append((str(net), f"address {info['local']} on {link.get('ifname')}"))
    routes: list[dict[str, Any]] = json.loads(
        subprocess.run(["ip", "-j", "-4", "route", "show", "table", "all"], capture_output=True,
                       text=True, check=True).stdout or "[]"
    )  # fmt: skip
    for route in routes:
        dst = str(route.get("dst", ""))
        if dst in ("", "default") or route.get("type") in ("broadcast", "local"):
            continue
        try:
            net = ipaddress.ip_network(dst, strict=False)
        except ValueError:
            continue
        found.append((str(net), f"route {dst} via {route.get('dev', '?')}"))
    return found


def overlaps(subnet: str, others: list[tuple[str, str]]) -> list[str]:
    """Descriptions of every entry of `others` ((network, where)) that overlaps `subnet`."""
    mine = ipaddress.ip_network(subnet)
    hits = []
    for other, where in others:
        net = ipaddress.ip_network(other, strict=False)
        if net.version == mine.version and net.overlaps(mine):
            hits.append(where)
    return hits


def check_free(name: str, subnet: str, cluster: str) -> bool:
    """ConfigError unless `name` and `subnet` are free; True when the network exists already as
    kubedrill's for this very cluster on this subnet (left by an interrupted `kind up`)."""
    networks = podman_networks()
    for net in networks:
        if net.name == name:
            if net.labels.get(LABEL) == cluster and net.subnets == (subnet,):
                return True
            raise ConfigError(
                f"podman network {name} exists and is not kubedrill's network for {cluster} "
                f"on {subnet}",
                f"remove it if it is yours (`podman network rm {name}`) or pick another "
                "cluster name",
            )
    others = [(s, f"podman network {n.name}") for n in networks for s in n.subnets]
    others += host_networks()
    hits = overlaps(subnet, others)
    if hits:
        free = suggest_free(others)
        raise ConfigError(
            f"subnet {subnet} collides with {hits[0]}"
            + (f" (and {len(hits) - 1} more)" if len(hits) > 1 else ""),
            f"pick a free private /24 with --subnet{f', e.g. --subnet {free}' if free else ''}",
        )
    return False


def suggest_free(others: list[tuple[str, str]]) -> str | None:
    """The first of 10.213.40.0/24 .. 10.213.99.0/24 that overlaps nothing in `others`."""
    for third in range(40, 100):
        candidate = f"10.213.{third}.0/24"
        if not overlaps(candidate, others):
            return candidate
    return None


def create(name: str, subnet: str, gateway: str, cluster: str) -> None:
    net = ipaddress.ip_network(subnet)
    # Dynamic addresses (none are expected: every node is pinned) from the upper half only.
    upper = list(net.subnets(prefixlen_diff=1))[1]
    _podman(
        "network", "create", "--driver", "bridge", "--subnet", subnet, "--gateway", gateway,
        "--ip-range", str(upper), "--label", f"{LABEL}={cluster}", name,
    )  # fmt: skip


def remove(name: str, cluster: str) -> str:
    """Remove kubedrill's network of `cluster`; a message saying what happened."""
    found = next((n for n in podman_networks() if n.name == name), None)
    if found is None:
        return f"podman network {name} already gone"
    if found.labels.get(LABEL) != cluster:
        return f"podman network {name} is not kubedrill's for {cluster}: left as it is"
    done = _podman("network", "rm", name, check=False)
    if done.returncode != 0:
        raise TargetError(
            f"cannot remove podman network {name}: {done.stderr.strip()[-300:]}",
            f"see what still uses it: podman ps -a --filter network={name}",
        )
    return f"removed podman network {name}"
