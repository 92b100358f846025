"""The certificate expiry rules (alerts/control-plane.rules.yml, group `certificates`) evaluated
by the real promtool on hand-made `kubedrill_tls_cert_expiry_seconds` series: a year left fires
nothing, 20 days the warning, a minute (then expired) the critical one too, for that port only."""

from __future__ import annotations

import shutil

import pytest

from kubedrill.checks.alerts import DEFAULT_RULES, evaluate
from kubedrill.checks.promtool_file import Hold
from kubedrill.probes.metrics import series_key
from kubedrill.probes.served import EXPIRY_METRIC
from kubedrill.workload.metrics_recorder import RecordedSeries

needs_promtool = pytest.mark.skipif(shutil.which("promtool") is None, reason="no promtool")
YEAR = 365 * 86400.0
PORTS = (
    ("control-1", "10.0.1.1:6443", "apiserver"),
    ("control-2", "10.0.1.2:6443", "apiserver"),
    ("control-1", "10.0.1.1:2380", "etcd-peer"),
)


def served(
    left_on_control_1_apiserver: float, *, from_s: int = 20, seconds: int = 60
) -> RecordedSeries:
    """Every port serves a cert with a year left; from `from_s` control-1's apiserver serves
    one with `left_on_control_1_apiserver` seconds left, counting down."""
    series = RecordedSeries(1.0)
    for t in range(seconds):
        for node, instance, kind in PORTS:
            labels = {"job": "kubedrill-tls", "instance": instance, "node": node, "kind": kind}
            left = YEAR - t
            if instance == "10.0.1.1:6443" and t >= from_s:
                left = left_on_control_1_apiserver - (t - from_s)
            series.add(series_key(EXPIRY_METRIC, labels), t + 0.01, left)
    return series


HOLDS = [Hold(9.0, 630.0, "steady state")]


@needs_promtool
def test_a_year_left_fires_nothing() -> None:
    report = evaluate(served(YEAR), DEFAULT_RULES, holds=HOLDS)
    assert report.fired_names() == []
    assert report.confirmed


@needs_promtool
def test_twenty_days_left_fires_the_warning_for_that_port_only() -> None:
    report = evaluate(served(20 * 86400.0), DEFAULT_RULES, holds=HOLDS)
    assert report.fired_names() == ["TLSCertificateExpiringSoon"]
    (instance,) = report.outcomes["TLSCertificateExpiringSoon"].instances
    assert instance.labels["instance"] == "10.0.1.1:6443"
    assert instance.labels["severity"] == "warning"
    assert "expires in 2" in instance.annotations["description"]  # "20 days" -> "2w 6d ..."
    assert report.confirmed


@needs_promtool
def test_a_cert_that_expires_fires_critical_at_once_and_keeps_firing_once_expired() -> None:
    report = evaluate(served(30.0), DEFAULT_RULES, holds=HOLDS)
    assert report.fired_names() == ["TLSCertificateExpiringSoon", "TLSCertificateExpiryCritical"]
    (critical,) = report.outcomes["TLSCertificateExpiryCritical"].instances
    assert critical.labels["instance"] == "10.0.1.1:6443"
    assert critical.labels["kind"] == "apiserver"
    assert critical.labels["severity"] == "critical"
    # No `for:`: firing from the first sample with less than a day left (on the drill's
    # timeline, holds taken out).
    assert critical.first_firing_s == pytest.approx(20.01)
    assert report.confirmed
