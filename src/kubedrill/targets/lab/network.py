"""Lab hosts as network namespaces on one bridge; the bridge address is kubedrill's own seat.

Everything is named from the lab name (bridge kd-<lab>, namespaces kd-<lab>-<host>, host-side
veths kdv-<lab>-<n>) so that `down` can find and delete exactly what `up` made.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from kubedrill.errors import CommandError, ConfigError

HOST_OFFSET = 11  # first host gets .11; .1 is the bridge (kubedrill itself)


@dataclass(frozen=True)
class HostPlan:
    name: str
    address: str
    netns: str
    veth: str


@dataclass(frozen=True)
class NetworkPlan:
    lab: str
    bridge: str
    gateway: str
    prefixlen: int
    hosts: tuple[HostPlan, ...]


def plan_network(lab: str, subnet: str, host_names: Sequence[str]) -> NetworkPlan:
    net = ipaddress.IPv4Network(subnet)
    # Hosts take .11 upwards; the last address is the broadcast address.
    if HOST_OFFSET + len(host_names) > net.num_addresses - 1:
        raise ConfigError(
            f"lab.subnet {subnet} has no room for {len(host_names)} hosts", "use a /24"
        )
    hosts = tuple(
        HostPlan(
            name=name,
            address=str(net.network_address + HOST_OFFSET + i),
            netns=f"kd-{lab}-{name}",
            veth=f"kdv-{lab}-{i}",
        )
        for i, name in enumerate(host_names)
    )
    return NetworkPlan(lab, f"kd-{lab}", str(net.network_address + 1), net.prefixlen, hosts)


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise CommandError("local", ["ip", *args], proc.returncode, proc.stdout, proc.stderr)
    return proc


def existing_netns() -> set[str]:
    out = _ip("-j", "netns", "list", check=False).stdout.strip()
    return {entry["name"] for entry in json.loads(out)} if out else set()


NETNS_DIR = Path("/run/netns")


def namespace_pids(lab: str) -> dict[int, str]:
    """Every process inside one of the lab's namespaces, with that namespace (what `ip netns
    pids` tells, for all of them in one pass over /proc instead of one `ip` per namespace)."""
    inodes: dict[tuple[int, int], str] = {}
    for ns in existing_netns():
        if ns.startswith(f"kd-{lab}-"):
            with contextlib.suppress(OSError):
                st = (NETNS_DIR / ns).stat()
                inodes[st.st_dev, st.st_ino] = ns
    found: dict[int, str] = {}
    if not inodes:
        return found
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            st = (Path(entry.path) / "ns" / "net").stat()
            owner = inodes.get((st.st_dev, st.st_ino))
            if owner is not None:
                found[int(entry.name)] = owner
    return found


def link_exists(name: str) -> bool:
    return _ip("link", "show", "dev", name, check=False).returncode == 0


def check_subnet_free(plan: NetworkPlan, subnet: str) -> None:
    """Refuse a subnet that overlaps a route we did not make: lab traffic must stay in the lab."""
    net = ipaddress.IPv4Network(subnet)
    routes = json.loads(_ip("-j", "-4", "route", "show", "table", "all").stdout or "[]")
    for route in routes:
        dst, dev = route.get("dst", ""), route.get("dev", "")
        if (
            dev == plan.bridge
            or dst in ("", "default")
            or route.get("type") in ("local", "broadcast")
        ):
            continue
        try:
            other = ipaddress.ip_network(dst, strict=False)
        except ValueError:
            continue
        if isinstance(other, ipaddress.IPv4Network) and net.overlaps(other):
            raise ConfigError(
                f"lab.subnet {subnet} overlaps the route {dst} on {dev or '?'}",
                "choose a free subnet in the lab config (lab.subnet) or with --subnet",
            )


def create(plan: NetworkPlan) -> None:
    """Idempotent: pieces that already exist are kept."""
    if not link_exists(plan.bridge):
        _ip("link", "add", plan.bridge, "type", "bridge")
        _ip("addr", "add", f"{plan.gateway}/{plan.prefixlen}", "dev", plan.bridge)
    _ip("link", "set", plan.bridge, "up")
    have = existing_netns()
    for host in plan.hosts:
        if host.netns not in have:
            _ip("netns", "add", host.netns)
        if not link_exists(host.veth):
            _ip(
                "link",
                "add",
                host.veth,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                host.netns,
            )
            _ip("-n", host.netns, "addr", "add", f"{host.address}/{plan.prefixlen}", "dev", "eth0")
        _ip("link", "set", host.veth, "master", plan.bridge, "up")
        _ip("-n", host.netns, "link", "set", "lo", "up")
        _ip("-n", host.netns, "link", "set", "eth0", "up")


def destroy(lab: str) -> list[str]:
    """Delete every namespace and link of this lab (found by name, even if the state is lost)."""
    removed: list[str] = []
    for ns in sorted(existing_netns()):
        if ns.startswith(f"kd-{lab}-"):
            _ip("netns", "del", ns, check=False)
            removed.append(f"netns {ns}")
    links = json.loads(_ip("-j", "link", "show", check=False).stdout or "[]")
    for link in links:
        name = link.get("ifname", "")
        if name == f"kd-{lab}" or name.startswith(f"kdv-{lab}-"):
            _ip("link", "del", name, check=False)
            removed.append(f"link {name}")
    return removed
