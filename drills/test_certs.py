"""Certificate drills (lab target: kubedrill holds the lab's CA): rotate every control-plane
certificate one host at a time under steady traffic with no failed request, and let one
certificate expire under the drill to see what breaks, what notices, and what heals it."""

from __future__ import annotations

import collections
import datetime as dt
import functools
from pathlib import Path

import pytest
import requests

from kubedrill.audit.certs import ServedCert
from kubedrill.cluster import Cluster, Node
from kubedrill.drill import Drill
from kubedrill.faults import Selector, StopComponent
from kubedrill.faults.certs import ExpireCert
from kubedrill.probes import etcd_checks, served
from kubedrill.probes.etcd import EtcdClient
from kubedrill.probes.kube import KubeProbes
from kubedrill.targets.lab import certs
from kubedrill.targets.lab.control import LabControl
from kubedrill.workload.api_configmaps import api_session

pytestmark = [pytest.mark.certs]

# Reload their files without a restart (measured: the new serial is served to the next
# handshake, < 0.1 s): kube-apiserver watches its serving cert, etcd reads its certs on every
# handshake.
RELOADED = ("etcd-peer", "etcd-server", "apiserver")
# client-go reloads a kubeconfig's client cert files only every 5 minutes
# (transport.CertCallbackRefreshDuration): a graceful restart, one host at a time, takes them.
RESTARTED = ("controller-manager", "scheduler")
COMPONENT_PORT = {"kube-controller-manager": 10257, "kube-scheduler": 10259}


def lab_state(cluster: Cluster) -> dt.timedelta:
    if not isinstance(cluster.control, LabControl):
        pytest.skip(f"the {cluster.target} target's CA is not kubedrill's to issue with")
    if cluster.kube is None:
        pytest.skip(f"{cluster.name} has no Kubernetes control plane (topology stacked)")
    return certs.lab_validity(cluster.control.state_dir)


def healthy(cluster: Cluster, node: Node, component: str) -> bool:
    """The component's /healthz on its secure port answers ok (served with a cluster-CA
    cert on the lab)."""
    assert cluster.kube is not None
    url = f"https://{node.address}:{COMPONENT_PORT[component]}/healthz"
    try:
        resp = requests.get(url, verify=str(cluster.kube.component_ca), timeout=1.0)
    except requests.RequestException:
        return False
    return resp.status_code == 200 and resp.text == "ok"


API_HEALTHY = "the API is ready through the load balancer and every backend is UP"


def far() -> dt.datetime:
    """A day from now: a served cert that ends before it is the short-lived one."""
    return dt.datetime.now(dt.UTC) + dt.timedelta(days=1)


def short_lived(cert: ServedCert) -> bool:
    return cert.not_after is not None and cert.not_after < far()


def expired(cert: ServedCert) -> bool:
    return cert.not_after is not None and cert.not_after <= dt.datetime.now(dt.UTC)


def renew(state_dir: Path, host: str, kind: str, validity: dt.timedelta) -> int:
    """Renew in place (same key, one rename); the new serial."""
    return certs.renew(certs.lab_cert(state_dir, host, kind), validity).serial_number


def serves(cluster: Cluster, port: served.ServedPort, serial: int) -> bool:
    return served.read(cluster, port).serial == serial


def failures(drill: Drill) -> dict[str, int]:
    """Failed requests of every client by client and reason."""
    return dict(
        collections.Counter(f"{op.client}: {op.error or op.outcome}" for op in drill.operations()
                            if not op.ok)
    )  # fmt: skip


