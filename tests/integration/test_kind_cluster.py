"""Drills against a real kind cluster. Needs the kind CLI and a Docker engine, which these CI
machines lack (no Docker, no image registry): the tests skip with that reason here.

On a laptop or a CI runner with Docker:
    kubedrill kind up --name kubedrill --config kind-configs/ha.yaml
    KUBEDRILL_KIND_NAME=kubedrill pytest tests/integration/test_kind_cluster.py
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from kubedrill.cluster import Cluster
from kubedrill.errors import KubedrillError
from kubedrill.targets.kind.cluster import kind_target
from kubedrill.transport.container import engine_client
from tests.integration.conftest import run_pytest

NAME = os.environ.get("KUBEDRILL_KIND_NAME", "kind")


def why_no_kind() -> str:
    if shutil.which("kind") is None:
        return "the kind CLI is not installed (go install sigs.k8s.io/kind@v0.33.0)"
    try:
        engine_client(None).close()
    except KubedrillError:
        return "no Docker engine reachable (DOCKER_HOST or /var/run/docker.sock)"
    return ""


pytestmark = pytest.mark.skipif(bool(why_no_kind()), reason=why_no_kind() or "kind present")


@pytest.fixture(scope="module")
def kind(pytestconfig: pytest.Config) -> Iterator[Cluster]:
    try:
        with kind_target(NAME) as cluster:
            yield cluster
    except KubedrillError as exc:
        pytest.skip(f"kind cluster {NAME!r} is not up: {exc}")


def test_kind_cluster_has_stacked_etcd_and_a_leader(kind: Cluster) -> None:
    members = kind.with_role("etcd")
    assert members == kind.with_role("control-plane")
    assert kind.leader("etcd") in {m.name for m in members}
    assert kind.leader("kube-scheduler") in {m.name for m in members}
    for node in members:
        assert kind.control.is_running(node, "etcd")


def test_etcd_and_control_plane_drills_pass_on_kind(kind: Cluster) -> None:
    done = run_pytest(
        "drills/", "-m", "etcd or apiserver or controller or scheduler",
        "--target", "kind", "--kind-cluster", NAME, "--allow-target", f"kind/{NAME}",
        timeout=3600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
