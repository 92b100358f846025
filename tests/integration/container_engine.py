"""A real container engine for the kind target's tests: podman (runc) serving the Docker API,
and node containers made from an image built here from the machine's own Debian packages
(no registry can be reached).

The image holds busybox and iptables, nothing else: enough for exec, signals and iptables
partitions. It stays cached in podman's storage as localhost/kubedrill-node:test.
"""

from __future__ import annotations

import contextlib
import filecmp
import os
import shutil
import subprocess
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DROP_IN_SOURCE = ROOT / "fixtures" / "container-engine" / "kubedrill.conf"
DROP_IN = Path("/etc/containers/containers.conf.d/kubedrill.conf")
SOCKET = Path("/run/kubedrill-podman.sock")
DOCKER_HOST = f"unix://{SOCKET}"
IMAGE = "localhost/kubedrill-node:test"
# Debian packages whose files make the node image: busybox for a shell and tools, iptables and
# the libraries it loads (xtables-nft-multi and its extensions).
IMAGE_PACKAGES = (
    "busybox-static",
    "iptables",
    "libxtables12",
    "libmnl0",
    "libnftnl11",
    "libip4tc2",
    "libip6tc2",
    "libnetfilter-conntrack3",
    "libnfnetlink0",
    "libc6",
)
BUSYBOX_TOOLS = (
    "sh", "sleep", "cat", "echo", "ls", "ps", "kill", "ping", "nc", "grep", "timeout",
    "mkdir", "mv", "rm", "head", "printf", "true", "false", "ip", "test", "[",
)  # fmt: skip
# Pid 1 of a node: exits on SIGTERM (a plain sh as pid 1 would ignore it until the grace ends).
NODE_INIT = ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1 & wait $!; done"]


def podman(
    *args: str, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["podman", *args], capture_output=True, text=True, timeout=timeout, check=check
    )


def ensure_drop_in() -> None:
    """Idempotent: the same file `make container-engine` installs."""
    if DROP_IN.exists() and filecmp.cmp(DROP_IN, DROP_IN_SOURCE, shallow=False):
        return
    DROP_IN.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(DROP_IN_SOURCE, DROP_IN)