@pytest.mark.slow
def test_rotate_certs_one_host_at_a_time(drill: Drill, kube: KubeProbes, etcd: EtcdClient) -> None:
    """Renew, host by host, the etcd peer and server certs, the apiserver's serving cert and
    the controller-manager's and scheduler's client certs, while clients go through the load
    balancer and to etcd: not one request fails, and every port serves its new serial."""
    validity = lab_state(drill.cluster)
    assert isinstance(drill.cluster.control, LabControl)
    state_dir = drill.cluster.control.state_dir
    drill.steady_state(
        f"etcd is healthy, {API_HEALTHY}",
        lambda: etcd_checks.all_healthy(etcd) and kube.ready() and kube.all_backends_up(),
    )
    drill.api_reader()
    drill.writer()
    for node in drill.cluster.with_role("control-plane"):
        started = drill.timeline.mark("host.rotating", node=node.name)
        for kind in RELOADED:
            serial = drill.act(
                f"renew the {kind} cert of {node.name}",
                functools.partial(renew, state_dir, node.name, kind, validity),
                dry=0,
            )
            port = served.served_port(drill.cluster, node, kind)
            drill.wait_for(
                f"{kind}.served.{node.name}",
                functools.partial(serves, drill.cluster, port, serial),
                timeout=30,
            )
        for kind in RESTARTED:
            drill.act(
                f"renew the {kind} client cert of {node.name} (its kubeconfig's file)",
                functools.partial(renew, state_dir, node.name, kind, validity),
                dry=0,
            )
            component = certs.KINDS[kind][2]
            before = drill.cluster.control.pid(node, component)
            with drill.fault(StopComponent(component, Selector.named(node.name))):
                pass  # stopped gracefully (SIGTERM); the heal starts it on the new file
            drill.wait_for(
                f"{kind}.restarted.{node.name}",
                functools.partial(healthy, drill.cluster, node, component),
                budget="recovery",
            )
            after = drill.cluster.control.pid(node, component)
            drill.expect(
                after is not None and after != before,
                f"{component} on {node.name} runs in a new process, started on the new cert",
                f"pid {before} before, {after} after",
            )
        done = drill.timeline.mark("host.rotated", node=node.name)
        drill.observe(f"rotation_s.{node.name}", round(done.offset - started.offset, 2))
    with drill.verify():
        drill.wait_for("api.healthy", lambda: kube.ready() and kube.all_backends_up(), timeout=30)
        drill.assert_api_available()
        failed = failures(drill)
        drill.observe("failed_requests", failed)
        drill.expect(not failed, "no request failed during the rotation", failed)


VALID_S = 30.0  # the short-lived certificate's validity from the inject


def direct_refused(drill: Drill, node: Node) -> str | None:
    """Why a new client connecting straight to `node`'s apiserver fails, None if it does
    not (a new connection each time: a handshake made before the expiry keeps working)."""
    assert drill.cluster.kube is not None
    session = api_session(drill.cluster.kube)
    try:
        session.get(f"https://{node.address}:{served.APISERVER_PORT}/readyz", timeout=2.0)
    except requests.RequestException as exc:
        return f"{type(exc).__name__}: {exc}"[-160:]
    finally:
        session.close()
    return None


@pytest.mark.slow
@pytest.mark.expect_alerts("TLSCertificateExpiryCritical")
def test_apiserver_cert_expires_under_the_drill(drill: Drill, kube: KubeProbes) -> None:
    """One apiserver's serving cert is re-issued valid for 30 s and expires: measured is
    what fails (new clients straight to it; through the load balancer, the requests routed
    to it), whether HAProxy's health check notices, which alert fires and when; the undo
    re-issues a valid cert and the apiserver serves it without a restart."""
    lab_state(drill.cluster)
    drill.steady_state(API_HEALTHY, lambda: kube.ready() and kube.all_backends_up())
    victim = drill.cluster.node(drill.cluster.nth("control-plane", 0))
    port = served.served_port(drill.cluster, victim, "apiserver")
    drill.api_reader()
    with drill.fault(ExpireCert("apiserver", Selector.named(victim.name), VALID_S)):
        drill.wait_for(
            "cert.short_lived_served",
            lambda: short_lived(served.read(drill.cluster, port)),
            timeout=30,
        )
        drill.wait_for(
            "cert.expired",
            lambda: expired(served.read(drill.cluster, port)),
            timeout=VALID_S + 30,
        )
        drill.wait_for(
            "direct.refused", lambda: direct_refused(drill, victim) is not None, timeout=30
        )
        drill.observe("direct_error", direct_refused(drill, victim))
        # What the load balancer makes of it: its check does not verify the backend's cert
        # (check-ssl verify none, as kubeadm-style HAProxy configs do).
        drill.hold(10.0, lambda: None)
        drill.observe("lb_backend_state_expired", kube.backends().get(victim.name, "?"))
    with drill.verify():
        drill.wait_for(
            "direct.ok", lambda: direct_refused(drill, victim) is None, budget="recovery"
        )
        drill.within_budget("recovery", "fault.healing", "direct.ok")
        expired_at = drill.offset("cert.expired")
        window = [
            op
            for op in drill.api_reader_ops()
            if expired_at <= op.invoke < drill.offset("fault.healing")
        ]
        drill.observe("lb_requests_while_expired", len(window))
        drill.observe("lb_failed_while_expired", sum(not op.ok for op in window))
        drill.observe("failed_requests", failures(drill))
        drill.expect(
            any(not op.ok for op in window),
            "clients through the load balancer saw the expired certificate",
            f"{len(window)} requests, none failed",
        )
