"""Pure logic of the rolling maintenance: host order, phases, failure reasons, the LB's
connection log tied to failures, Lease renewal, and the lab settings' validation."""

from __future__ import annotations

import datetime as dt
import http.client
import ssl
from pathlib import Path

import pytest

from kubedrill.errors import ConfigError
from kubedrill.maintenance.readiness import renewed_since
from kubedrill.maintenance.requests import (
    FailedRequest,
    attribute,
    classify_exception,
    classify_status,
    parse_connections,
    summarize,
)
from kubedrill.maintenance.rolling import Phase, during, rolling_order
from kubedrill.server_record.record import parse_time
from kubedrill.targets.lab.config import KubernetesSettings, LabConfig, SupervisorSettings
from kubedrill.targets.lab.kube import KubePaths, apiserver_argv, haproxy_config
from kubedrill.targets.lab.network import HostPlan


def test_leader_goes_last() -> None:
    assert rolling_order(["c1", "c2", "c3"], "c1") == ["c2", "c3", "c1"]
    assert rolling_order(["c1", "c2", "c3"], None) == ["c1", "c2", "c3"]
    assert rolling_order(["c1", "c2"], "elsewhere") == ["c1", "c2"]


def test_during_names_the_overlapping_phase() -> None:
    phases = [Phase("c1", "kube-apiserver", "stop", 1.0, 2.0), Phase("c1", "", "drain", 0.0, 0.5)]
    assert during(1.5, phases) == "kube-apiserver on c1: stop (+0.50 s into it)"
    assert during(0.2, phases) == "Node c1: drain (+0.20 s into it)"
    assert during(9.0, phases) == "no host in maintenance"


@pytest.mark.parametrize(
    ("exc", "stage", "reason"),
    [
        (ConnectionRefusedError(), "connect", "connection refused by the load balancer"),
        (ConnectionResetError(), "tls", "connection reset (tls)"),
        (TimeoutError(), "response", "timeout (response)"),
        (
            ssl.SSLEOFError(8, "EOF occurred in violation of protocol"),
            "tls",
            "connection closed (tls)",
        ),
        (http.client.RemoteDisconnected("x"), "response", "connection closed without a response"),
    ],
)
def test_reasons(exc: BaseException, stage: str, reason: str) -> None:
    assert classify_exception(exc, stage)[0] == reason


def test_status_message() -> None:
    body = b'{"kind":"Status","message":"The apiserver is shutting down, please try again later."}'
    assert "shutting down" in classify_status(429, body)
    assert classify_status(502, b"bad gateway") == "bad gateway"


LOG = (
    "2026-12-02T02:40:01.500000+00:00 conn 10.213.92.1:40001 kube-apiserver/control-1 "
    "0/1/5 0 SD 0\n"
    "2026-12-02T02:40:09.000000+00:00 conn 10.213.92.1:40001 kube-apiserver/control-2 "
    "0/1/20 4000 -- +3\n"
    "2026-12-02T02:40:02.000000+00:00 Server kube-apiserver/control-1 is DOWN\n"
)


def test_failures_get_their_backend_from_the_lb_log() -> None:
    conns = parse_connections(LOG, parse_time)
    assert [c.server for c in conns] == ["control-1", "control-2"]
    wall = parse_time("2026-12-02T02:40:01.400000+00:00")
    assert wall is not None
    failure = FailedRequest("c", 1.0, 1.1, wall, 40001, "connection reset (tls)")
    [found] = attribute([failure], conns)
    assert found.backend == "control-1"
    assert "termination SD" in found.lb_detail
    assert "redispatched" in conns[1].describe()
    unknown = FailedRequest("c", 1.0, 1.1, wall, 40999, "timeout (response)")
    assert attribute([unknown], conns)[0].backend == ""
    assert "backend unknown" in unknown.render()
    assert summarize([failure, failure, unknown]) == {
        "connection reset (tls)": 2,
        "timeout (response)": 1,
    }


def test_lease_renewed_since() -> None:
    since = dt.datetime(2026, 12, 2, 2, 40, tzinfo=dt.UTC)
    spec: dict[str, object] = {"holderIdentity": "c1_x", "renewTime": "2026-12-02T02:40:01.000000Z"}
    assert renewed_since(spec, since)
    assert not renewed_since({**spec, "renewTime": "2026-12-02T02:39:59.000000Z"}, since)
    assert not renewed_since({**spec, "holderIdentity": ""}, since)


def test_seed_settings_unchanged_and_fixed_ones_rendered() -> None:
    lb = HostPlan("lb", "10.0.0.2", "kd-x-lb", "veth")
    c1 = HostPlan("control-1", "10.0.0.11", "kd-x-c1", "veth1")
    paths = KubePaths(Path("/x"))
    seed = haproxy_config(lb, [c1], paths, KubernetesSettings())
    assert "option redispatch\n" in seed and "log-format" not in seed
    fixed = KubernetesSettings(
        lb_redispatch_every_retry=True,
        lb_log_connections=True,
        apiserver_shutdown_delay_s=10,
        apiserver_watch_termination_grace_s=5,
    )
    text = haproxy_config(lb, [c1], paths, fixed)
    assert "option redispatch 1\n" in text and 'log-format "conn %ci:%cp' in text
    argv = apiserver_argv(Path("/k"), c1, paths, ["https://e"], Path("/ca"), fixed)
    assert "--shutdown-delay-duration=10s" in argv
    assert "--shutdown-watch-termination-grace-period=5s" in argv
    seed_argv = apiserver_argv(Path("/k"), c1, paths, [], Path("/ca"), KubernetesSettings())
    assert not any("shutdown" in a for a in seed_argv)


def test_shutdown_delay_must_fit_in_the_grace() -> None:
    bad = LabConfig(kubernetes=KubernetesSettings(apiserver_shutdown_delay_s=10))
    with pytest.raises(ConfigError, match="SIGKILL the apiserver"):
        bad.validate()
    LabConfig(
        kubernetes=KubernetesSettings(apiserver_shutdown_delay_s=10),
        supervisor=SupervisorSettings(stop_grace_s=30),
    ).validate()
    with pytest.raises(ConfigError, match="stop_grace_s"):
        LabConfig(supervisor=SupervisorSettings(stop_grace_s=0)).validate()


def test_watch_termination_must_end_before_the_sigkill() -> None:
    grace = SupervisorSettings(stop_grace_s=30)
    fits = KubernetesSettings(apiserver_shutdown_delay_s=10, apiserver_watch_termination_grace_s=5)
    LabConfig(kubernetes=fits, supervisor=grace).validate()
    late = KubernetesSettings(apiserver_shutdown_delay_s=10, apiserver_watch_termination_grace_s=20)
    with pytest.raises(ConfigError, match="still be open at SIGKILL"):
        LabConfig(kubernetes=late, supervisor=grace).validate()
    with pytest.raises(ConfigError, match="watch_termination"):
        LabConfig(
            kubernetes=KubernetesSettings(apiserver_watch_termination_grace_s=-1), supervisor=grace
        ).validate()
