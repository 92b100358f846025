"""The Kubernetes control plane of the lab: PKI, kubeconfigs, component command lines, HAProxy.

Laid out like kubeadm: one cluster CA, an apiserver serving cert carrying every name and address
it is reached by, client certs for the admin, the controller-manager and the scheduler, and one
service-account key pair shared by all apiservers. Controller-manager and scheduler talk to the
apiserver on their own host (as kubeadm's static pods do); people and kwok go through HAProxy.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from kubedrill.targets.lab import pki
from kubedrill.targets.lab.config import KubernetesSettings
from kubedrill.targets.lab.network import HostPlan
from kubedrill.targets.lab.topology import SITE_LABEL

APISERVER_PORT = 6443
CLUSTER_NAME = "kubedrill"


@dataclass(frozen=True)
class KubePaths:
    """Where the control plane's files live under the lab's state directory."""

    root: Path

    @property
    def pki(self) -> Path:
        return self.root / "pki" / "kubernetes"

    def kubeconfig(self, name: str) -> Path:
        return self.root / "kubeconfig" / f"{name}.conf"

    @property
    def admin(self) -> Path:
        return self.kubeconfig("admin")

    @property
    def haproxy_cfg(self) -> Path:
        return self.root / "haproxy" / "haproxy.cfg"

    @property
    def haproxy_socket(self) -> Path:
        return self.root / "run" / "haproxy.sock"


def service_ip(service_cidr: str) -> str:
    return str(ipaddress.ip_network(service_cidr).network_address + 1)


def make_kube_pki(
    paths: KubePaths,
    etcd_ca: pki.Authority,
    controls: Sequence[HostPlan],
    lbs: Sequence[HostPlan],
    front: str,
    settings: KubernetesSettings,
    validity: dt.timedelta = pki.VALIDITY,
) -> None:
    """`lbs`: the LB hosts; `front`: the address clients use (the LB's, or the pair's VIP)."""
    d = paths.pki
    ca = pki.create_ca(d, "ca", "kubernetes")
    names = [
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
        "localhost",
        *[lb.name for lb in lbs],
        *[c.name for c in controls],
    ]
    ips = list(
        dict.fromkeys(
            [
                service_ip(settings.service_cidr),
                "127.0.0.1",
                front,
                *[lb.address for lb in lbs],
                *[c.address for c in controls],
            ]
        )
    )
    v = validity
    # Every control-plane host has its own serving cert and its own controller-manager and
    # scheduler client certs, as kubeadm nodes do: one host's can be renewed (or expire)
    # while the others' do not change.
    for host in controls:
        pki.issue(
            ca, d, f"apiserver-{host.name}", "kube-apiserver", dns=names, ips=ips, server=True,
            validity=v,
        )  # fmt: skip
        pki.issue(
            ca, d, f"controller-manager-{host.name}", "system:kube-controller-manager",
            client=True, validity=v,
        )  # fmt: skip
        pki.issue(ca, d, f"scheduler-{host.name}", "system:kube-scheduler", client=True, validity=v)
    pki.issue(
        etcd_ca, d, "apiserver-etcd-client", "kube-apiserver-etcd-client", client=True, validity=v
    )
    pki.issue(ca, d, "admin", "kubernetes-admin", org="system:masters", client=True, validity=v)
    pki.issue(ca, d, "kwok", "kwok-controller", org="system:masters", client=True, validity=v)
    # Serving certs from the cluster CA (kubeadm lets these two sign their own), so that
    # whoever scrapes their /metrics -- kubedrill included -- can verify them.
    for host in controls:
        for component in ("controller-manager", "scheduler"):
            pki.issue(
                ca, d, f"{component}-serving-{host.name}", f"kube-{component}",
                dns=[host.name, "localhost"], ips=[host.address, "127.0.0.1"], server=True,
                validity=v,
            )  # fmt: skip
    pki.create_signing_key(d, "sa")
    server_lb = f"https://{front}:{APISERVER_PORT}"
    write_kubeconfig(paths.admin, server_lb, d / "ca.crt", d / "admin.crt", d / "admin.key")
    write_kubeconfig(
        paths.kubeconfig("kwok"), server_lb, d / "ca.crt", d / "kwok.crt", d / "kwok.key"
    )
    for host in controls:
        local = f"https://{host.address}:{APISERVER_PORT}"
        for user in ("controller-manager", "scheduler"):
            write_kubeconfig(
                paths.kubeconfig(f"{user}-{host.name}"),
                local,
                d / "ca.crt",
                d / f"{user}-{host.name}.crt",
                d / f"{user}-{host.name}.key",
            )


def write_kubeconfig(path: Path, server: str, ca: Path, cert: Path, key: Path) -> None:
    """A kubeconfig that references the files (no secrets inlined into it)."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": CLUSTER_NAME, "cluster": {"server": server, "certificate-authority": str(ca)}}
        ],
        "users": [
            {"name": "user", "user": {"client-certificate": str(cert), "client-key": str(key)}}
        ],
        "contexts": [{"name": CLUSTER_NAME, "context": {"cluster": CLUSTER_NAME, "user": "user"}}],
        "current-context": CLUSTER_NAME,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def apiserver_argv(
    binary: Path,
    host: HostPlan,
    paths: KubePaths,
    etcd_urls: Sequence[str],
    etcd_ca: Path,
    settings: KubernetesSettings,
) -> tuple[str, ...]:
    d = paths.pki
    return (
        str(binary),
        f"--advertise-address={host.address}",
        f"--bind-address={host.address}",
        f"--secure-port={APISERVER_PORT}",
        f"--etcd-servers={','.join(etcd_urls)}",
        f"--etcd-cafile={etcd_ca}",
        f"--etcd-certfile={d / 'apiserver-etcd-client.crt'}",
        f"--etcd-keyfile={d / 'apiserver-etcd-client.key'}",
        f"--client-ca-file={d / 'ca.crt'}",
        f"--tls-cert-file={d / f'apiserver-{host.name}.crt'}",
        f"--tls-private-key-file={d / f'apiserver-{host.name}.key'}",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={d / 'sa.pub'}",
        f"--service-account-signing-key-file={d / 'sa.key'}",
        f"--service-cluster-ip-range={settings.service_cidr}",
        "--authorization-mode=Node,RBAC",
        "--enable-admission-plugins=NodeRestriction",
        "--allow-privileged=true",
        "--endpoint-reconciler-type=lease",
        "--profiling=false",
        *_shutdown_flags(settings),
        # The tolerations DefaultTolerationSeconds adds to pods that bring none: how long a pod
        # stays bound to a NotReady/unreachable Node before the taint evicts it.
        f"--default-not-ready-toleration-seconds={settings.default_toleration_s}",
        f"--default-unreachable-toleration-seconds={settings.default_toleration_s}",
    )


