"""Lab configuration: defaults from the seed document, overridable by a YAML file.

Parsing is strict: an unknown or malformed field is an error that names the field, so that a
typo never silently falls back to a default during a game day.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from kubedrill.errors import ConfigError
from kubedrill.yaml_file import load_yaml_file

# Pinned: newest patch of the etcd 3.6 line, the line kubeadm pairs with Kubernetes 1.34.
ETCD_VERSION = "v3.6.16"
# etcd: an etcd cluster only. stacked: the seed's mode 1 (etcd, apiserver, controller-manager
# and scheduler on each control-plane host, HAProxy in front). external: the seed's mode 2
# (etcd on hosts of its own).
TOPOLOGIES = ("etcd", "stacked", "external")
_NAME = re.compile(r"^[a-z][a-z0-9]{0,7}$")


def default_cache_dir() -> Path:
    """Built binaries live outside any checkout so that every clone (and CI) reuses them."""
    explicit = os.environ.get("KUBEDRILL_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "kubedrill"


@dataclass(frozen=True)
class EtcdSettings:
    """etcd flags (the seed's section 3: heartbeat 100 ms, election 1 s, snapshot 10k...)."""

    version: str = ETCD_VERSION
    heartbeat_interval_ms: int = 100
    election_timeout_ms: int = 1000
    snapshot_count: int = 10000
    quota_backend_bytes: int = 8 * 1024**3
    max_request_bytes: int = 10 * 1024**2
    max_txn_ops: int = 10000
    auto_compaction_retention: str = "1h"
    client_port: int = 2379
    peer_port: int = 2380
    metrics_port: int = 2381
    extra_flags: tuple[str, ...] = ()
    # An etcd built with gofail failpoints (cached as etcd-<version>-failpoints), each member
    # serving them on its own address and `failpoints_port` (GOFAIL_HTTP): the slow and
    # crashing disk drills need it. Off by default: the normal build is the default.
    failpoints: bool = False
    failpoints_port: int = 22381


@dataclass(frozen=True)
class KubernetesSettings:
    """The Kubernetes control plane (topologies stacked and external)."""

    version: str = "v1.34.4"  # pinned; etcd v3.6 is the line kubeadm pairs with 1.34
    kwok_version: str = "v0.8.0"
    control_planes: int = 3
    workers: int = 3  # kwok-managed worker Nodes
    service_cidr: str = "10.96.0.0/12"
    lb_check_inter_ms: int = 2000  # the seed's HAProxy health check: inter 2000 fall 3 rise 2
    lb_check_fall: int = 3
    lb_check_rise: int = 2
    lease_duration_s: int = 15  # controller-manager/scheduler leader election (seed: 15/10)
    renew_deadline_s: int = 10
    retry_period_s: int = 2


# What serves the API in front of the apiservers: HAProxy (active /readyz checks) or nginx's
# stream module (the seed's other example; open-source nginx has passive checks only).
LB_KINDS = ("haproxy", "nginx")


@dataclass(frozen=True)
class LoadBalancerSettings:
    """The load balancer in front of the apiservers: one host (`lb`, the default) or a pair
    (`lb-1`, `lb-2`) running keepalived, which holds a virtual IP on the lab subnet (the
    seed's `VIP: apiserver.cluster.local`); the lab's kubeconfigs then point at the VIP.

    keepalived's health script (the seed's check-apiserver.sh: GET /healthz through the local
    LB) runs every `check_interval_s`; `check_fall` failures in a row drop the VIP (FAULT
    state), `check_rise` successes bring the host back. `advert_interval_s` is VRRP's
    advertisement interval: a backup takes over after 3 missed ones (plus a skew)."""

    kind: str = "haproxy"
    hosts: int = 1
    advert_interval_s: float = 1.0
    check_interval_s: int = 1
    check_fall: int = 2
    check_rise: int = 2
    check_timeout_s: int = 2
    # nginx (passive checks only): a backend that failed max_fails (lb_check_fall) times within
    # fail_timeout is left out for fail_timeout; the seed's value is 30 s.
    nginx_fail_timeout_s: int = 30

    @property
    def pair(self) -> bool:
        return self.hosts == 2


@dataclass(frozen=True)
class SupervisorSettings:
    """Restart like kubelet does for static pods, with a shorter back-off suited to drills."""

    backoff_initial_s: float = 0.5
    backoff_max_s: float = 10.0
    reset_after_s: float = 30.0  # a process that ran this long gets its back-off reset


@dataclass(frozen=True)
class LabConfig:
    name: str = "lab"
    topology: str = "stacked"
    members: int = 3
    subnet: str = "10.213.7.0/24"
    state_root: Path = Path("/var/lib/kubedrill/labs")
    bin_dir: Path | None = None  # user-supplied binaries instead of building them
    cache_dir: Path = field(default_factory=default_cache_dir)
    etcd: EtcdSettings = field(default_factory=EtcdSettings)
    supervisor: SupervisorSettings = field(default_factory=SupervisorSettings)
    kubernetes: KubernetesSettings = field(default_factory=KubernetesSettings)
    lb: LoadBalancerSettings = field(default_factory=LoadBalancerSettings)
    # Validity of the serving and client certificates `lab up` issues (the CAs get ten years):
    # a short one makes a lab whose certificates expire soon, for `kubedrill audit`.
    cert_validity_days: int = 365

    @property
    def state_dir(self) -> Path:
        return self.state_root / self.name

    def validate(self) -> LabConfig:
        if not _NAME.fullmatch(self.name):
            raise ConfigError(
                f"lab.name {self.name!r} is invalid",
                "use 1-8 lowercase letters/digits starting with a letter",
            )
        if self.topology not in TOPOLOGIES:
            raise ConfigError(
                f"lab.topology {self.topology!r} is unknown", f"use one of: {', '.join(TOPOLOGIES)}"
            )
        if self.members not in (1, 3, 5, 7):
            raise ConfigError(
                f"lab.members is {self.members}", "use an odd member count: 1, 3, 5 or 7"
            )
        try:
            net = ipaddress.ip_network(self.subnet)
        except ValueError as exc:
            raise ConfigError(
                f"lab.subnet {self.subnet!r} is not a network: {exc}", "e.g. 10.213.7.0/24"
            ) from exc
        if not isinstance(net, ipaddress.IPv4Network) or net.prefixlen > 26:
            raise ConfigError(
                f"lab.subnet {self.subnet} is too small or not IPv4", "use an IPv4 /24 (up to /26)"
            )
        if self.cert_validity_days < 1:
            raise ConfigError(
                f"lab.cert_validity_days is {self.cert_validity_days}", "use 1 or more days"
            )
        sup = self.supervisor
        if sup.backoff_initial_s <= 0 or sup.backoff_max_s < sup.backoff_initial_s:
            raise ConfigError(
                "lab.supervisor back-off must satisfy 0 < backoff_initial_s <= backoff_max_s",
                "e.g. backoff_initial_s: 0.5, backoff_max_s: 10",
            )
        e = self.etcd
        for port_name in ("client_port", "peer_port", "metrics_port", "failpoints_port"):
            port = getattr(e, port_name)
            if not 0 < port < 65536:
                raise ConfigError(f"lab.etcd.{port_name} {port} is not a TCP port", "1-65535")
        if e.heartbeat_interval_ms <= 0 or e.election_timeout_ms < 5 * e.heartbeat_interval_ms:
            raise ConfigError(
                "lab.etcd.election_timeout_ms must be at least 5x heartbeat_interval_ms",
                "etcd refuses smaller ratios; the seed uses 100 ms / 1000 ms",
            )
        validate_lb(self.lb)
        return self


def validate_lb(lb: LoadBalancerSettings) -> None:
    if lb.kind not in LB_KINDS:
        raise ConfigError(
            f"lab.lb.kind {lb.kind!r} is unknown", f"use one of: {', '.join(LB_KINDS)}"
        )
    if lb.hosts not in (1, 2):
        raise ConfigError(
            f"lab.lb.hosts is {lb.hosts}", "use 1 (one LB host) or 2 (a keepalived pair with a VIP)"
        )
    # VRRPv3 counts the advertisement interval in centiseconds, up to 40.95 s.
    if not 0.01 <= lb.advert_interval_s <= 40.95:
        raise ConfigError(
            f"lab.lb.advert_interval_s is {lb.advert_interval_s}", "use 0.01-40.95 s (VRRP: 1)"
        )
    for name in ("check_interval_s", "check_fall", "check_rise", "check_timeout_s"):
        if getattr(lb, name) < 1:
            raise ConfigError(f"lab.lb.{name} is {getattr(lb, name)}", "use 1 or more")
    if lb.nginx_fail_timeout_s < 1:
        raise ConfigError(
            f"lab.lb.nginx_fail_timeout_s is {lb.nginx_fail_timeout_s}", "use 1 or more (seed: 30)"
        )


def _build(cls: type[Any], raw: Mapping[str, Any], path: str) -> Any:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{path} must be a mapping, got {type(raw).__name__}", _FIELD_HINT)
    known = {f.name: f for f in fields(cls)}
    values: dict[str, Any] = {}
    defaults = cls()
    for key, value in raw.items():
        if key not in known:
            raise ConfigError(
                f"unknown field {path}.{key}", f"known fields of {path}: {', '.join(sorted(known))}"
            )
        current = getattr(defaults, key)
        where = f"{path}.{key}"
        if isinstance(
            current,
            EtcdSettings | SupervisorSettings | KubernetesSettings | LoadBalancerSettings,
        ):
            values[key] = _build(type(current), value, where)
        elif key in ("state_root", "cache_dir", "bin_dir"):
            if value is None and key == "bin_dir":
                values[key] = None
            elif not isinstance(value, str) or not value:
                raise ConfigError(
                    f"{where} must be a path (a non-empty string), got {value!r}", _FIELD_HINT
                )
            else:
                values[key] = Path(value).expanduser()
        elif key == "extra_flags":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(
                    f"{where} must be a list of strings like '--flag=value'", _FIELD_HINT
                )
            values[key] = tuple(value)
        else:
            values[key] = _coerce(value, current, where)
    return replace(defaults, **values)


_FIELD_HINT = "fix that field in the lab config (README: The lab)"


def _coerce(value: Any, current: Any, where: str) -> Any:
    if isinstance(current, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}", _FIELD_HINT)
        return value
    if current is None:
        return value
    if isinstance(current, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {value!r}", _FIELD_HINT)
        return value
    if isinstance(current, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where} must be a number, got {value!r}", _FIELD_HINT)
        return float(value)
    if isinstance(current, str):
        if not isinstance(value, str | int):
            raise ConfigError(f"{where} must be a string, got {value!r}", _FIELD_HINT)
        return str(value)
    return value


def load_lab_config(path: Path | None = None, **overrides: Any) -> LabConfig:
    """Defaults, then the YAML file's `lab:` section, then explicit overrides (CLI flags)."""
    config = LabConfig()
    if path is not None:
        raw = load_yaml_file(path, "lab config", "pass an existing file with --config") or {}
        if not isinstance(raw, Mapping) or set(raw) - {"lab"}:
            raise ConfigError(
                f"lab config {path} must have a single top-level key 'lab'",
                "see kind-configs/ and README for an example",
            )
        section = raw.get("lab")
        config = _build(LabConfig, {} if section is None else section, "lab")
    env_bin = os.environ.get("KUBEDRILL_BIN_DIR")
    if env_bin and "bin_dir" not in overrides:
        overrides["bin_dir"] = Path(env_bin)
    clean = {k: v for k, v in overrides.items() if v is not None}
    if clean:
        config = replace(config, **clean)
    return config.validate()
