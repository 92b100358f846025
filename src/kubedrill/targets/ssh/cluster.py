"""Build a Cluster from an SSH inventory: log in to every host first (host keys verified), so
that an unreachable or unknown host stops the run before anything is injected."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from kubedrill.cluster import Cluster, ClusterFacts, EtcdAccess, KubeAccess, Node, TLSFiles
from kubedrill.errors import TargetError
from kubedrill.probes.lb import EnvoyAdmin, HaproxySocket, LoadBalancerView
from kubedrill.probes.leaders import add_leader_locators
from kubedrill.targets.ssh.control import SshControl
from kubedrill.targets.ssh.inventory import HostEntry, Inventory
from kubedrill.transport import TransportSpec
from kubedrill.transport.ssh import SshTransport

Progress = Callable[[str], None]
OBSERVER = TransportSpec("local", "kubedrill")


@dataclass(frozen=True)
class HostFacts:
    name: str
    hostname: str  # what the host calls itself: leader-election identities start with it


def node_of(entry: HostEntry) -> Node:
    return Node(
        entry.name, entry.roles, entry.address, SshTransport.of(entry.name, entry.settings).spec
    )


def _login(entry: HostEntry) -> HostFacts:
    transport = SshTransport.of(entry.name, entry.settings)
    transport.connect()  # TargetError naming host:port when unreachable or the key is wrong
    out = transport.run(["hostname"], timeout=entry.command_timeout)
    if out.exit_code == 255:
        raise TargetError(f"{entry.name}: {out.stderr}", "check the host and retry")
    if not out.ok:
        where = entry.settings.target.where
        raise TargetError(
            f"logged in to {entry.name} ({where}) but `hostname` exited {out.exit_code}: "
            f"{out.stderr.strip()[:200]}",
            "check the account's shell and sudo -n rights (sudo: true needs NOPASSWD)",
        )
    return HostFacts(entry.name, out.stdout.strip())


def preflight(inventory: Inventory) -> list[HostFacts]:
    """Log in to every host (in parallel); the first failure is raised as a TargetError."""
    with ThreadPoolExecutor(max_workers=min(8, len(inventory.hosts))) as pool:
        futures = [pool.submit(_login, h) for h in inventory.hosts]
        errors = [f.exception() for f in futures if f.exception() is not None]
        if errors:
            first = errors[0]
            if len(errors) > 1 and isinstance(first, TargetError):
                raise TargetError(
                    f"{first.message} (and {len(errors) - 1} more host(s) failed)", first.hint
                )
            raise errors[0]  # type: ignore[misc]
        return [f.result() for f in futures]


def delay_method(inventory: Inventory) -> str:
    """'netem' when the first etcd host's kernel has sch_netem (tried in a throwaway network
    namespace, so nothing of the host changes); else 'nfqueue' when that host has this very
    kubedrill's delayer (a lab host); else 'none': latency drills are skipped with the reason."""
    entry = next(h for h in inventory.hosts if "etcd" in h.roles)
    transport = SshTransport.of(entry.name, entry.settings)
    probe = "ip link set lo up && tc qdisc add dev lo root netem delay 1ms"
    if transport.run(["unshare", "-n", "sh", "-c", probe], timeout=20).ok:
        return "netem"
    check = "import netfilterqueue, kubedrill.faults.delayer"
    if transport.run([sys.executable, "-c", check], timeout=20).ok:
        return "nfqueue"
    return "none"


def etcd_access(inventory: Inventory) -> EtcdAccess:
    e = inventory.etcd
    members = [h for h in inventory.hosts if "etcd" in h.roles]
    tls = None
    if e.ca is not None and e.cert is not None and e.key is not None:
        tls = TLSFiles(e.ca, e.cert, e.key)
    metrics = {}
    if e.metrics_port is not None:
        metrics = {
            h.name: f"http://{_url_host(h.address)}:{e.metrics_port}/metrics" for h in members
        }
    return EtcdAccess(
        {h.name: f"{e.scheme}://{_url_host(h.address)}:{e.client_port}" for h in members},
        tls,
        e.peer_port,
        e.client_port,
        metrics,
    )


