"""What the audit reads, without a cluster: a static pod manifest's command line, a served
certificate over a real TLS handshake, promtool on a rules file, and the outputs."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubedrill.audit import certs
from kubedrill.audit.alert_rules import check_alert_rules, judge_promtool
from kubedrill.audit.finding import Finding
from kubedrill.audit.output import render, to_json, write_allure
from kubedrill.checks.alerts import DEFAULT_RULES
from kubedrill.cluster import Node
from kubedrill.errors import ConfigError
from kubedrill.targets.lab import pki
from kubedrill.targets.lab.config import load_lab_config
from kubedrill.targets.lab.control import LabControl
from kubedrill.targets.static_pod import manifest_argv
from kubedrill.transport import TransportSpec

# What kubeadm writes (and kind's nodes run): /etc/kubernetes/manifests/etcd.yaml, shortened.
KUBEADM_ETCD = """
apiVersion: v1
kind: Pod
metadata:
  annotations:
    kubeadm.kubernetes.io/etcd.advertise-client-urls: https://172.18.0.3:2379
  labels: {component: etcd, tier: control-plane}
  name: etcd
  namespace: kube-system
spec:
  containers:
  - command:
    - etcd
    - --advertise-client-urls=https://172.18.0.3:2379
    - --cert-file=/etc/kubernetes/pki/etcd/server.crt
    - --client-cert-auth=true
    - --data-dir=/var/lib/etcd
    - --experimental-initial-corrupt-check=true
    - --listen-metrics-urls=http://127.0.0.1:2381
    - --name=kd-control-plane
    - --snapshot-count=10000
    image: registry.k8s.io/etcd:3.6.4-0
    name: etcd
  hostNetwork: true
"""


def test_kubeadm_manifest_command_line() -> None:
    argv = manifest_argv(KUBEADM_ETCD, "etcd")
    assert argv is not None and argv[0] == "etcd"
    assert "--snapshot-count=10000" in argv and "--name=kd-control-plane" in argv


def test_manifest_args_and_container_choice() -> None:
    text = """
spec:
  containers:
  - {name: sidecar, command: [sleep, "1"]}
  - {name: kube-scheduler, command: [kube-scheduler], args: ["--leader-elect=false"]}
"""
    assert manifest_argv(text, "kube-scheduler") == ("kube-scheduler", "--leader-elect=false")
    assert manifest_argv(text, "etcd") == ("sleep", "1")  # no container by that name: the first


@pytest.mark.parametrize("text", ["", "not: a pod", "spec: {containers: []}", ": ["])
def test_manifest_that_is_no_pod(text: str) -> None:
    assert manifest_argv(text, "etcd") is None


# -- served certificates --------------------------------------------------------------------------


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A TLS server on 127.0.0.1 serving a certificate valid for 10 days (the lab's PKI)."""
    ca = pki.create_ca(tmp_path, "ca", "test-ca")
    pair = pki.issue(
        ca, tmp_path, "server", "audited", ips=["127.0.0.1"], server=True,
        validity=dt.timedelta(days=10),
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(pair.cert), str(pair.key))
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            try:
                with context.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except (OSError, ssl.SSLError):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield port, pair.cert
    stop.set()
    thread.join()
    listener.close()


def test_served_certificate_read_by_handshake(tls_server: tuple[int, Path]) -> None:
    port, _ = tls_server
    found = certs.served_cert(certs.Endpoint("test", "127.0.0.1", port))
    assert found.error == "" and found.subject == "CN=audited"
    assert found.not_after is not None
    now = dt.datetime.now(dt.UTC)
    assert 9.9 < (found.not_after - now).total_seconds() / 86400 <= 10
    judged = certs.judge_certs([found], now)
    assert judged.status == "warn" and "expires in 10.0 days" in judged.evidence


def test_nothing_listening_fails() -> None:
    with socket.create_server(("127.0.0.1", 0)) as s:
        port = s.getsockname()[1]
    found = certs.served_cert(certs.Endpoint("gone", "127.0.0.1", port), timeout=1)
    assert found.not_after is None and found.error
    judged = certs.judge_certs([found], dt.datetime.now(dt.UTC))
    assert judged.status == "fail" and "no TLS handshake" in judged.evidence


@pytest.mark.parametrize(
    ("days", "expected"),
    [(400, "pass"), (31, "pass"), (30, "warn"), (8, "warn"), (7, "fail"), (-1, "fail")],
)
def test_expiry_thresholds(days: float, expected: str) -> None:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    served = certs.ServedCert(certs.Endpoint("e", "h", 1), "CN=x", now + dt.timedelta(days=days))
    assert certs.judge_certs([served], now).status == expected


