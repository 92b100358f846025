"""Pinned node addresses on real podman: a container started through kubedrill's podman shim on
kubedrill's own network keeps its planned address across `podman stop` + `podman start` and
across a SIGKILL + start, which is what an HA kind control plane needs when a drill stops a node.
A container the plan does not name goes through the shim unchanged (and gets whatever podman
hands out)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubedrill.targets.kind import network
from kubedrill.targets.kind.image.lb import lb_image
from kubedrill.targets.kind.ipplan import plan
from kubedrill.targets.kind.podman_shim import install_shim, path_with_shim
from tests.integration.container_engine import ensure_drop_in, podman

CLUSTER = "kd-lbpin"
SUBNET = "10.213.42.0/24"
NET = network.network_name(CLUSTER)
PINNED = f"{CLUSTER}-control-plane2"
UNPINNED = f"{CLUSTER}-other"
LOOP = ["bash", "-c", "while true; do sleep 1; done"]

pytestmark = pytest.mark.skipif(shutil.which("podman") is None, reason="podman is not installed")


def ip_of(name: str) -> str:
    fmt = "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"
    return podman("inspect", "--format", fmt, name).stdout.strip()


def cleanup() -> None:
    podman("rm", "--force", "--ignore", "--time", "0", PINNED, UNPINNED, check=False)
    if podman("network", "exists", NET, check=False).returncode == 0:
        network.remove(NET, CLUSTER)


@pytest.fixture
def shim_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    ensure_drop_in()
    cleanup()
    addresses = plan(CLUSTER, ("control-plane", "control-plane"), SUBNET)
    network.check_free(NET, SUBNET, CLUSTER)
    network.create(NET, SUBNET, addresses.gateway, CLUSTER)
    real = shutil.which("podman")
    assert real is not None
    shim = install_shim(tmp_path / "shim", addresses, CLUSTER, real)
    try:
        yield dict(os.environ) | {"PATH": path_with_shim(shim, os.environ.get("PATH"))}
    finally:
        cleanup()
    assert podman("network", "exists", NET, check=False).returncode != 0


def run_through_shim(env: dict[str, str], name: str, image: str) -> None:
    cmd = ["podman", "run", "--detach", "--name", name, "--net", NET, image, *LOOP]
    subprocess.run(cmd, env=env, check=True, capture_output=True, text=True, timeout=120)


def test_pinned_node_keeps_its_address(shim_env: dict[str, str]) -> None:
    image = lb_image()
    run_through_shim(shim_env, PINNED, image)
    run_through_shim(shim_env, UNPINNED, image)
    assert ip_of(PINNED) == "10.213.42.12"
    unpinned = [ip_of(UNPINNED)]
    for _ in range(2):
        podman("stop", "--time", "1", PINNED, UNPINNED)
        podman("start", PINNED, UNPINNED)
        assert ip_of(PINNED) == "10.213.42.12"
        unpinned.append(ip_of(UNPINNED))
    podman("kill", "--signal", "KILL", PINNED)
    podman("start", PINNED)
    assert ip_of(PINNED) == "10.213.42.12"
    print(f"unpinned container's addresses over two restarts: {unpinned}")
    assert all(ip.startswith("10.213.42.") for ip in unpinned)