def _url_host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def kubeconfig_server(path: Path) -> str:
    """The API server of the kubeconfig's current context (else its first cluster)."""
    try:
        doc: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
        clusters = {c["name"]: c["cluster"] for c in doc["clusters"]}
        contexts = {c["name"]: c["context"] for c in doc.get("contexts") or []}
        current = contexts.get(doc.get("current-context", ""), {}).get("cluster")
        cluster = clusters.get(current) or next(iter(clusters.values()))
        return str(cluster["server"])
    except (OSError, UnicodeDecodeError, yaml.YAMLError, KeyError, TypeError, StopIteration) as exc:
        raise TargetError(
            f"ssh.kube.kubeconfig {path} names no API server ({type(exc).__name__})",
            "give a kubeconfig with a cluster and its server",
        ) from exc


def kube_access(inventory: Inventory) -> KubeAccess | None:
    k = inventory.kube
    if k is None:
        return None
    configuration = k8s.Configuration()
    if k.ca and k.cert and k.key:
        # Files given: read only the server, so no embedded key is copied into a temp file.
        configuration.host = kubeconfig_server(k.kubeconfig)
    else:
        try:
            k8s_config.load_kube_config(
                config_file=str(k.kubeconfig), client_configuration=configuration
            )
        except Exception as exc:
            raise TargetError(
                f"ssh.kube.kubeconfig {k.kubeconfig} cannot be used: {exc}", "fix it"
            ) from exc
    ca = k.ca or (Path(configuration.ssl_ca_cert) if configuration.ssl_ca_cert else None)
    cert = k.cert or (Path(configuration.cert_file) if configuration.cert_file else None)
    key = k.key or (Path(configuration.key_file) if configuration.key_file else None)
    if ca is None or cert is None or key is None:
        raise TargetError(
            f"ssh.kube: the kubeconfig {k.kubeconfig} has no client certificate and CA",
            "give ssh.kube.ca, cert and key (probes read /readyz with a client certificate)",
        )
    lb: LoadBalancerView | None = None
    if k.haproxy_socket:
        lb = HaproxySocket(k.haproxy_socket)
    elif k.envoy_admin:
        planes = [h for h in inventory.hosts if "control-plane" in h.roles]
        lb = EnvoyAdmin(k.envoy_admin.rstrip("/"), {h.address: h.name for h in planes})
    return KubeAccess(k.kubeconfig, str(configuration.host), ca, cert, key, lb)


def ssh_cluster(inventory: Inventory, progress: Progress = lambda _m: None) -> Cluster:
    progress(f"logging in to {len(inventory.hosts)} hosts of {inventory.cluster_name}")
    facts = preflight(inventory)
    by_hostname = {f.hostname: f.name for f in facts}
    nodes = tuple(node_of(h) for h in inventory.hosts)
    etcd = etcd_access(inventory)
    cluster = Cluster(
        name=inventory.cluster_name,
        target="ssh",
        nodes=nodes,
        etcd=etcd,
        control=SshControl({h.name: h.manager for h in inventory.hosts}),
        observer=OBSERVER,
        kube=kube_access(inventory),
        facts=ClusterFacts(
            target="ssh",
            topology="ssh",
            members=len(etcd.endpoints),
            election_timeout_ms=inventory.etcd.election_timeout_ms,
            heartbeat_interval_ms=inventory.etcd.heartbeat_interval_ms,
            delay_method=delay_method(inventory),
            extra={"inventory": str(inventory.path)},
        ),
    )
    add_leader_locators(cluster, by_hostname)
    if cluster.kube is not None:
        assert inventory.kube is not None
        cluster.facts = dataclasses.replace(
            cluster.facts,
            kubectl=inventory.kube.kubectl,
            kubeconfig=str(cluster.kube.kubeconfig),
            api_server=cluster.kube.server,
        )
    progress(f"{inventory.cluster_name}: {len(nodes)} hosts reachable, host keys verified")
    return cluster
