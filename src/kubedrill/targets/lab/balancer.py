"""The lab's load balancer hosts: the proxy on each (HAProxy or nginx's stream module) and, for a
pair, keepalived holding a virtual IP with the seed's check-apiserver.sh as its health script.

A pair runs both keepalived instances as BACKUP with `nopreempt` (lb-1 has the higher priority,
so it takes the VIP first): a host that comes back after a failure does not take the VIP back,
which would cost clients a second failover. VRRP goes unicast between the two hosts (multicast
over the lab bridge would work too, but unicast is what cloud networks allow).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from kubedrill.targets.lab import kube
from kubedrill.targets.lab.config import KubernetesSettings, LoadBalancerSettings
from kubedrill.targets.lab.network import HostPlan
from kubedrill.targets.lab.supervisor import ComponentSpec

VIP_OFFSET = 10  # hosts take .11 upwards, .1 is the bridge: the VIP is .10
VRRP_ROUTER_ID = 51
# Debian's nginx loads its dynamic modules from here (libnginx-mod-stream installs this one).
NGINX_STREAM_MODULE = Path("/usr/lib/nginx/modules/ngx_stream_module.so")


def vip_address(subnet: str) -> str:
    return str(ipaddress.IPv4Network(subnet).network_address + VIP_OFFSET)


@dataclass(frozen=True)
class BalancerPaths:
    """Per-host files of the LB hosts under the lab's state directory."""

    root: Path

    def haproxy_cfg(self, host: str) -> Path:
        return self.root / "haproxy" / f"{host}.cfg"

    def haproxy_socket(self, host: str) -> Path:
        return self.root / "run" / f"haproxy-{host}.sock"

    def nginx_dir(self, host: str) -> Path:
        return self.root / "nginx" / host

    def keepalived_cfg(self, host: str) -> Path:
        return self.root / "keepalived" / f"{host}.conf"

    @property
    def check_script(self) -> Path:
        return self.root / "keepalived" / "check-apiserver.sh"


def nginx_config(
    controls: Sequence[HostPlan],
    pid_file: Path,
    lb: LoadBalancerSettings,
    settings: KubernetesSettings,
    *,
    bind: str,
) -> str:
    """The seed's nginx stream block as TCP passthrough (clients keep their client certs end to
    end, as through HAProxy; the seed's `listen 6443 ssl` would terminate TLS and lose them).
    Its `check interval=...` line is the third-party upstream check module, not open-source
    nginx: here failures are noticed passively, `max_fails` (lb_check_fall) failed connections
    within `fail_timeout` leaving a backend out for `fail_timeout`."""
    servers = "\n".join(
        f"        server {c.address}:{kube.APISERVER_PORT} max_fails={settings.lb_check_fall} "
        f"fail_timeout={lb.nginx_fail_timeout_s}s;"
        for c in controls
    )
    return f"""load_module {NGINX_STREAM_MODULE};
pid {pid_file};
error_log stderr notice;
worker_processes 1;

events {{
    worker_connections 1024;
}}

stream {{
    upstream kube_apiserver {{
        least_conn;
{servers}
    }}

    server {{
        listen {bind}:{kube.APISERVER_PORT};
        proxy_pass kube_apiserver;
        # A refused or timed-out connection is tried on the next backend (nginx's default).
        proxy_next_upstream on;
        proxy_connect_timeout 5s;
        proxy_timeout 10m;
    }}
}}
"""


def nginx_argv(binary: str, directory: Path) -> tuple[str, ...]:
    return (
        binary,
        "-p",
        f"{directory}/",
        "-c",
        str(directory / "nginx.conf"),
        "-e",
        "stderr",
        "-g",
        "daemon off;",
    )


def check_script(timeout_s: int) -> str:
    """The seed's check-apiserver.sh: healthy while /healthz answers "ok" through this host's
    own load balancer (it listens on every address, localhost included)."""
    url = f"https://localhost:{kube.APISERVER_PORT}/healthz"
    return f"""#!/bin/sh
# check-apiserver.sh (the seed's section 5.2): keepalived drops the VIP when this fails.
response=$(curl -sk --max-time {timeout_s} {url} 2>/dev/null)
[ "$response" = "ok" ]
"""