def _shutdown_flags(settings: KubernetesSettings) -> tuple[str, ...]:
    """Graceful shutdown; left out at their defaults, so the seed's command line is unchanged."""
    flags: list[str] = []
    if settings.apiserver_shutdown_delay_s:
        flags.append(f"--shutdown-delay-duration={settings.apiserver_shutdown_delay_s}s")
    if settings.apiserver_shutdown_send_retry_after:
        flags.append("--shutdown-send-retry-after=true")
    if settings.apiserver_watch_termination_grace_s:
        grace = settings.apiserver_watch_termination_grace_s
        flags.append(f"--shutdown-watch-termination-grace-period={grace}s")
    return tuple(flags)


def _leader_election(settings: KubernetesSettings) -> tuple[str, ...]:
    return (
        "--leader-elect=true",
        f"--leader-elect-lease-duration={settings.lease_duration_s}s",
        f"--leader-elect-renew-deadline={settings.renew_deadline_s}s",
        f"--leader-elect-retry-period={settings.retry_period_s}s",
    )


def _client_flags(
    component: str, host: HostPlan, paths: KubePaths, settings: KubernetesSettings
) -> tuple[str, ...]:
    """Flags controller-manager and scheduler share: one kubeconfig for everything, the
    secure port on the host's address with a serving cert from the cluster CA, and leader
    election."""
    conf = paths.kubeconfig(f"{component}-{host.name}")
    serving = paths.pki / f"{component}-serving-{host.name}"
    return (
        f"--kubeconfig={conf}",
        f"--authentication-kubeconfig={conf}",
        f"--authorization-kubeconfig={conf}",
        f"--bind-address={host.address}",
        f"--tls-cert-file={serving}.crt",
        f"--tls-private-key-file={serving}.key",
        *_leader_election(settings),
    )


