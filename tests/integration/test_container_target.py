"""The kind target's transport and faults against a real engine: podman (runc) serving the
Docker API, node containers labelled and named as kind names them. Every fault goes through
FaultSession and the ledger; `kubedrill heal` repairs what a SIGKILLed run left.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubedrill.cluster import Cluster
from kubedrill.errors import GuardError, TargetError
from kubedrill.faults import Isolate, Selector
from kubedrill.faults.node_container import KillNode, PauseNode, StopNode
from kubedrill.faults.runner import FaultSession
from kubedrill.ledger import Ledger
from kubedrill.targets.kind.cluster import discover_nodes, kind_target
from kubedrill.timeline import Timeline
from kubedrill.transport import transport_for
from kubedrill.transport.container import ContainerTransport
from tests.integration import container_engine as engine
from tests.integration.conftest import ROOT, run_cli
from tests.integration.kind_fault_child import nodes_only_cluster

NAME = "kdkind"
SUBNET = "10.213.60"
LAYOUT = {
    f"{NAME}-control-plane": "control-plane",
    f"{NAME}-control-plane2": "control-plane",
    f"{NAME}-control-plane3": "control-plane",
    f"{NAME}-worker": "worker",
    f"{NAME}-external-load-balancer": "external-load-balancer",
}
DECOY = "kdkindx-control-plane"  # another cluster's node on the same engine
CHILD = Path(__file__).with_name("kind_fault_child.py")
WORKER, CP, CP3 = f"{NAME}-worker", f"{NAME}-control-plane", f"{NAME}-control-plane3"

pytestmark = pytest.mark.skipif(bool(engine.engine_available()), reason=engine.engine_available())


@pytest.fixture(scope="module")
def docker_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    built = engine.ensure_image(tmp_path_factory.mktemp("image"))
    print(f"node image build: {built:.1f} s (0 = cached)")
    with engine.api_service() as host:
        yield host


@pytest.fixture(scope="module")
def fake_kind(docker_host: str) -> Iterator[engine.FakeKindCluster]:
    made = engine.start_nodes(NAME, SUBNET, LAYOUT)
    engine.podman(
        "run", "-d", "--name", DECOY, "--label", "io.x-k8s.kind.cluster=kdkindx",
        "--label", "io.x-k8s.kind.role=control-plane", "--network", made.network,
        engine.IMAGE, *engine.NODE_INIT,
    )  # fmt: skip
    for container, role in LAYOUT.items():
        if role == "control-plane":
            plant_kubeadm_files(container)
    try:
        yield made
    finally:
        engine.podman("rm", "-f", "-t", "0", DECOY, check=False)
        left = engine.remove_nodes(made)
        assert not left, f"the kind test left things behind: {left}"


# What kubeadm leaves on a kind control-plane node, as far as kind_cluster() reads it. The
# contents are stand-ins (no etcd runs here); the point is how they are found and copied.
FAKE_ETCD_FLAGS = ["etcd", "--election-timeout=1234", "--heartbeat-interval=123"]
ADMIN_CONF = f"""apiVersion: v1
kind: Config
clusters:
- name: {NAME}
  cluster:
    certificate-authority-data: {base64.b64encode(b"kube-ca").decode()}
    server: https://{NAME}-external-load-balancer:6443
users:
- name: admin
  user:
    client-certificate-data: {base64.b64encode(b"admin-cert").decode()}
    client-key-data: {base64.b64encode(b"admin-key").decode()}
contexts:
- name: admin@{NAME}
  context: {{cluster: {NAME}, user: admin}}
