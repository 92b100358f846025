from __future__ import annotations

from pathlib import Path

from kubedrill.targets.lab.config import KubernetesSettings
from kubedrill.targets.lab.kube import (
    KubePaths,
    apiserver_argv,
    controller_manager_argv,
    haproxy_config,
    scheduler_argv,
    service_ip,
)
from kubedrill.targets.lab.network import HostPlan

CONTROLS = [HostPlan(f"control-{i}", f"10.0.0.{10 + i}", f"ns{i}", f"v{i}") for i in (1, 2, 3)]
LB = HostPlan("lb", "10.0.0.20", "nslb", "vlb")
PATHS = KubePaths(Path("/state"))


def test_haproxy_checks_readyz_with_the_seeds_timings() -> None:
    cfg = haproxy_config(LB, CONTROLS, PATHS, KubernetesSettings())
    assert "bind 10.0.0.20:6443" in cfg
    assert "option httpchk GET /readyz" in cfg
    assert "check check-ssl verify none inter 2000 fall 3 rise 2" in cfg
    for c in CONTROLS:
        assert f"server {c.name} {c.address}:6443" in cfg


def test_haproxy_timings_are_settings() -> None:
    settings = KubernetesSettings(lb_check_inter_ms=500, lb_check_fall=2, lb_check_rise=1)
    assert "inter 500 fall 2 rise 1" in haproxy_config(LB, CONTROLS, PATHS, settings)


def test_apiserver_talks_to_every_etcd_member() -> None:
    urls = [f"https://10.0.0.{i}:2379" for i in (1, 2, 3)]
    argv = apiserver_argv(
        Path("/bin/kube-apiserver"),
        CONTROLS[0],
        PATHS,
        urls,
        Path("/state/pki/etcd/ca.crt"),
        KubernetesSettings(),
    )
    assert f"--etcd-servers={','.join(urls)}" in argv
    assert "--advertise-address=10.0.0.11" in argv
    assert "--service-account-key-file=/state/pki/kubernetes/sa.pub" in argv


def test_controllers_elect_a_leader_with_the_seeds_lease_timings() -> None:
    for make in (controller_manager_argv, scheduler_argv):
        argv = make(Path("/bin/x"), CONTROLS[1], PATHS, KubernetesSettings())
        assert "--leader-elect=true" in argv
        assert "--leader-elect-lease-duration=15s" in argv
        assert "--leader-elect-renew-deadline=10s" in argv
        assert any(
            a.startswith("--kubeconfig=/state/kubeconfig/") and "control-2" in a for a in argv
        )


def test_service_ip_is_the_first_address() -> None:
    assert service_ip("10.96.0.0/12") == "10.96.0.1"
