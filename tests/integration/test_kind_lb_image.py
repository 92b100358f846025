"""The kind load-balancer image on its own, run the way kind v0.33 runs it: started with kind's
bootstrap command (a `bash -c` that writes the bootstrap and empty CDS/LDS, then loops on
`envoy -c`), configured by exec the way kind writes files (`mkdir -p`, `cp /dev/stdin` to a .tmp,
`sh -c 'chmod 666 ... && mv ...'`), in front of two HTTPS backends on the address of a podman
network this test creates. The proxy must route round robin, mark a stopped backend
`/failed_active_hc` in Envoy's `/clusters` format, stop sending to it, and take it back.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from kubedrill.targets.kind.image.lb import lb_image
from kubedrill.targets.lab.pki import create_ca, issue
from tests.integration.container_engine import ensure_drop_in, podman

NETWORK = "kd-lb-imgtest"
SUBNET = "10.213.41.0/24"
GATEWAY = "10.213.41.1"  # the host's address on the test's own network
LB = f"{NETWORK}-lb"
PORTS = {"b1": 17443, "b2": 17444}
ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.skipif(shutil.which("podman") is None, reason="podman is not installed"),
    pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
]


BOOTSTRAP = """
node:
  cluster: kd-lb-imgtest
  id: kd-lb-imgtest-lb

dynamic_resources:
  cds_config:
    resource_api_version: V3
    path_config_source:
      path: /home/envoy/cds.yaml
  lds_config:
    resource_api_version: V3
    path_config_source:
      path: /home/envoy/lds.yaml

admin:
  access_log_path: /dev/stdout
  address:
    socket_address:
      address: 0.0.0.0
      port_value: 10000
"""
# kind's GenerateBootstrapCommand, same shape: write the bootstrap, empty CDS/LDS if absent,
# restart the proxy until it exits 0.
COMMAND = (
    f"mkdir -p /home/envoy && echo -en '{BOOTSTRAP}' > /home/envoy/envoy.yaml && "
    "{ [ ! -f /home/envoy/cds.yaml ] && echo -en 'resources: []' > /home/envoy/cds.yaml || true; }"
    " && { [ ! -f /home/envoy/lds.yaml ] && echo -en 'resources: []' > /home/envoy/lds.yaml "
    "|| true; } && while true; do envoy -c /home/envoy/envoy.yaml && break; sleep 1; done"
)
LDS = """
resources:
- "@type": type.googleapis.com/envoy.config.listener.v3.Listener
  name: listener_apiserver
  address:
    socket_address:
      address: "0.0.0.0"
      port_value: 6443
  filter_chains:
  - filters:
    - name: envoy.filters.network.tcp_proxy
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
        stat_prefix: ingress_tcp
        cluster: kube_apiservers
"""
CDS_HEAD = """
resources:
- "@type": type.googleapis.com/envoy.config.cluster.v3.Cluster
  name: kube_apiservers
  connect_timeout: 0.25s
  type: STRICT_DNS
  lb_policy: ROUND_ROBIN
  dns_lookup_family: V4_PREFERRED
  health_checks:
  - timeout: 3s
    interval: 2s
    unhealthy_threshold: 2
    healthy_threshold: 1
    initial_jitter: 0s
    no_traffic_interval: 3s
    always_log_health_check_failures: true
    always_log_health_check_success: true
    event_log_path: /dev/stdout
    http_health_check:
      path: /healthz
    transport_socket_match_criteria:
      tls_mode: "true"
  transport_socket_matches:
  - name: "health_check_tls"
    match:
      tls_mode: "true"
    transport_socket:
      name: envoy.transport_sockets.tls
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
        common_tls_context:
          validation_context:
            trust_chain_verification: ACCEPT_UNTRUSTED
  load_assignment:
    cluster_name: kube_apiservers
    endpoints:
    - lb_endpoints:
"""
CDS_ENDPOINT = """      - endpoint:
          address:
            socket_address:
              address: {host}
              port_value: {port}