@contextlib.contextmanager
def api_service() -> Iterator[str]:
    """`podman system service` on kubedrill's own socket for the session; stopped afterwards."""
    ensure_drop_in()
    before = host_state()
    SOCKET.unlink(missing_ok=True)
    proc = subprocess.Popen(
        ["podman", "system", "service", "--time=0", DOCKER_HOST],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not SOCKET.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if not SOCKET.exists():
            raise RuntimeError(f"podman system service did not create {SOCKET}")
        yield DOCKER_HOST
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        SOCKET.unlink(missing_ok=True)
        restore_host(before)


def package_files(packages: tuple[str, ...]) -> list[Path]:
    listed = subprocess.run(
        ["dpkg", "-L", *packages], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    skip = ("/usr/share/doc", "/usr/share/man", "/usr/share/locale", "/usr/share/lintian")
    return [
        Path(p)
        for p in listed
        if p.startswith("/") and not p.startswith(skip) and not Path(p).is_dir()
    ]


def ensure_image(work: Path) -> float:
    """Build the node image unless podman has it; returns the seconds spent building."""
    if podman("image", "exists", IMAGE, check=False).returncode == 0:
        return 0.0
    started = time.monotonic()
    tarball = work / "rootfs.tar"
    with tarfile.open(tarball, "w") as tar:
        for path in package_files(IMAGE_PACKAGES):
            # Merged /usr: /lib and /bin are links on the host; keep the files under /usr.
            real = path.resolve() if path.parent.is_symlink() else path
            if path.is_symlink() and not path.parent.is_symlink():
                tar.add(path, arcname=str(path).lstrip("/"))
            elif real.exists():
                tar.add(real, arcname=str(path).lstrip("/"))
        for tool in BUSYBOX_TOOLS:
            link = tarfile.TarInfo(f"bin/{tool}")
            link.type, link.linkname = tarfile.SYMTYPE, "/bin/busybox"
            tar.addfile(link)
        for name in ("iptables", "iptables-save", "iptables-restore"):
            link = tarfile.TarInfo(f"usr/sbin/{name}")
            link.type, link.linkname = tarfile.SYMTYPE, "xtables-nft-multi"
            tar.addfile(link)
        for empty in ("tmp", "run", "etc", "proc", "sys", "dev", "var/lib"):
            info = tarfile.TarInfo(empty)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if empty == "tmp" else 0o755
            tar.addfile(info)
    podman("import", "--change", "ENV=PATH=/usr/sbin:/usr/bin:/sbin:/bin", str(tarball), IMAGE)
    tarball.unlink()
    return time.monotonic() - started


@dataclass(frozen=True)
class FakeKindCluster:
    name: str
    network: str
    addresses: dict[str, str]  # container -> IPv4


def start_nodes(name: str, subnet_prefix: str, layout: dict[str, str]) -> FakeKindCluster:
    """Node containers labelled and named like kind's, on a network of their own."""
    network = f"{name}-net"
    podman("network", "create", "--subnet", f"{subnet_prefix}.0/24", network)
    addresses: dict[str, str] = {}
    for index, (container, role) in enumerate(layout.items()):
        address = f"{subnet_prefix}.{10 + index}"
        podman(
            "run", "-d", "--name", container, "--hostname", container,
            "--label", f"io.x-k8s.kind.cluster={name}",
            "--label", f"io.x-k8s.kind.role={role}",
            "--network", network, "--ip", address,
            "--cap-add", "NET_ADMIN", "--cap-add", "NET_RAW",
            # kind publishes the API port of the load balancer on the host's loopback
            *(["-p", "127.0.0.1::6443"] if role == "external-load-balancer" else []),
            IMAGE, *NODE_INIT,
        )  # fmt: skip
        addresses[container] = address
    return FakeKindCluster(name, network, addresses)


def remove_nodes(cluster: FakeKindCluster) -> list[str]:
    """Remove containers and network; returns what could not be removed."""
    for container in cluster.addresses:
        podman("rm", "-f", "-t", "0", container, check=False)
    podman("network", "rm", "-f", cluster.network, check=False)
    return leftovers(cluster)


# What netavark adds to the host the first time a podman network is used, and keeps: its base
# chains (empty once our network is gone) and IP forwarding switched on.
NETAVARK_HOOKS = (
    ("filter", "FORWARD", ("-m", "comment", "--comment", "netavark firewall plugin rules",
                           "-j", "NETAVARK_FORWARD")),
    ("nat", "PREROUTING", ("-m", "addrtype", "--dst-type", "LOCAL", "-j",
                           "NETAVARK-HOSTPORT-DNAT")),
    ("nat", "OUTPUT", ("-m", "addrtype", "--dst-type", "LOCAL", "-j", "NETAVARK-HOSTPORT-DNAT")),
    ("nat", "POSTROUTING", ("-j", "NETAVARK-HOSTPORT-MASQ")),
)  # fmt: skip
NETAVARK_CHAINS = (
    ("filter", "NETAVARK_FORWARD"),
    ("nat", "NETAVARK-HOSTPORT-DNAT"),
    ("nat", "NETAVARK-HOSTPORT-MASQ"),
    ("nat", "NETAVARK-HOSTPORT-SETMARK"),
)
IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")


@dataclass(frozen=True)
class HostState:
    ip_forward: str
    netavark_chains: bool


def host_state() -> HostState:
    rules = subprocess.run(["iptables", "-w", "-S"], capture_output=True, text=True).stdout
    return HostState(IP_FORWARD.read_text().strip(), "NETAVARK_FORWARD" in rules)


def restore_host(before: HostState) -> None:
    """Undo netavark's host changes if they were not there before and podman runs nothing."""
    if podman("ps", "-aq").stdout.strip():
        return  # somebody else's containers use them
    if not before.netavark_chains:
        for table, chain, rule in NETAVARK_HOOKS:
            subprocess.run(["iptables", "-w", "-t", table, "-D", chain, *rule],
                           capture_output=True)  # fmt: skip
        for table, chain in NETAVARK_CHAINS:
            subprocess.run(["iptables", "-w", "-t", table, "-F", chain], capture_output=True)
            subprocess.run(["iptables", "-w", "-t", table, "-X", chain], capture_output=True)
    if IP_FORWARD.read_text().strip() != before.ip_forward:
        IP_FORWARD.write_text(before.ip_forward)


def leftovers(cluster: FakeKindCluster) -> list[str]:
    left = podman(
        "ps", "-a", "--filter", f"label=io.x-k8s.kind.cluster={cluster.name}",
        "--format", "{{.Names}}",
    ).stdout.split()  # fmt: skip
    nets = podman("network", "ls", "--format", "{{.Name}}").stdout.split()
    return [f"container {c}" for c in left] + [f"network {n}" for n in nets if n == cluster.network]


def engine_available() -> str:
    """'' when podman can be used here, else why not."""
    if os.geteuid() != 0:
        return "needs root"
    if shutil.which("podman") is None or shutil.which("runc") is None:
        return "podman/runc not installed (make setup installs them)"
    return ""