def controller_manager_argv(
    binary: Path, host: HostPlan, paths: KubePaths, settings: KubernetesSettings
) -> tuple[str, ...]:
    d = paths.pki
    return (
        str(binary),
        *_client_flags("controller-manager", host, paths, settings),
        f"--cluster-name={CLUSTER_NAME}",
        f"--root-ca-file={d / 'ca.crt'}",
        f"--cluster-signing-cert-file={d / 'ca.crt'}",
        f"--cluster-signing-key-file={d / 'ca.key'}",
        f"--service-account-private-key-file={d / 'sa.key'}",
        f"--service-cluster-ip-range={settings.service_cidr}",
        "--use-service-account-credentials=true",
        "--controllers=*,bootstrapsigner,tokencleaner",
        # Node lifecycle: a Node whose lease is not renewed for the grace period is NotReady
        # (Unknown) and tainted unreachable, at most `node_eviction_rate` Nodes a second per
        # zone (zones from topology.kubernetes.io/zone).
        f"--node-monitor-grace-period={settings.node_monitor_grace_period_s}s",
        f"--node-monitor-period={settings.node_monitor_period_s}s",
        f"--node-eviction-rate={settings.node_eviction_rate:g}",
    )


def scheduler_argv(
    binary: Path, host: HostPlan, paths: KubePaths, settings: KubernetesSettings
) -> tuple[str, ...]:
    return (str(binary), *_client_flags("scheduler", host, paths, settings))


def kwok_argv(
    binary: Path,
    paths: KubePaths,
    stages: Sequence[Path],
    site: str,
    settings: KubernetesSettings,
    cidr: str = "10.244.0.0/16",
) -> tuple[str, ...]:
    """kwok on worker host `site` plays kubelet for the Nodes labelled with that site only, so
    a site's outage (its host down or cut off) stops exactly its Nodes' heartbeats."""
    return (
        str(binary),
        *[f"--config={stage}" for stage in stages],
        f"--kubeconfig={paths.kubeconfig('kwok')}",
        "--manage-all-nodes=false",
        "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
        f"--manage-nodes-with-label-selector={SITE_LABEL}={site}",
        f"--node-lease-duration-seconds={settings.kwok_node_lease_s}",
        f"--cidr={cidr}",
    )


def haproxy_config(
    lb: HostPlan,
    controls: Sequence[HostPlan],
    paths: KubePaths,
    settings: KubernetesSettings,
    *,
    bind: str | None = None,
    stats_socket: Path | None = None,
) -> str:
    """TCP load balancing with HTTPS health checks on /readyz (the seed's section 4.1).

    `bind` is the listening address (default the LB host's own; an LB of a keepalived pair
    listens on every address, so that it serves the VIP once it holds it and its health script
    reaches it on localhost); `stats_socket` is per host when there are two."""
    listen = lb.address if bind is None else bind
    sock = paths.haproxy_socket if stats_socket is None else stats_socket
    checks = (
        f"inter {settings.lb_check_inter_ms} fall {settings.lb_check_fall} "
        f"rise {settings.lb_check_rise}"
    )
    servers = "\n".join(f"    server {c.name} {c.address}:{APISERVER_PORT}" for c in controls)
    redispatch = "option redispatch" + (" 1" if settings.lb_redispatch_every_retry else "")
    # Each connection's client address:port, the server it went to, its retries (+ when
    # redispatched) and termination state: which backend a failed request met.
    connections = (
        '\n    log global\n    log-format "conn %ci:%cp %b/%s %Tw/%Tc/%Tt %B %ts %rc"'
        if settings.lb_log_connections
        else ""
    )
    # State changes are logged to stdout (the supervisor's log file) with an ISO 8601 header
    # to the microsecond: the load balancer's own record of when it marked a backend DOWN/UP.
    # Only the backend logs, so the API's connections add no lines.
    return f"""global
    maxconn 4000
    stats socket {sock} mode 600 level admin
    log stdout format iso local0

defaults
    mode tcp
    option dontlognull
    # A connection refused by a dead backend is retried on another one.
    retries 3
    {redispatch}
    timeout connect 5s
    timeout client 60s
    timeout server 60s

frontend kube-apiserver
    bind {listen}:{APISERVER_PORT}{connections}
    default_backend kube-apiserver

backend kube-apiserver
    log global
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    default-server check check-ssl verify none {checks}
{servers}
"""


def haproxy_argv(binary: str, paths: KubePaths, config: Path | None = None) -> tuple[str, ...]:
    return (binary, "-db", "-f", str(paths.haproxy_cfg if config is None else config))