"""


@dataclass
class Backends:
    cert: Path
    key: Path
    procs: dict[str, subprocess.Popen[str]]

    def start(self, name: str) -> None:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.https_backend", name,
             f"{GATEWAY}:{PORTS[name]}", str(self.cert), str(self.key)],
            cwd=ROOT, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert proc.stdout is not None and proc.stdout.readline().strip() == "serving"
        self.procs[name] = proc

    def stop(self, name: str) -> None:
        proc = self.procs.pop(name)
        proc.terminate()
        proc.wait(10)


def write_like_kind(path: str, content: str) -> None:
    """nodeutils.WriteFile: mkdir -p of the directory, then `cp /dev/stdin`."""
    podman("exec", LB, "mkdir", "-p", str(Path(path).parent))
    done = subprocess.run(
        ["podman", "exec", "-i", LB, "cp", "/dev/stdin", path],
        input=content, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def wait_for(what: str, check: Callable[[], bool], timeout: float = 20) -> float:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.2)
    return time.monotonic() - started


def cleanup() -> None:
    podman("rm", "--force", "--ignore", "--time", "0", LB, check=False)
    if podman("network", "exists", NETWORK, check=False).returncode == 0:
        podman("network", "rm", NETWORK, check=False)


@pytest.fixture
def lb(tmp_path: Path) -> Iterator[tuple[str, Backends]]:
    ensure_drop_in()
    image = lb_image(print)
    cleanup()  # a run killed half-way leaves only names this test owns
    podman("network", "create", "--subnet", SUBNET, NETWORK)
    ca = create_ca(tmp_path, "ca", "kd-lb-imgtest-ca")
    pair = issue(ca, tmp_path, "backend", "backend", ips=[GATEWAY], server=True)
    backends = Backends(pair.cert, pair.key, {})
    try:
        # netavark makes the bridge (and the host's GATEWAY address) with the first container
        podman("run", "-d", "--name", LB, "--hostname", LB, "--net", NETWORK, image,
               "bash", "-c", COMMAND)  # fmt: skip
        for name in PORTS:
            backends.start(name)
        ips = "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"
        ip = podman("inspect", "--format", ips, LB).stdout.strip()
        yield ip, backends
    finally:
        print(podman("logs", LB, check=False).stdout)
        for name in list(backends.procs):
            backends.stop(name)
        cleanup()
    assert podman("network", "exists", NETWORK, check=False).returncode != 0
    assert podman("container", "exists", LB, check=False).returncode != 0


def clusters(ip: str) -> str:
    try:
        return requests.get(f"http://{ip}:10000/clusters", timeout=2).text
    except requests.RequestException:
        return ""


def ready(ip: str) -> bool:
    try:
        return requests.get(f"http://{ip}:10000/ready", timeout=2).text.strip() == "LIVE"
    except requests.RequestException:
        return False


def who(ip: str) -> str:
    return requests.get(f"https://{ip}:6443/who", verify=False, timeout=5).text


def test_lb_image_routes_and_fails_over_like_kinds_envoy(lb: tuple[str, Backends]) -> None:
    ip, backends = lb
    wait_for("the admin endpoint", lambda: ready(ip))
    write_like_kind("/home/envoy/lds.yaml.tmp", LDS)
    cds = CDS_HEAD + "".join(CDS_ENDPOINT.format(host=GATEWAY, port=p) for p in PORTS.values())
    write_like_kind("/home/envoy/cds.yaml.tmp", cds)
    podman("exec", LB, "sh", "-c",
           "chmod 666 /home/envoy/cds.yaml.tmp /home/envoy/lds.yaml.tmp && "
           "mv /home/envoy/cds.yaml.tmp /home/envoy/cds.yaml && "
           "mv /home/envoy/lds.yaml.tmp /home/envoy/lds.yaml")  # fmt: skip
    b1, b2 = (f"kube_apiservers::{GATEWAY}:{p}::" for p in PORTS.values())
    took = wait_for(
        "both backends healthy",
        lambda: (
            f"{b1}health_flags::healthy" in (t := clusters(ip))
            and f"{b2}health_flags::healthy" in t
        ),
    )
    print(f"both healthy {took:.1f} s after the config was written")
    answers = [who(ip) for _ in range(6)]
    assert sorted(answers) == ["b1"] * 3 + ["b2"] * 3, answers
    assert all(answers[i] != answers[i + 1] for i in range(5)), answers

    backends.stop("b2")
    failed = f"{b2}health_flags::/failed_active_hc"
    took = wait_for("b2 marked failed", lambda: failed in clusters(ip))
    print(f"stopped backend marked failed after {took:.1f} s")
    text = clusters(ip)
    print(text)
    assert f"{b1}health_flags::healthy" in text
    assert f"{b2}hostname::{GATEWAY}\n" in text  # STRICT_DNS hosts are named by their address
    assert f"{b1}cx_total::" in text and f"{b2}cx_connect_fail::0" in text
    assert [who(ip) for _ in range(4)] == ["b1"] * 4

    backends.start("b2")
    took = wait_for("b2 healthy again", lambda: f"{b2}health_flags::healthy" in clusters(ip))
    print(f"restarted backend healthy again after {took:.1f} s")
    assert sorted(who(ip) for _ in range(4)) == ["b1", "b1", "b2", "b2"]
    logs = podman("logs", LB).stdout
    assert f"health kube_apiservers {GATEWAY}:{PORTS['b2']}: healthy -> /failed_active_hc" in logs
    assert f"{GATEWAY}:{PORTS['b2']}: /failed_active_hc -> healthy" in logs
