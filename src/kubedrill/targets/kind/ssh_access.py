"""Make a kind cluster's nodes reachable over SSH, so the SSH target meets a real kubelet.

kubedrill's node image carries openssh-server, not enabled. `start_ssh` turns it on in every
node container (not the load balancer): host keys made in the node, a client key of kubedrill's
own in root's authorized_keys, then writes the inventory a user would write for these nodes.
The host keys are read through the engine (`docker exec`), a channel that is already trusted,
so the inventory's known_hosts pins them and the SSH target verifies every connection.

Everything kubedrill keeps lives in /var/lib/kubedrill/kind/<cluster>/ssh (mode 0700, keys
0600) and goes with `kubedrill kind down` (or `remove_ssh`); the sshd processes go with the
nodes.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from kubedrill.cluster import KubeAccess, TLSFiles
from kubedrill.errors import MissingBinaryError, TargetError
from kubedrill.targets.kind.api_service import default_docker_host
from kubedrill.targets.kind.cluster import (
    ENVOY_ADMIN_PORT,
    build_nodes,
    etcd_access,
    etcd_flags,
    kube_access,
    kubeconfig_text,
)
from kubedrill.targets.kind.discovery import NodeContainer, node_containers
from kubedrill.transport.container import ContainerTransport, engine_client

STATE_ROOT = Path("/var/lib/kubedrill/kind")
ENABLE_SSHD = (
    "set -e; umask 077; mkdir -p /root/.ssh /run/sshd; "
    'printf "%s\\n" "$(cat)" > /root/.ssh/authorized_keys; '
    "ssh-keygen -A -q; "
    "systemctl start ssh 2>/dev/null || /usr/sbin/sshd; "
    "cat /etc/ssh/ssh_host_ed25519_key.pub"
)


def ssh_dir(name: str, root: Path = STATE_ROOT) -> Path:
    return root / name / "ssh"


def _client_key(directory: Path, comment: str) -> str:
    key = directory / "id_ed25519"
    if not key.exists():
        if shutil.which("ssh-keygen") is None:
            raise MissingBinaryError("ssh-keygen is missing", "install Debian's openssh-client")
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(key)],
            check=True,
            capture_output=True,
        )
    return (directory / "id_ed25519.pub").read_text().strip()


def _enable(node: NodeContainer, public_key: str, docker_host: str | None) -> str:
    """Start sshd in the node; its host key line for known_hosts."""
    transport = ContainerTransport(node.name, node.name, docker_host)
    result = transport.run(["sh", "-c", ENABLE_SSHD], timeout=60, input=public_key)
    fields = result.stdout.strip().splitlines()[-1].split() if result.ok and result.stdout else []
    if len(fields) < 2:
        raise TargetError(
            f"cannot start sshd in {node.name}: {(result.stderr or result.stdout).strip()[:300]}",
            "the node image needs openssh-server (kubedrill's node image has it: "
            "kubedrill kind image build)",
        )
    return f"{node.address} {fields[0]} {fields[1]}"


def start_ssh(
    name: str, *, docker_host: str | None = None, root: Path = STATE_ROOT, kubectl: str = "kubectl"
) -> Path:
    """sshd on every node of kind cluster `name`; returns the inventory's path."""
    docker_host = docker_host or default_docker_host()
    directory = ssh_dir(name, root)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.chmod(0o700)
    public_key = _client_key(directory, f"kubedrill-kind-{name}")
    client = engine_client(docker_host)
    try:
        containers = node_containers(client, name, docker_host)
        nodes = [c for c in containers if c.kind_role in ("control-plane", "worker")]
        known = [_enable(node, public_key, docker_host) for node in nodes]
        first_cp = next(c for c in nodes if c.kind_role == "control-plane")
        tls = etcd_access(client, build_nodes(containers, docker_host), directory).tls
        assert tls is not None  # kind's etcd always has its health-check client cert
        # The API's CA and client cert as files, so the SSH target never has the kubernetes
        # client copy the embedded key into a temp file.
        kube = kube_access(kubeconfig_text(name, client, containers), directory)
        flags = etcd_flags(client, first_cp.name)
    finally:
        client.close()
    (directory / "known_hosts").write_text("\n".join(known) + "\n")
    lb = next((c for c in containers if c.kind_role == "external-load-balancer"), None)
    inventory = inventory_of(name, directory, nodes, tls, kube, flags, kubectl=kubectl, lb=lb)
    path = directory / "inventory.yaml"
    path.write_text(yaml.safe_dump(inventory, sort_keys=False))
    return path


def inventory_of(
    name: str,
    directory: Path,
    nodes: list[NodeContainer],
    etcd_tls: TLSFiles,
    kube_files: KubeAccess,
    flags: dict[str, str],
    *,
    kubectl: str,
    lb: NodeContainer | None,
) -> dict[str, Any]:
    """The SSH inventory a user would write for these kind nodes (pure)."""
    kube: dict[str, Any] = {
        "kubeconfig": str(kube_files.kubeconfig),
        "kubectl": kubectl,
        "ca": str(kube_files.ca),
        "cert": str(kube_files.cert),
        "key": str(kube_files.key),
    }
    if lb is not None and lb.address:
        kube["envoy_admin"] = f"http://{lb.address}:{ENVOY_ADMIN_PORT}"
    metrics = flags.get("listen-metrics-urls", "")
    section: dict[str, Any] = {
        "name": f"kind-{name}",
        "known_hosts": str(directory / "known_hosts"),
        "ssh_config": None,
        "defaults": {"user": "root", "port": 22, "key": str(directory / "id_ed25519")},
        "etcd": {
            "ca": str(etcd_tls.ca),
            "cert": str(etcd_tls.cert),
            "key": str(etcd_tls.key),
            "election_timeout_ms": int(flags.get("election-timeout", "1000")),
            "heartbeat_interval_ms": int(flags.get("heartbeat-interval", "100")),
        },
        "kube": kube,
        "hosts": [{"name": n.name, "address": n.address, "roles": sorted(n.roles)} for n in nodes],
    }
    if "0.0.0.0:" in metrics:  # reachable from here only when etcd listens on every address
        section["etcd"]["metrics_port"] = int(metrics.rsplit(":", 1)[1].split("/")[0])
    return {"ssh": section}


def remove_ssh(name: str, root: Path = STATE_ROOT) -> list[str]:
    """Drop kubedrill's SSH keys and inventory for kind cluster `name`."""
    directory = ssh_dir(name, root)
    if not directory.exists():
        return []
    shutil.rmtree(directory)
    return [f"ssh state {directory}"]