def keepalived_config(
    host: HostPlan,
    peer: HostPlan,
    priority: int,
    vip: str,
    prefixlen: int,
    script: Path,
    lb: LoadBalancerSettings,
) -> str:
    return f"""global_defs {{
    router_id {host.name}
    vrrp_version 3
    enable_script_security
    script_user root
}}

vrrp_script check_apiserver {{
    script "{script}"
    interval {lb.check_interval_s}
    timeout {lb.check_timeout_s}
    fall {lb.check_fall}
    rise {lb.check_rise}
}}

vrrp_instance kube_apiserver {{
    # Both BACKUP with nopreempt: a host that comes back does not take the VIP back.
    state BACKUP
    nopreempt
    interface eth0
    virtual_router_id {VRRP_ROUTER_ID}
    priority {priority}
    advert_int {lb.advert_interval_s:g}
    unicast_src_ip {host.address}
    unicast_peer {{
        {peer.address}
    }}
    virtual_ipaddress {{
        {vip}/{prefixlen} dev eth0
    }}
    # No script weight: failing, the instance goes to FAULT, which gives the VIP up.
    track_script {{
        check_apiserver
    }}
}}
"""


def keepalived_argv(binary: str, config: Path, run_dir: Path, host: str) -> tuple[str, ...]:
    """Foreground, VRRP only, logging to stdout; pid files of its own (the defaults under /run
    are one per machine, and two lab hosts run keepalived)."""
    return (
        binary,
        "--dont-fork",
        "--log-console",
        "--log-detail",
        "--no-syslog",
        "--vrrp",
        f"--use-file={config}",
        f"--pid={run_dir / f'keepalived-{host}.pid'}",
        f"--vrrp_pid={run_dir / f'keepalived-vrrp-{host}.pid'}",
    )


@dataclass(frozen=True)
class LbHost:
    plan: HostPlan
    priority: int | None


def specs(
    hosts: Sequence[LbHost],
    controls: Sequence[HostPlan],
    state_dir: Path,
    bins: dict[str, Path],
    lb: LoadBalancerSettings,
    settings: KubernetesSettings,
    *,
    prefixlen: int,
    vip: str,
    after: tuple[str, ...],
    after_max_s: float,
) -> list[ComponentSpec]:
    """Write each LB host's files; return its components (the proxy, keepalived for a pair)."""
    paths = BalancerPaths(state_dir)
    kpaths = kube.KubePaths(state_dir)
    out: list[ComponentSpec] = []
    pair = len(hosts) == 2
    if pair:
        paths.check_script.parent.mkdir(parents=True, exist_ok=True)
        paths.check_script.write_text(check_script(lb.check_timeout_s))
        paths.check_script.chmod(0o755)
    for host in hosts:
        h = host.plan
        # A single LB listens on its own address (as before); a pair's on every address.
        bind = "" if pair else h.address
        if lb.kind == "haproxy":
            cfg = paths.haproxy_cfg(h.name) if pair else kpaths.haproxy_cfg
            cfg.parent.mkdir(parents=True, exist_ok=True)
            cfg.write_text(
                kube.haproxy_config(
                    h,
                    controls,
                    kpaths,
                    settings,
                    bind=bind,
                    stats_socket=paths.haproxy_socket(h.name) if pair else None,
                )
            )
            argv = kube.haproxy_argv(str(bins["haproxy"]), kpaths, cfg)
        else:
            directory = paths.nginx_dir(h.name)
            directory.mkdir(parents=True, exist_ok=True)
            (directory / "nginx.conf").write_text(
                nginx_config(
                    controls,
                    state_dir / "run" / f"nginx-{h.name}.pid",
                    lb,
                    settings,
                    bind=bind or "*",
                )
            )
            argv = nginx_argv(str(bins["nginx"]), directory)
        out.append(
            ComponentSpec(h.name, lb.kind, h.netns, argv, after=after, after_max_s=after_max_s)
        )
        if not pair:
            continue
        peer = next(o.plan for o in hosts if o.plan.name != h.name)
        conf = paths.keepalived_cfg(h.name)
        conf.write_text(
            keepalived_config(h, peer, host.priority or 100, vip, prefixlen, paths.check_script, lb)
        )
        out.append(
            ComponentSpec(
                h.name,
                "keepalived",
                h.netns,
                keepalived_argv(str(bins["keepalived"]), conf, state_dir / "run", h.name),
                # Once its own LB serves: the health script would fail before.
                after=(f"https://{h.address}:{kube.APISERVER_PORT}/readyz",),
                after_max_s=after_max_s,
            )
        )
    return out
