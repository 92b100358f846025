"""The LB pair's pure parts: config validation, host layout, the keepalived, nginx and HAProxy
files the lab writes, the audit's nginx reading, and failure reasons."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
import requests

from kubedrill.audit.lb import judge_check, parse_nginx
from kubedrill.errors import ConfigError
from kubedrill.faults.shape import Selector, select_victims
from kubedrill.targets.lab.balancer import (
    check_script,
    keepalived_config,
    nginx_config,
    vip_address,
)
from kubedrill.targets.lab.config import (
    KubernetesSettings,
    LabConfig,
    LoadBalancerSettings,
    load_lab_config,
)
from kubedrill.targets.lab.kube import KubePaths, haproxy_config
from kubedrill.targets.lab.network import HostPlan
from kubedrill.targets.lab.topology import hosts
from kubedrill.workload.api_reader import failure_reason

CONTROLS = [HostPlan(f"control-{i}", f"10.0.0.{10 + i}", f"ns{i}", f"v{i}") for i in (1, 2, 3)]
LB1 = HostPlan("lb-1", "10.0.0.14", "ns4", "v4")
LB2 = HostPlan("lb-2", "10.0.0.15", "ns5", "v5")


def lab_file(tmp_path: Path, lb: str) -> Path:
    path = tmp_path / "lab.yaml"
    path.write_text(f"lab:\n  name: t\n  lb:\n{lb}")
    return path


def test_single_haproxy_lb_stays_the_default() -> None:
    layout = {h.name: h for h in hosts(LabConfig(topology="stacked"))}
    assert layout["lb"].components == ("haproxy",)
    assert layout["lb"].vrrp_priority is None
    assert not LabConfig().lb.pair


def test_pair_is_lb_1_and_lb_2_with_keepalived(tmp_path: Path) -> None:
    config = load_lab_config(lab_file(tmp_path, "    kind: nginx\n    hosts: 2\n"))
    lbs = [h for h in hosts(config) if "lb" in h.roles]
    assert [h.name for h in lbs] == ["lb-1", "lb-2"]
    assert all(h.components == ("nginx", "keepalived") for h in lbs)
    assert lbs[0].vrrp_priority is not None and lbs[1].vrrp_priority is not None
    assert lbs[0].vrrp_priority > lbs[1].vrrp_priority  # lb-1 takes the VIP first


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ("    kind: envoy\n", "lab.lb.kind"),
        ("    hosts: 3\n", "lab.lb.hosts"),
        ("    advert_interval_s: 0\n", "lab.lb.advert_interval_s"),
        ("    check_fall: 0\n", "lab.lb.check_fall"),
        ("    vip: 10.0.0.9\n", "lab.lb.vip"),
        ("    hosts: two\n", "lab.lb.hosts"),
    ],
)
def test_bad_lb_config_names_the_field(tmp_path: Path, body: str, named: str) -> None:
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        load_lab_config(lab_file(tmp_path, body))


def test_vip_is_below_the_hosts() -> None:
    assert vip_address("10.213.90.0/24") == "10.213.90.10"  # hosts from .11, bridge .1


def test_keepalived_unicast_nopreempt_and_the_health_script() -> None:
    script = Path("/state/keepalived/check-apiserver.sh")
    text = keepalived_config(LB1, LB2, 150, "10.0.0.10", 24, script, LoadBalancerSettings())
    assert "state BACKUP" in text and "nopreempt" in text
    assert "unicast_src_ip 10.0.0.14" in text and "10.0.0.15" in text
    assert "10.0.0.10/24 dev eth0" in text
    assert f'script "{script}"' in text and "fall 2" in text and "rise 2" in text
    assert "\n        weight" not in text  # a failing script means FAULT: the VIP is given up
    assert "https://localhost:6443/healthz" in check_script(2)


def test_nginx_is_tcp_passthrough_with_passive_checks() -> None:
    lb = LoadBalancerSettings(kind="nginx", hosts=2, nginx_fail_timeout_s=30)
    text = nginx_config(CONTROLS, Path("/run/x.pid"), lb, KubernetesSettings(), bind="*")
    assert "ngx_stream_module.so" in text and "listen *:6443;" in text
    assert "ssl" not in text  # passthrough: client certificates reach the apiservers
    assert text.count("max_fails=3 fail_timeout=30s") == 3
    checks = parse_nginx(text)
    assert [(c.kind, c.fall, c.inter_s, c.servers) for c in checks] == [("passive", 3, 30.0, 3)]
    assert judge_check(checks[0]).status == "warn"


def test_nginx_active_check_module_and_no_failures_counted() -> None:
    seed = """stream { upstream api { least_conn;
        server control-1:6443 max_fails=3 fail_timeout=30s;
        check interval=2000 rise=2 fall=3 timeout=1000 type=tcp; } }"""
    (check,) = parse_nginx(seed)
    assert (check.kind, check.inter_s, check.fall) == ("tcp", 2.0, 3)
    (never,) = parse_nginx("stream { upstream api { server a:6443 max_fails=0; } }")
    assert judge_check(never).status == "fail"


def test_pair_haproxy_listens_everywhere_with_its_own_socket() -> None:
    sock = Path("/state/run/haproxy-lb-1.sock")
    text = haproxy_config(
        LB1, CONTROLS, KubePaths(Path("/state")), KubernetesSettings(), bind="", stats_socket=sock
    )
    assert "bind :6443" in text and f"stats socket {sock} " in text
    single = haproxy_config(LB1, CONTROLS, KubePaths(Path("/state")), KubernetesSettings())
    assert "bind 10.0.0.14:6443" in single


def test_the_active_lb_is_the_vip_holder() -> None:
    # The drills' victim: select_victims with the VIP holder as the leader.
    assert select_victims(Selector.leader(), ["lb-1", "lb-2"], leader="lb-2") == ("lb-2",)


def test_failure_reason_names_the_errno() -> None:
    refused = ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
    wrapped = requests.ConnectionError(OSError("pool"))
    wrapped.__cause__ = refused
    assert failure_reason(wrapped) == "ConnectionError: ECONNREFUSED"
    assert failure_reason(requests.ConnectionError("no errno")) == "ConnectionError"


def test_config_rejects_wrong_types_at_once(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        LabConfig(lb=LoadBalancerSettings(kind="nginx", hosts=0)).validate()
