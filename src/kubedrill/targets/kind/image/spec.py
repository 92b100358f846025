"""What the kubedrill kind node image is made of: pinned versions, the Debian suite and packages.

Everything here feeds the image's inputs hash (see hashing.py), so changing a version or a
package rebuilds the image, and nothing else does.
"""

from __future__ import annotations

from kubedrill.targets.lab import versions

# The node image stays on 1.34 while the lab defaults to a newer minor: 1.35+ kubelets refuse
# cgroup v1 (this machine's) unless failCgroupV1 is false, and 1.36+ may not support Debian
# bookworm's containerd 1.6 (README: Versions).
KUBERNETES_VERSION = "v1.34.4"
ETCD_VERSION = versions.paired_etcd(KUBERNETES_VERSION)

# bookworm, not a newer Debian: systemd >= 256 refuses to boot on cgroup v1, which this machine
# (and many CI hosts) still has.
SUITE = "bookworm"

# minbase + what a kind node runs. `--no-install-recommends`: no editors, no docs tooling.
PACKAGES: tuple[str, ...] = (
    "ca-certificates",
    "conntrack",
    "containerd",
    "containernetworking-plugins",
    "curl",
    "dbus",
    "ebtables",
    "ethtool",
    "iproute2",
    "iptables",
    "kmod",
    "mount",
    "openssh-server",  # installed for the SSH target; not enabled (see rootfs.py)
    "procps",
    "runc",
    "socat",
    "systemd",
    "systemd-sysv",
    "util-linux",
)

# Packages whose files (with their dependencies) make kube-proxy's image: it runs iptables.
KUBE_PROXY_PACKAGES: tuple[str, ...] = ("iptables", "conntrack")

CRI_TOOLS_VERSION = "v1.34.0"
# CoreDNS at the version kubeadm asks for, built from its Go module with the default plugins.
WITH_COREDNS = True
# The kind CLI built for the image's clusters; equal to kubedrill.targets.kind.cli.KIND_VERSION
# (a test checks it; imported from there it would make an import cycle once the CLI registers
# `kind image`).
KIND_VERSION = "v0.33.0"
__all__ = [
    "CRI_TOOLS_VERSION",
    "ETCD_VERSION",
    "KIND_VERSION",
    "KUBERNETES_VERSION",
    "KUBE_PROXY_PACKAGES",
    "PACKAGES",
    "SUITE",
    "WITH_COREDNS",
]
