"""Which Kubernetes releases the lab runs, and the etcd each is paired with.

The pairing follows kubeadm: each release's cmd/kubeadm/app/constants/constants.go maps
Kubernetes minors to the etcd it deploys (SupportedEtcdVersion, read through
EtcdSupportedVersion, which falls back to the nearest minor for one the map lacks). kubedrill
takes that etcd *line* at its newest patch the module proxy serves, as it does for the default:

| Kubernetes | kubeadm's etcd      | the lab's etcd |
| ---------- | ------------------- | -------------- |
| v1.34.4    | 3.6.5-0             | v3.6.16        |
| v1.35.4    | 3.6.6-0             | v3.6.16        |
| v1.36.3    | 3.6.8-0             | v3.6.16        |
| v1.37.2    | 3.7.0-0 (nearest)   | v3.7.3         |

The default is the newest minor in upstream support at its newest patch; the previous minor is
what the scheduled game day runs beside it. A release outside the table needs lab.etcd.version.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kubedrill.errors import ConfigError


@dataclass(frozen=True)
class Release:
    """One Kubernetes release the lab is built and drilled on, with its etcd."""

    kubernetes: str
    etcd: str

    @property
    def minor(self) -> int:
        return minor_of(self.kubernetes)


# Oldest first. Each minor at its newest patch the module proxy serves.
RELEASES: tuple[Release, ...] = (
    Release("v1.34.4", "v3.6.16"),
    Release("v1.35.4", "v3.6.16"),
    Release("v1.36.3", "v3.6.16"),
    Release("v1.37.2", "v3.7.3"),
)
DEFAULT = RELEASES[-1]
# The minor the scheduled game day runs beside the default, and the upgrade drill starts from.
PREVIOUS = RELEASES[-2]

_VERSION = re.compile(r"^v?1\.(?P<minor>\d+)\.\d+(-[0-9A-Za-z.-]+)?$")


def minor_of(version: str) -> int:
    """v1.37.2 -> 37; anything not a Kubernetes 1.x.y release is a ConfigError."""
    match = _VERSION.match(version)
    if match is None:
        raise ConfigError(
            f"lab.kubernetes.version {version!r} is not a Kubernetes release",
            f"use a version like {DEFAULT.kubernetes}",
        )
    return int(match["minor"])


def paired_etcd(kubernetes_version: str) -> str:
    """The etcd the lab runs with `kubernetes_version` (same minor in RELEASES)."""
    minor = minor_of(kubernetes_version)
    for release in RELEASES:
        if release.minor == minor:
            return release.etcd
    known = ", ".join(f"1.{r.minor}" for r in RELEASES)
    raise ConfigError(
        f"no etcd is paired with Kubernetes {kubernetes_version} (known minors: {known})",
        "set lab.etcd.version to the etcd kubeadm pairs with that release",
    )


def release_for(minor: int) -> Release:
    """The pinned release of a minor (e.g. 36 -> v1.36.3)."""
    for release in RELEASES:
        if release.minor == minor:
            return release
    known = ", ".join(f"1.{r.minor}" for r in RELEASES)
    raise ConfigError(f"Kubernetes 1.{minor} is not pinned", f"use one of: {known}")
