"""`kind_cluster(name)`: a running kind cluster as a kubedrill Cluster.

Nodes come from the engine (kind's labels); etcd is reached on each control-plane node's
container address :2379 with the client certificate kubeadm made for etcd health checks, copied
out of a node into a private temp dir; the Kubernetes API through the kubeconfig kind writes (or
the node's admin.conf), whose server is the external load balancer's published port.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import docker
import yaml
from docker import errors as docker_errors

from kubedrill.cluster import Cluster, ClusterFacts, EtcdAccess, KubeAccess, Node, TLSFiles
from kubedrill.errors import TargetError
from kubedrill.ledger import pid_alive
from kubedrill.probes.kube import DEFAULT_WORKLOAD_IMAGE
from kubedrill.probes.lb import EnvoyAdmin
from kubedrill.probes.leaders import add_leader_locators
from kubedrill.targets.kind.api_service import default_docker_host
from kubedrill.targets.kind.control import OBSERVER, KindControl
from kubedrill.targets.kind.discovery import NodeContainer, node_containers
from kubedrill.transport.container import ContainerTransport, engine_client
from kubedrill.transport.kernel import local_delay_method

ETCD_PKI = "/etc/kubernetes/pki/etcd"
# Client certificate kubeadm issues for etcd's health checks: signed by the etcd CA, not the CA
# key itself (which never leaves the node).
ETCD_CLIENT_FILES = {
    "ca.crt": "ca.crt",
    "client.crt": "healthcheck-client.crt",
    "client.key": "healthcheck-client.key",
}
ADMIN_CONF = "/etc/kubernetes/admin.conf"
ETCD_MANIFEST = "/etc/kubernetes/manifests/etcd.yaml"
ENVOY_ADMIN_PORT = 10000  # kind's load balancer config (pkg/cluster/internal/loadbalancer)


def node_spec(container: NodeContainer, docker_host: str | None) -> Node:
    transport = ContainerTransport(container.name, container.name, docker_host).spec
    return Node(container.name, container.roles, container.address, transport)


def build_nodes(containers: list[NodeContainer], docker_host: str | None) -> tuple[Node, ...]:
    stopped = [f"{c.name} ({c.status})" for c in containers if c.status != "running"]
    if stopped:
        raise TargetError(
            f"kind node containers not running: {', '.join(stopped)}",
            "heal leftover faults (kubedrill heal), or `docker start`/`docker unpause` them",
        )
    return tuple(node_spec(c, docker_host) for c in containers)


def discover_nodes(name: str, *, docker_host: str | None = None) -> tuple[Node, ...]:
    """The running node containers of kind cluster `name` as Nodes (no etcd or API access)."""
    client = engine_client(docker_host)
    try:
        return build_nodes(node_containers(client, name, docker_host), docker_host)
    finally:
        client.close()


def copy_out(client: docker.DockerClient, container: str, path: str) -> bytes:
    """One file's bytes from a container (the engine's archive API; no exec needed)."""
    try:
        stream, _stat = client.api.get_archive(container, path)
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
            member = archive.next()
            extracted = archive.extractfile(member) if member is not None else None
            if extracted is None:
                raise TargetError(f"{path} in {container} is not a regular file")
            return extracted.read()
    except docker_errors.NotFound as exc:
        raise TargetError(
            f"{path} not found in {container}",
            "is this a kind node (kindest/node) whose kubeadm init has finished?",
        ) from exc
    except docker_errors.APIError as exc:
        raise TargetError(f"cannot copy {path} out of {container}: {exc}") from exc


def write_private(directory: Path, name: str, data: bytes) -> Path:
    path = directory / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return path


def etcd_access(client: docker.DockerClient, nodes: tuple[Node, ...], secrets: Path) -> EtcdAccess:
    members = [n for n in nodes if "etcd" in n.roles]
    if not members:
        raise TargetError("the kind cluster has no control-plane node (no etcd member)")
    files = {
        local: write_private(
            secrets, f"etcd-{local}", copy_out(client, members[0].name, f"{ETCD_PKI}/{remote}")
        )
        for local, remote in ETCD_CLIENT_FILES.items()
    }
    return EtcdAccess(
        endpoints={n.name: f"https://{n.address}:2379" for n in members},
        tls=TLSFiles(files["ca.crt"], files["client.crt"], files["client.key"]),
        # Reachable when the kind config sets etcd's listen-metrics-urls (kind-configs/ha.yaml).
        metrics_urls={n.name: f"http://{n.address}:2381/metrics" for n in members},
    )


def kubeconfig_text(name: str, client: docker.DockerClient, containers: list[NodeContainer]) -> str:
    """kind's own kubeconfig when the kind CLI is installed, else the node's admin.conf with the
    server set to the port the engine publishes for the API (the load balancer's in HA)."""
    kind = shutil.which("kind")
    if kind:
        done = subprocess.run(
            [kind, "get", "kubeconfig", "--name", name],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode == 0:
            return done.stdout
    entry = next((c for c in containers if c.kind_role == "external-load-balancer"), None)
    entry = entry or next(c for c in containers if c.kind_role == "control-plane")
    if not entry.published_api:
        raise TargetError(
            f"{entry.name} publishes no port for the Kubernetes API (6443/tcp)",
            "install the kind CLI so kubedrill can ask it for the kubeconfig",
        )
    first_cp = next(c for c in containers if c.kind_role == "control-plane")
    raw = copy_out(client, first_cp.name, ADMIN_CONF).decode()
    return re.sub(r"server: https://\S+", f"server: https://{entry.published_api}", raw)


def lb_view(nodes: tuple[Node, ...]) -> EnvoyAdmin | None:
    """kind's external load balancer (Envoy, or kubedrill's Envoy-compatible proxy) reports
    its backends on its admin port; a single-control-plane cluster has no LB."""
    lb = next((n for n in nodes if "lb" in n.roles and n.address), None)
    if lb is None:
        return None
    names = {n.address: n.name for n in nodes if "control-plane" in n.roles}
    names |= {n.name: n.name for n in nodes if "control-plane" in n.roles}
    return EnvoyAdmin(f"http://{lb.address}:{ENVOY_ADMIN_PORT}", names)


def workload_image(client: docker.DockerClient, node: str) -> str:
    """The pause image the node's containerd already holds (kind preloads it): drills' pods run
    it, so they start without any registry."""
    script = "crictl images -o json"
    try:
        result = client.containers.get(node).exec_run(["sh", "-c", script], demux=False)
        tags = [t for i in json.loads(result.output)["images"] for t in i.get("repoTags") or []]
    except (docker_errors.APIError, ValueError, KeyError, TypeError):
        tags = []
    pause = sorted(t for t in tags if t.rsplit(":", 1)[0].endswith("/pause"))
    return pause[-1] if pause else DEFAULT_WORKLOAD_IMAGE


def kube_access(text: str, secrets: Path, lb: EnvoyAdmin | None = None) -> KubeAccess:
    try:
        doc: Any = yaml.safe_load(text)
        cluster = doc["clusters"][0]["cluster"]
        user = doc["users"][0]["user"]
        blobs = {
            "kube-ca.crt": cluster["certificate-authority-data"],
            "kube-admin.crt": user["client-certificate-data"],
            "kube-admin.key": user["client-key-data"],
        }
        server = str(cluster["server"])
    except (yaml.YAMLError, KeyError, IndexError, TypeError) as exc:
        raise TargetError(
            f"the kind kubeconfig is not what kubedrill expects ({type(exc).__name__}: {exc})",
            "check `kind get kubeconfig --name <cluster>`",
        ) from exc
    paths = {n: write_private(secrets, n, base64.b64decode(v)) for n, v in blobs.items()}
    kubeconfig = write_private(secrets, "kubeconfig", text.encode())
    return KubeAccess(
        kubeconfig,
        server,
        paths["kube-ca.crt"],
        paths["kube-admin.crt"],
        paths["kube-admin.key"],
        lb=lb,
    )


def etcd_flags(client: docker.DockerClient, node: str) -> dict[str, str]:
    """etcd's command-line flags from the static pod manifest (for reports and drill budgets)."""
    try:
        manifest: Any = yaml.safe_load(copy_out(client, node, ETCD_MANIFEST))
        command = manifest["spec"]["containers"][0]["command"]
    except (TargetError, yaml.YAMLError, KeyError, IndexError, TypeError):
        return {}
    flags = (str(a)[2:].split("=", 1) for a in command if str(a).startswith("--"))
    return {f[0]: f[1] for f in flags if len(f) == 2}


def kind_cluster(name: str, *, secrets_dir: Path, docker_host: str | None = None) -> Cluster:
    """The running kind cluster `name`. The client keys it copies out go to `secrets_dir`
    (private); `kind_target` makes that dir and removes it afterwards."""
    client = engine_client(docker_host)
    secrets_dir.chmod(0o700)
    try:
        containers = node_containers(client, name, docker_host)
        nodes = build_nodes(containers, docker_host)
        etcd = etcd_access(client, nodes, secrets_dir)
        kube = kube_access(kubeconfig_text(name, client, containers), secrets_dir, lb_view(nodes))
        first_cp = next(n.name for n in nodes if "etcd" in n.roles)
        flags = etcd_flags(client, first_cp)
        image = workload_image(client, first_cp)
    finally:
        client.close()
    cluster = Cluster(
        name=f"kind/{name}",
        target="kind",
        nodes=nodes,
        etcd=etcd,
        control=KindControl(),
        observer=OBSERVER,
        kube=kube,
        facts=facts(name, docker_host, etcd, kube, flags, image),
    )
    add_leader_locators(cluster)
    return cluster


def facts(
    name: str,
    docker_host: str | None,
    etcd: EtcdAccess,
    kube: KubeAccess,
    flags: Mapping[str, str],
    image: str = DEFAULT_WORKLOAD_IMAGE,
) -> ClusterFacts:
    extra = {"kind_cluster": name} | ({"docker_host": docker_host} if docker_host else {})
    return ClusterFacts(
        target="kind",
        topology="stacked",
        members=len(etcd.endpoints),
        election_timeout_ms=int(flags.get("election-timeout", "1000")),
        heartbeat_interval_ms=int(flags.get("heartbeat-interval", "100")),
        delay_method=delay_method(),
        workload_image=image,
        kubectl=shutil.which("kubectl"),
        etcd_version=flags.get("etcd-version"),
        api_server=kube.server,
        kubeconfig=str(kube.kubeconfig),
        extra=extra,
    )


def delay_method() -> str:
    """Node containers share the host's kernel: tc netem where it has sch_netem, else the
    NFQUEUE delayer run on the host inside the node's network namespace."""
    return local_delay_method()


SECRETS_PREFIX = "kubedrill-kind-secrets-"


def sweep_orphan_secrets(tmp: Path | None = None) -> list[str]:
    """Remove the client-key dirs of runs that died without their `finally` (SIGKILL): each is
    named after its owner's pid, and only dead owners' dirs go. `kubedrill heal` calls this."""
    removed = []
    for directory in Path(tmp or tempfile.gettempdir()).glob(f"{SECRETS_PREFIX}*"):
        pid = directory.name[len(SECRETS_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(directory, ignore_errors=True)
            removed.append(str(directory))
    return removed


@contextlib.contextmanager
def kind_target(name: str, *, docker_host: str | None = None) -> Iterator[Cluster]:
    """`kind_cluster` for the length of a run; the copied keys are removed at the end (and by
    `kubedrill heal` after a SIGKILL: the dir is named after this process)."""
    docker_host = docker_host or default_docker_host()
    secrets = Path(tempfile.mkdtemp(prefix=f"{SECRETS_PREFIX}{os.getpid()}-{name}-"))
    try:
        yield kind_cluster(name, docker_host=docker_host, secrets_dir=secrets)
    finally:
        shutil.rmtree(secrets, ignore_errors=True)