def test_lab_cert_validity_setting(tmp_path: Path) -> None:
    path = tmp_path / "lab.yaml"
    path.write_text("lab:\n  cert_validity_days: 10\n")
    assert load_lab_config(path).cert_validity_days == 10
    path.write_text("lab:\n  cert_validity_days: 0\n")
    with pytest.raises(ConfigError, match=r"lab\.cert_validity_days is 0"):
        load_lab_config(path)


# -- alert rules ----------------------------------------------------------------------------------


def test_rules_file_loads() -> None:
    found = check_alert_rules(DEFAULT_RULES)
    assert found.status == "pass" and "alerting rules load" in found.evidence
    assert "not that your Prometheus loaded it" in found.evidence


def test_broken_rules_fail(tmp_path: Path) -> None:
    rules = tmp_path / "broken.rules.yml"
    rules.write_text("groups:\n- name: g\n  rules:\n  - alert: Bad\n    expr: up{ ==\n")
    found = check_alert_rules(rules)
    assert found.status == "fail" and "exited 1" in found.evidence
    assert judge_promtool(rules, 0, "", ["A"]).status == "pass"


# -- outputs --------------------------------------------------------------------------------------

FINDINGS = [
    Finding("a", "item a", "pass", "all good"),
    Finding("b", "item b", "warn", "short of the seed", "do this", ("line 1",)),
    Finding("c", "item c", "fail", "broken", "do that"),
    Finding("d", "item d", "skip", "not here"),
]


def test_render_and_json() -> None:
    text = render(FINDINGS, "lab/x")
    assert "a                  PASS   all good" in text
    assert "fix: do that" in text
    assert text.endswith("1 pass, 1 warn, 1 fail, 1 not applicable -> exit 1")
    data = to_json(FINDINGS, "lab/x", {"target": "lab"}, dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    assert data["exit_code"] == 1 and data["summary"]["warn"] == 1
    assert [f["status"] for f in data["findings"]] == ["pass", "warn", "fail", "skip"]


def test_allure_results(tmp_path: Path) -> None:
    write_allure(FINDINGS, tmp_path, cluster="lab/x", facts={"target": "lab"}, started_ms=1000)
    results = [json.loads(p.read_text()) for p in tmp_path.glob("*-result.json")]
    by_name = {r["name"]: r for r in results}
    assert {n: r["status"] for n, r in by_name.items()} == {
        "audit: item a": "passed",
        "audit: item b": "broken",
        "audit: item c": "failed",
        "audit: item d": "skipped",
    }
    assert by_name["audit: item b"]["statusDetails"]["message"].startswith("audit warning: ")
    [attachment] = by_name["audit: item b"]["attachments"]
    assert (tmp_path / attachment["source"]).read_text() == "line 1"
    categories = json.loads((tmp_path / "categories.json").read_text())
    names = [c["name"] for c in categories]
    # Allure 3 takes the first category that matches: the warning's comes before "Runner error".
    assert names.index("Audit warning") < names.index("Runner error")
    assert (tmp_path / "environment.properties").exists()


# -- the lab's command lines ----------------------------------------------------------------------


def test_lab_command_line_from_the_process_or_components_json(tmp_path: Path) -> None:
    state = tmp_path / "state"
    (state / "run").mkdir(parents=True)
    argv = [sys.executable, "-c", "import time; time.sleep(30)", f"{state}/data"]
    (state / "components.json").write_text(
        json.dumps([{"host": "h1", "component": "etcd", "netns": "x", "argv": ["etcd", "--a=1"]}])
    )
    node = Node("h1", frozenset({"etcd"}), "10.0.0.1", TransportSpec("local", "h1"))
    control = LabControl(state)
    # A pid file naming a process that is not this lab's (pid reused): components.json.
    (state / "run" / "h1__etcd.pid").write_text(str(os.getpid()))
    found = control.command_line(node, "etcd")
    assert found is not None and found.argv == ("etcd", "--a=1")
    assert found.source.endswith("components.json (not running)")
    # The running process's own command line.
    proc = subprocess.Popen(argv)
    try:
        # Until the child has exec'd, /proc shows the forked parent's command line (pytest's).
        cmdline = Path(f"/proc/{proc.pid}/cmdline")
        deadline = time.monotonic() + 10
        while f"{state}/data".encode() not in cmdline.read_bytes():
            assert time.monotonic() < deadline, "the child never exec'd"
            time.sleep(0.01)
        (state / "run" / "h1__etcd.pid").write_text(str(proc.pid))
        found = control.command_line(node, "etcd")
        assert found is not None and found.argv == tuple(argv)
        assert found.source == f"/proc/{proc.pid}/cmdline"
    finally:
        proc.kill()
        proc.wait()
    assert control.command_line(node, "kube-scheduler") is None
