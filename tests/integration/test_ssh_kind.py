"""The SSH target on real nodes: the kind cluster's node containers run sshd (kubedrill's node
image has openssh-server), and kubedrill reaches them as it would reach kubeadm machines, host
keys verified. This meets a real kubelet on both of the SSH target's real paths:

- static pod: the manifest moved away, kubelet stops the pod, `crictl` sees it gone; heal moves
  it back and kubelet starts it again;
- systemd: `systemctl stop kubelet` on a node, then `systemctl start` at heal.

Needs the kind cluster (`make kind-up`); skips without one unless KUBEDRILL_REQUIRE_KIND=1.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubedrill.cluster import Cluster
from kubedrill.errors import KubedrillError
from kubedrill.faults import Selector, StopComponent
from kubedrill.faults.runner import FaultSession
from kubedrill.ledger import Ledger
from kubedrill.polling import poll_until
from kubedrill.targets.kind.ssh_access import start_ssh
from kubedrill.targets.select import TargetOptions, open_target
from kubedrill.targets.ssh.control import SshControl
from kubedrill.timeline import Timeline
from kubedrill.transport import transport_for
from tests.integration.conftest import run_cli

NAME = os.environ.get("KUBEDRILL_KIND_NAME", "kubedrill")
REQUIRED = os.environ.get("KUBEDRILL_REQUIRE_KIND") == "1"


@pytest.fixture(scope="module")
def inventory() -> Path:
    try:
        return start_ssh(NAME)
    except KubedrillError as exc:
        if REQUIRED:
            pytest.fail(f"kind cluster {NAME!r} is required (KUBEDRILL_REQUIRE_KIND=1): {exc}")
        pytest.skip(f"kind cluster {NAME!r} is not up: {exc}")


@pytest.fixture(scope="module")
def ssh(inventory: Path) -> Iterator[Cluster]:
    with open_target(TargetOptions(target="ssh", inventory=inventory)) as cluster:
        yield cluster


def test_ssh_check_finds_static_pods_on_real_nodes(inventory: Path) -> None:
    done = run_cli("ssh", "check", "--inventory", str(inventory), timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "host keys verified" in done.stdout
    lines = [line for line in done.stdout.splitlines() if "control-plane" in line]
    for component in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        found = [line for line in lines if f" {component} " in line]
        assert len(found) == 3, done.stdout
        assert all("static pod" in line for line in found), found


def test_static_pod_path_moves_the_manifest_and_kubelet_obeys(ssh: Cluster) -> None:
    victim = ssh.nth("control-plane", 2)
    node = ssh.node(victim)
    session = FaultSession(ssh, Timeline(), Ledger(), log=lambda _m: None)
    with session.inject(StopComponent("kube-scheduler", Selector.named(victim))):
        # The inject waited for crictl to see the pod gone; it stays gone while held.
        assert not ssh.control.is_running(node, "kube-scheduler")
        held = transport_for(node.transport).run(
            ["test", "-f", "/etc/kubernetes/kubedrill-held/kube-scheduler.yaml"]
        )
        assert held.ok, "the manifest should be held outside kubelet's directory"
    _, back = poll_until(
        lambda: ssh.control.is_running(node, "kube-scheduler"), bool, timeout=90, interval=1.0
    )
    assert back, "kubelet did not start kube-scheduler again after the manifest came back"


def test_systemd_path_stops_and_starts_kubelet(ssh: Cluster) -> None:
    node = ssh.node(ssh.nth("worker", 0))
    control = ssh.control
    assert isinstance(control, SshControl)
    assert control.manager(node, "kubelet").kind == "systemd"
    steps = control.stop(node, "kubelet")
    transport = transport_for(node.transport)
    try:
        for step in steps.inject:
            transport_for(step.transport).run(list(step.argv), timeout=step.timeout).check()
        assert transport.run(["systemctl", "is-active", "kubelet"]).stdout.strip() != "active"
    finally:
        for step in steps.undo:
            transport_for(step.transport).run(list(step.argv), timeout=step.timeout).check()
    assert transport.run(["systemctl", "is-active", "kubelet"]).stdout.strip() == "active"