current-context: admin@{NAME}
"""


def plant_kubeadm_files(container: str) -> None:
    pki = "/etc/kubernetes/pki/etcd"
    manifest = json.dumps({"spec": {"containers": [{"name": "etcd", "command": FAKE_ETCD_FLAGS}]}})
    script = (
        f"mkdir -p {pki} /etc/kubernetes/manifests && cd {pki} && "
        "echo etcd-ca > ca.crt && echo ca-private > ca.key && "
        "echo client-cert > healthcheck-client.crt && echo client-key > healthcheck-client.key && "
        f"printf '%s' \"$ADMIN\" > /etc/kubernetes/admin.conf && "
        f"printf '%s' '{manifest}' > /etc/kubernetes/manifests/etcd.yaml"
    )
    engine.podman("exec", "-e", f"ADMIN={ADMIN_CONF}", container, "sh", "-c", script)


@pytest.fixture
def cluster(fake_kind: engine.FakeKindCluster, docker_host: str) -> Cluster:
    return nodes_only_cluster(NAME, docker_host)


@pytest.fixture
def session(cluster: Cluster, tmp_path: Path) -> Iterator[FaultSession]:
    ledger = Ledger(tmp_path / "ledger")
    yield FaultSession(cluster, Timeline(), ledger, log=lambda _m: None)
    assert not ledger.outstanding(), "undo record left behind"


def state(container: str) -> str:
    return engine.podman("inspect", "--format", "{{.State.Status}}", container).stdout.strip()


def reaches(cluster: Cluster, source: str, target: str) -> bool:
    address = cluster.node(target).address
    result = cluster.transport(source).run(["ping", "-c", "1", "-W", "1", address], timeout=5)
    return result.ok


def kubedrill_rules(cluster: Cluster) -> list[str]:
    found = []
    for node in cluster.nodes:
        out = cluster.transport(node).run(["iptables", "-w", "-S"]).check().stdout
        found += [f"{node.name}: {r}" for r in out.splitlines() if "KUBEDRILL" in r]
    return found


def test_discovery_finds_kinds_nodes_by_label(
    cluster: Cluster, fake_kind: engine.FakeKindCluster
) -> None:
    assert [n.name for n in cluster.nodes] == sorted(LAYOUT)
    assert cluster.node(CP).roles == {"control-plane", "etcd"}
    assert cluster.node(WORKER).roles == {"worker"}
    assert cluster.node(f"{NAME}-external-load-balancer").roles == {"lb"}
    assert {n.name: n.address for n in cluster.nodes} == fake_kind.addresses
    assert cluster.node(WORKER).transport.params["container"] == WORKER
    with pytest.raises(TargetError, match="no kind cluster 'kdnope'"):
        discover_nodes("kdnope", docker_host=fake_kind_host(cluster))


def fake_kind_host(cluster: Cluster) -> str:
    return cluster.node(WORKER).transport.params["docker_host"]


def test_exec_keeps_exit_code_stdout_and_stderr_apart(cluster: Cluster) -> None:
    t = cluster.transport(WORKER)
    result = t.run(["sh", "-c", "echo out; echo err >&2; exit 7"])
    assert (result.exit_code, result.stdout, result.stderr) == (7, "out\n", "err\n")
    assert t.run(["cat"], input="fed through stdin").stdout == "fed through stdin"
    started = time.monotonic()
    slow = t.run(["sleep", "30"], timeout=1.5)
    assert slow.exit_code == 124 and "timed out" in slow.stderr
    assert time.monotonic() - started < 5


def test_clear_errors_for_missing_container_and_unreachable_engine(cluster: Cluster) -> None:
    host = fake_kind_host(cluster)
    missing = ContainerTransport("ghost", f"{NAME}-ghost", host).run(["true"])
    assert missing.exit_code == 125 and f"no container '{NAME}-ghost'" in missing.stderr
    nowhere = "unix:///run/kubedrill-no-such-engine.sock"
    down = ContainerTransport("w", WORKER, nowhere).run(["true"])
    assert down.exit_code == 125
    assert nowhere in down.stderr and "DOCKER_HOST" in down.stderr


def test_pause_node_refuses_exec_until_healed(cluster: Cluster, session: FaultSession) -> None:
    with session.inject(PauseNode(Selector.named(WORKER))):
        assert state(WORKER) == "paused"
        refused = cluster.transport(WORKER).run(["true"])
        assert refused.exit_code == 125
        assert "is paused, and a paused container refuses exec" in refused.stderr
    assert state(WORKER) == "running"
    assert cluster.transport(WORKER).run(["true"]).ok


def test_stop_and_kill_node_are_started_again_by_heal(
    cluster: Cluster, session: FaultSession
) -> None:
    with session.inject(StopNode(Selector.named(WORKER), grace_s=5)):
        assert state(WORKER) == "exited"
        code = engine.podman("inspect", "--format", "{{.State.ExitCode}}", WORKER).stdout
        assert code.strip() == "0", "stop should end the node with SIGTERM, not SIGKILL"
    assert state(WORKER) == "running"
    with session.inject(KillNode(Selector.named(WORKER))):
        assert state(WORKER) == "exited"
        code = engine.podman("inspect", "--format", "{{.State.ExitCode}}", WORKER).stdout
        assert code.strip() == "137"  # SIGKILL
    assert state(WORKER) == "running"
    assert cluster.transport(WORKER).run(["true"]).ok


def test_isolate_cuts_a_node_off_and_heal_restores_it(
    cluster: Cluster, session: FaultSession
) -> None:
    assert reaches(cluster, CP3, CP) and reaches(cluster, CP, CP3)
    with session.inject(Isolate(Selector.named(CP3))) as plan:
        assert plan.victims == (CP3,)
        assert not reaches(cluster, CP3, CP)
        assert not reaches(cluster, WORKER, CP3)
        assert reaches(cluster, CP, WORKER), "nodes outside the fault must still talk"
    assert not kubedrill_rules(cluster)
    assert reaches(cluster, CP3, CP) and reaches(cluster, CP, CP3)


def test_quorum_guard_refuses_pausing_two_of_three_control_planes(
    cluster: Cluster, session: FaultSession
) -> None:
    fault = PauseNode(Selector.named(CP, f"{NAME}-control-plane2"))
    with pytest.raises(GuardError, match="lose quorum"), session.inject(fault):
        pass
    assert state(CP) == "running"


@pytest.mark.parametrize("fault", ["pause", "stop", "kill", "isolate"])
def test_heal_after_sigkill(cluster: Cluster, tmp_path: Path, fault: str) -> None:
    ledger_dir = tmp_path / "ledger"
    env = {**os.environ, "KUBEDRILL_LEDGER_DIR": str(ledger_dir), "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, str(CHILD), fake_kind_host(cluster), NAME, fault],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert child.stdout is not None
    try:
        first = child.stdout.readline()
        assert first.strip() == "INJECTED", child.stderr.read() if child.stderr else first
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert list(ledger_dir.glob("*.json")), "SIGKILL should leave the undo record"
    if fault == "isolate":
        assert kubedrill_rules(cluster), "the partition should outlive the killed run"
    else:
        assert state(WORKER) == ("paused" if fault == "pause" else "exited")
    healed = run_cli("heal", env={"KUBEDRILL_LEDGER_DIR": str(ledger_dir)})
    assert healed.returncode == 0, healed.stdout + healed.stderr
    assert not list(ledger_dir.glob("*.json")), "undo record left behind"
    assert state(WORKER) == "running"
    assert not kubedrill_rules(cluster)
    assert reaches(cluster, CP3, CP)


def test_transport_is_rebuilt_from_its_spec(cluster: Cluster) -> None:
    spec = cluster.node(CP).transport
    assert spec.kind == "docker"
    again = transport_for(type(spec).from_dict(spec.to_dict()))
    assert again.run(["cat", "/proc/sys/kernel/hostname"]).stdout.strip() == CP


def test_kind_target_copies_the_client_keys_privately_and_removes_them(docker_host: str) -> None:
    published = engine.podman("port", f"{NAME}-external-load-balancer", "6443/tcp").stdout.strip()
    with kind_target(NAME, docker_host=docker_host) as kind:
        assert kind.name == f"kind/{NAME}" and kind.target == "kind"
        members = {n.name for n in kind.with_role("etcd")}
        assert members == {n for n, r in LAYOUT.items() if r == "control-plane"}
        assert kind.etcd.endpoints[CP] == f"https://{kind.node(CP).address}:2379"
        assert kind.etcd.tls is not None
        assert kind.etcd.tls.cert.read_text() == "client-cert\n"
        assert kind.etcd.tls.key.read_text() == "client-key\n"
        secrets = kind.etcd.tls.key.parent
        assert stat.S_IMODE(secrets.stat().st_mode) == 0o700
        for path in secrets.iterdir():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
            assert "ca-private" not in path.read_text(errors="replace"), "the CA key was copied"
        assert kind.kube is not None
        assert kind.kube.server == f"https://{published}"  # admin.conf, server -> the LB's port
        assert kind.kube.key.read_bytes() == b"admin-key"
        assert kind.facts.election_timeout_ms == 1234
        assert set(kind.leader_locators) == {"etcd", "kube-controller-manager", "kube-scheduler"}
    assert not secrets.exists(), "the copied keys outlived the run"


def test_kind_status_command_reports_the_nodes(cluster: Cluster, session: FaultSession) -> None:
    host = fake_kind_host(cluster)
    up = run_cli("kind", "status", "--name", NAME, "--docker-host", host)
    assert up.returncode == 0, up.stderr
    assert all(name in up.stdout for name in LAYOUT)
    with session.inject(PauseNode(Selector.named(WORKER))):
        degraded = run_cli("kind", "status", "--name", NAME, "--docker-host", host)
    assert degraded.returncode == 1 and "DEGRADED" in degraded.stdout
