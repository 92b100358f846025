"""Lab configuration: defaults from the seed document, overridable by a YAML file.

Parsing is strict: an unknown or malformed field is an error that names the field, so that a
typo never silently falls back to a default during a game day.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import ConfigDict

from kubedrill.errors import ConfigError
from kubedrill.targets.lab import versions
from kubedrill.validation import LocalPath, Text, validate_document
from kubedrill.yaml_file import load_yaml_file

# Pinned: the etcd paired with the default Kubernetes release (versions.py says how).
ETCD_VERSION = versions.DEFAULT.etcd
# etcd: an etcd cluster only. stacked: the seed's mode 1 (etcd, apiserver, controller-manager
# and scheduler on each control-plane host, HAProxy in front). external: the seed's mode 2
# (etcd on hosts of its own). regions: stacked, one control-plane host per region, the regions
# joined by WAN links (kubedrill's WanLinks fault puts the distance on them).
TOPOLOGIES = ("etcd", "stacked", "external", "regions")
_NAME = re.compile(r"^[a-z][a-z0-9]{0,7}$")
# Read by kubedrill.validation: a field the class does not declare is an error, never ignored.
_STRICT = ConfigDict(extra="forbid")


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

    __pydantic_config__ = _STRICT

    # Empty: the etcd paired with lab.kubernetes.version (versions.RELEASES), filled in by
    # LabConfig, so that choosing an older Kubernetes brings its own etcd along.
    version: str = ""
    heartbeat_interval_ms: int = 100
    election_timeout_ms: int = 1000
    snapshot_count: int = 10000
    quota_backend_bytes: int = 8 * 1024**3
    max_request_bytes: int = 10 * 1024**2
    max_txn_ops: int = 10000
    auto_compaction_retention: Text = "1h"
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

    __pydantic_config__ = _STRICT

    version: str = versions.DEFAULT.kubernetes  # pinned: the newest minor in upstream support
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
    # Graceful apiserver shutdown (the rolling-restart drills, drills/test_maintenance.py).
    # On SIGTERM kube-apiserver fails /readyz at once but keeps serving for this long, so a
    # load balancer can mark it DOWN before its listener closes (0: upstream's default).
    apiserver_shutdown_delay_s: int = 0
    # --shutdown-send-retry-after: while draining, answer 429 + Retry-After + Connection:
    # close instead of closing the listener (upstream default off).
    apiserver_shutdown_send_retry_after: bool = False
    # --shutdown-watch-termination-grace-period: after the delay, end the open watches within
    # this long. At 0 (upstream's default) the apiserver lets them run until its shutdown
    # timeout (--request-timeout, 60 s), so a stop waits out the whole stop grace and ends in
    # SIGKILL; with it, the apiserver exits by itself about delay + this after SIGTERM.
    apiserver_watch_termination_grace_s: int = 0
    # HAProxy `option redispatch 1`: every retry of a refused connection goes to another
    # server (the seed's plain `option redispatch` moves only the last of `retries`, after
    # a 1 s turn-around per retry).
    lb_redispatch_every_retry: bool = False
    # HAProxy logs every connection (client address:port, the server it went to, retries,
    # termination state): the rolling-restart drills name the backend of a failed request.
    lb_log_connections: bool = False

    # Workers at an edge site: Nodes edge-1..N on a host of their own (`edge`, zone `edge`),
    # no control plane there; the edge partition drill cuts it off.
    edge_workers: int = 0
    # How fast a lost Node is noticed and its pods evicted (upstream defaults; the zone and
    # edge drills' labs shorten them so a drill is bounded, fixtures/labs/zones.yaml):
    # kube-controller-manager's --node-monitor-grace-period, --node-monitor-period and
    # --node-eviction-rate (Nodes tainted per second in a zone), the apiserver's
    # --default-{not-ready,unreachable}-toleration-seconds (added to pods without their own),
    # and kwok's Node lease (renewed every quarter of it: keep it well under the grace period).
    node_monitor_grace_period_s: int = 50
    node_monitor_period_s: int = 5
    node_eviction_rate: float = 0.1
    default_toleration_s: int = 300
    kwok_node_lease_s: int = 40

    def validate(self, stop_grace_s: int) -> None:
        if not 0 <= self.apiserver_shutdown_delay_s < stop_grace_s:
            raise ConfigError(
                f"lab.kubernetes.apiserver_shutdown_delay_s is {self.apiserver_shutdown_delay_s}, "
                f"lab.supervisor.stop_grace_s {stop_grace_s}: a stop would SIGKILL the "
                "apiserver before it drained",
                "use 0 <= apiserver_shutdown_delay_s < stop_grace_s (e.g. 10 and 30)",
            )
        watches = self.apiserver_watch_termination_grace_s
        if watches < 0 or (watches and self.apiserver_shutdown_delay_s + watches >= stop_grace_s):
            raise ConfigError(
                f"lab.kubernetes.apiserver_watch_termination_grace_s is {watches} with "
                f"apiserver_shutdown_delay_s {self.apiserver_shutdown_delay_s} and "
                f"lab.supervisor.stop_grace_s {stop_grace_s}: the watches would still be open "
                "at SIGKILL",
                "use 0 (upstream) or a value with delay + it < stop_grace_s (e.g. 10 + 5 < 30)",
            )
        if self.lb_check_inter_ms < 100 or self.lb_check_fall < 1 or self.lb_check_rise < 1:
            raise ConfigError(
                "lab.kubernetes.lb_check_inter_ms must be >= 100 and lb_check_fall and "
                "lb_check_rise >= 1",
                "the seed's values: inter 2000, fall 3, rise 2",
            )


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

    __pydantic_config__ = _STRICT

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

    __pydantic_config__ = _STRICT

    backoff_initial_s: float = 0.5
    backoff_max_s: float = 10.0
    reset_after_s: float = 30.0  # a process that ran this long gets its back-off reset
    # A stop fault's SIGTERM-to-SIGKILL grace, like a pod's terminationGracePeriodSeconds
    # (kubelet's default is 30 s): it must outlast the apiserver's shutdown delay and drain.
    stop_grace_s: int = 10


@dataclass(frozen=True)
class LabConfig:
    __pydantic_config__ = _STRICT
    name: str = "lab"
    topology: str = "stacked"
    members: int = 3
    subnet: str = "10.213.7.0/24"
    state_root: LocalPath = Path("/var/lib/kubedrill/labs")
    bin_dir: LocalPath | None = None  # user-supplied binaries instead of building them
    cache_dir: LocalPath = field(default_factory=default_cache_dir)
    etcd: EtcdSettings = field(default_factory=EtcdSettings)
    supervisor: SupervisorSettings = field(default_factory=SupervisorSettings)
    kubernetes: KubernetesSettings = field(default_factory=KubernetesSettings)
    lb: LoadBalancerSettings = field(default_factory=LoadBalancerSettings)
    # Validity of the serving and client certificates `lab up` issues (the CAs get ten years):
    # a short one makes a lab whose certificates expire soon, for `kubedrill audit`.
    cert_validity_days: int = 365
    # Fault domains (the seed's section 1.3): 0 = none (one worker host, no zone labels);
    # N = control-plane (and external etcd) hosts one per zone, round robin, a worker host per
    # zone, and every Node labelled topology.kubernetes.io/zone (topology.py).
    zones: int = 0

    def __post_init__(self) -> None:
        if not self.etcd.version:
            paired = replace(self.etcd, version=versions.paired_etcd(self.kubernetes.version))
            object.__setattr__(self, "etcd", paired)

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
        if self.topology == "regions" and self.kubernetes.control_planes < 2:
            raise ConfigError(
                "lab.topology regions needs at least 2 regions (one per control plane)",
                "set lab.kubernetes.control_planes to 3 (the default)",
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
        self._validate_zones()
        sup = self.supervisor
        if sup.backoff_initial_s <= 0 or sup.backoff_max_s < sup.backoff_initial_s:
            raise ConfigError(
                "lab.supervisor back-off must satisfy 0 < backoff_initial_s <= backoff_max_s",
                "e.g. backoff_initial_s: 0.5, backoff_max_s: 10",
            )
        if not 1 <= sup.stop_grace_s <= 300:
            raise ConfigError(
                f"lab.supervisor.stop_grace_s is {sup.stop_grace_s}", "use 1-300 seconds"
            )
        self.kubernetes.validate(sup.stop_grace_s)
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

    def _validate_zones(self) -> None:
        k = self.kubernetes
        spread = self.members if self.topology == "etcd" else k.control_planes
        if not 0 <= self.zones <= min(spread, 5):
            raise ConfigError(
                f"lab.zones is {self.zones} for {spread} control-plane (or etcd) hosts",
                f"use 0 (no zones) up to {min(spread, 5)}: one host per zone at least",
            )
        if k.edge_workers < 0 or k.workers < 0:
            raise ConfigError(
                "lab.kubernetes.workers and edge_workers must be 0 or more", "set a count >= 0"
            )
        timings = (k.node_monitor_grace_period_s, k.node_monitor_period_s, k.kwok_node_lease_s)
        if min(timings) < 1 or k.default_toleration_s < 0 or k.node_eviction_rate <= 0:
            raise ConfigError(
                "lab.kubernetes node timings must be positive",
                "e.g. node_monitor_grace_period_s: 10, node_monitor_period_s: 1, "
                "kwok_node_lease_s: 8, node_eviction_rate: 1, default_toleration_s: 10",
            )
        # kwok renews every lease_duration/4: a renewal must land well inside the grace period
        # or healthy Nodes flap NotReady.
        if k.kwok_node_lease_s / 4 * 2 > k.node_monitor_grace_period_s:
            raise ConfigError(
                f"lab.kubernetes.kwok_node_lease_s {k.kwok_node_lease_s} is too long for "
                f"node_monitor_grace_period_s {k.node_monitor_grace_period_s}",
                "kwok renews every quarter of its lease: keep two renewals inside the grace period",
            )


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


_FIELD_HINT = "fix that field in the lab config (README: The lab)"


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
        config = validate_document(
            LabConfig, {} if section is None else section, root="lab", hint=_FIELD_HINT
        )
    env_bin = os.environ.get("KUBEDRILL_BIN_DIR")
    if env_bin and "bin_dir" not in overrides:
        overrides["bin_dir"] = Path(env_bin)
    clean = {k: v for k, v in overrides.items() if v is not None}
    if clean:
        config = replace(config, **clean)
    return config.validate()
