"""`kubedrill kind up` and `kind down` for real on podman, as a user runs them: an HA cluster
(kind-configs/ha.yaml: 3 control-plane nodes behind the load balancer, 2 workers) on
kubedrill's own network with pinned addresses, kubedrill's node and load-balancer images; a
control-plane node stopped and started comes back on its address and the cluster heals; down
leaves no container, network, record or changed kernel setting behind.

Needs root, podman and the node image (`make kind-image`); skipped without the image. Takes a
few minutes.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from kubedrill.targets.kind import host
from kubedrill.targets.lab.config import default_cache_dir
from tests.integration.container_engine import ensure_drop_in, podman

NAME = "kd-lbtest"
SUBNET = "10.213.43.0/24"
PREFIX = "10.213.43."
ROOT = Path(__file__).resolve().parents[2]
STATE = Path("/var/lib/kubedrill/kind")


def why_skip() -> str:
    if shutil.which("podman") is None:
        return "podman is not installed"
    try:
        from kubedrill.targets.kind.image import node_image_tag
    except ImportError:
        return "the node-image code is not here"
    if podman("image", "exists", node_image_tag(), check=False).returncode != 0:
        return f"node image {node_image_tag()} not built (make kind-image)"
    return ""


pytestmark = pytest.mark.skipif(bool(why_skip()), reason=why_skip() or "ready")


def kubedrill(*args: str, timeout: float = 1200) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "kubedrill.cli", "kind", *args, "--name", NAME],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    print(done.stdout, done.stderr)
    return done


def kubectl(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    binary = next((default_cache_dir() / "bin").glob("kubernetes-*/kubectl"), None)
    assert binary is not None, "kubectl is built by `make setup` (kubedrill build)"
    return subprocess.run(
        [str(binary), "--kubeconfig", str(kubeconfig), "--request-timeout", "5s", *args],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip


def lb_flags() -> dict[str, str]:
    try:
        text = requests.get(f"http://{PREFIX}10:10000/clusters", timeout=2).text
    except requests.RequestException:
        return {}
    out = {}
    for line in text.splitlines():
        parts = line.split("::")
        if len(parts) == 4 and parts[2] == "health_flags":
            out[parts[1]] = parts[3]
    return out


def wait_for(what: str, check: Callable[[], bool], timeout: float) -> float:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(1)
    return time.monotonic() - started


def leftovers() -> list[str]:
    names = podman("ps", "-a", "--format", "{{.Names}}").stdout.split()
    found = [f"container {n}" for n in names if n.startswith(f"{NAME}-")]
    nets = podman("network", "ls", "--format", "{{.Name}}").stdout.split()
    found += [f"network {n}" for n in nets if NAME in n]
    found += [f"state {p}" for p in STATE.glob(f"{NAME}*")]
    return found


@pytest.fixture(scope="module")
def cluster() -> Iterator[Path]:
    ensure_drop_in()
    if leftovers():
        kubedrill("down", timeout=300)
    before = host.sysctl_snapshot()
    done = kubedrill("up", "--config", "kind-configs/ha.yaml", "--subnet", SUBNET)
    try:
        assert done.returncode == 0, done.stderr[-3000:]
        yield STATE / f"{NAME}.kubeconfig"
    finally:
        down = kubedrill("down", timeout=300)
        assert down.returncode == 0, down.stderr[-2000:]
    assert leftovers() == []
    assert host.snapshot_diff(before, host.sysctl_snapshot()) == []


def test_up_pins_every_node_and_the_lb_balances_them(cluster: Path) -> None:
    fmt = "{{.Name}} {{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"
    names = [n for n in podman("ps", "--format", "{{.Names}}").stdout.split() if NAME in n]
    got = dict(
        line.split() for line in podman("inspect", "--format", fmt, *names).stdout.splitlines()
    )
    assert got == {
        f"{NAME}-external-load-balancer": f"{PREFIX}10",
        f"{NAME}-control-plane": f"{PREFIX}11",
        f"{NAME}-control-plane2": f"{PREFIX}12",
        f"{NAME}-control-plane3": f"{PREFIX}13",
        f"{NAME}-worker": f"{PREFIX}21",
        f"{NAME}-worker2": f"{PREFIX}22",
    }
    nodes = kubectl(cluster, "get", "nodes", "-o", "name")
    assert nodes.returncode == 0, nodes.stderr
    assert len(nodes.stdout.split()) == 5
    wait_for("3 healthy backends", lambda: list(lb_flags().values()) == ["healthy"] * 3, 60)
    assert set(lb_flags()) == {f"{PREFIX}{i}:6443" for i in (11, 12, 13)}


def test_a_stopped_control_plane_node_comes_back_on_its_address(cluster: Path) -> None:
    node, backend = f"{NAME}-control-plane2", f"{PREFIX}12:6443"
    podman("stop", node, timeout=120)
    failed = "/failed_active_hc"
    took = wait_for(
        "the LB to fail the stopped node",
        lambda: lb_flags().get(backend, "").startswith(failed),
        30,
    )
    print(f"LB marked {node} failed {took:.1f} s after it stopped")
    assert kubectl(cluster, "get", "nodes").returncode == 0  # the API through the LB, 2 of 3
    podman("start", node)
    fmt = "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"
    assert podman("inspect", "--format", fmt, node).stdout.strip() == f"{PREFIX}12"
    took = wait_for(
        "the node's apiserver back in the LB", lambda: lb_flags().get(backend) == "healthy", 180
    )
    print(f"{node} healthy in the LB {took:.1f} s after start")
    etcd = kubectl(cluster, "get", "--raw", "/readyz/etcd")
    assert etcd.returncode == 0 and etcd.stdout.strip() == "ok", etcd.stderr
