"""The lab's per-host certificates by what they are for, and renewing one in place.

A kind names one certificate of one control-plane host: the apiserver's serving cert, the etcd
member's client-port (server) and peer certs, the controller-manager's and the scheduler's
client certs (their kubeconfigs point at the files). Renewal keeps the key and replaces the
cert file with one rename (`pki.renew`); `kubedrill certs renew` runs it, so that a drill's
step, the expiry fault's undo and a person all do the same thing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from kubedrill.errors import ConfigError
from kubedrill.targets.lab import pki

# kind -> (PKI subdirectory, file name pattern, the component that uses it)
KINDS: dict[str, tuple[str, str, str]] = {
    "apiserver": ("kubernetes", "apiserver-{host}", "kube-apiserver"),
    "etcd-server": ("etcd", "{host}-server", "etcd"),
    "etcd-peer": ("etcd", "{host}-peer", "etcd"),
    "controller-manager": ("kubernetes", "controller-manager-{host}", "kube-controller-manager"),
    "scheduler": ("kubernetes", "scheduler-{host}", "kube-scheduler"),
}


@dataclass(frozen=True)
class LabCert:
    kind: str
    host: str
    pair: pki.CertPair
    ca_dir: Path
    component: str

    def current(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.pair.cert.read_bytes())


def lab_cert(state_dir: Path, host: str, kind: str) -> LabCert:
    """The certificate `kind` of `host` in the lab at `state_dir`; ConfigError when the lab
    has no such file (another topology, a host without that component, a lab made before
    certificates were per host)."""
    if kind not in KINDS:
        raise ConfigError(f"unknown certificate kind {kind!r}", f"use one of: {', '.join(KINDS)}")
    sub, pattern, component = KINDS[kind]
    ca_dir = state_dir / "pki" / sub
    name = pattern.format(host=host)
    pair = pki.CertPair(ca_dir / f"{name}.crt", ca_dir / f"{name}.key")
    if not pair.cert.is_file() or not pair.key.is_file():
        raise ConfigError(
            f"the lab at {state_dir} has no {kind} certificate for {host} ({pair.cert})",
            "name a host that runs the component (kubedrill lab status), or recreate the lab",
        )
    return LabCert(kind, host, pair, ca_dir, component)


def renew(cert: LabCert, validity: dt.timedelta) -> x509.Certificate:
    """A new serial, valid from 5 minutes ago for `validity` (a short one is how the expiry
    drill makes a certificate that expires under it)."""
    if validity <= dt.timedelta(0):
        raise ConfigError(f"validity {validity} is not positive", "give a positive duration")
    return pki.renew(pki.load_authority(cert.ca_dir), cert.pair, validity)


def lab_validity(state_dir: Path) -> dt.timedelta:
    """How long the lab's certificates are issued for (`lab.cert_validity_days`): what a heal
    renews to. Read from the CA-signed cert the lab made first, the etcd client's."""
    made = x509.load_pem_x509_certificate(
        (state_dir / "pki" / "etcd" / "kubedrill-client.crt").read_bytes()
    )
    # Issued valid from 5 minutes before it was made (pki.issue).
    return made.not_valid_after_utc - made.not_valid_before_utc - dt.timedelta(minutes=5)
