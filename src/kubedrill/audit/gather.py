"""What each item reads from the cluster, through the target's own transports and APIs (all
reads: GETs, member list and status, TLS handshakes, `cat` of config files and manifests)."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from kubedrill.audit import certs, etcd_flags, lb, leader_election, topology
from kubedrill.audit.clock import judge_offsets, shared_clock
from kubedrill.audit.finding import Judgement, worst
from kubedrill.audit.flags import parse_flags
from kubedrill.cluster import Cluster, Node, TLSFiles
from kubedrill.polling import poll_until
from kubedrill.probes.etcd import STATUS_PATH, EtcdClient, EtcdError
from kubedrill.probes.kube import api_client, read_json
from kubedrill.server_record.clock import SHARED_CLOCK_TARGETS, measure_offset
from kubedrill.targets.lab.kube import APISERVER_PORT

NO_KUBERNETES = "no Kubernetes on this target (an etcd-only cluster)"


def _api(cluster: Cluster) -> k8s.ApiClient | None:
    return None if cluster.kube is None else api_client(cluster.kube)


def control_plane_nodes(cluster: Cluster) -> dict[str, Any]:
    """Nodes carrying the control-plane role label, by name, as the API serves them (JSON)."""
    api = _api(cluster)
    if api is None:
        return {}
    try:
        response = k8s.CoreV1Api(api).list_node(
            label_selector=topology.CONTROL_PLANE_LABEL,
            _request_timeout=(10, 10),
            _preload_content=False,
        )
        items = json.loads(response.data).get("items") or []
    finally:
        api.close()
    return {str(n["metadata"]["name"]): n for n in items}


def check_control_planes(cluster: Cluster) -> Judgement:
    if cluster.kube is None:
        return Judgement("skip", NO_KUBERNETES)
    names = [n.name for n in cluster.with_role("control-plane")]
    return topology.judge_control_planes(names, sorted(control_plane_nodes(cluster)))


def check_zones(cluster: Cluster) -> Judgement:
    if cluster.kube is None:
        return Judgement("skip", NO_KUBERNETES)
    nodes = control_plane_nodes(cluster)
    zones = {
        name: ((n.get("metadata") or {}).get("labels") or {}).get(topology.ZONE_LABEL)
        for name, n in nodes.items()
    }
    note = " (a lab without lab.zones has none)" if cluster.target == "lab" else ""
    return topology.judge_zones(zones, note=note)


def _etcd(cluster: Cluster) -> EtcdClient:
    return EtcdClient(cluster.etcd, timeout=3.0)


def check_members(cluster: Cluster) -> Judgement:
    client = _etcd(cluster)
    try:
        errors = []
        for node in client.nodes:
            try:
                data = client.call(node, "/v3/cluster/member/list", {})
            except EtcdError as exc:
                errors.append(str(exc))
                continue
            members = {
                str(m.get("name") or f"(unstarted {m.get('ID')})"): bool(m.get("isLearner"))
                for m in data.get("members") or []
            }
            return topology.judge_members(members, node)
    finally:
        client.close()
    return Judgement(
        "fail", f"no member answered member list: {'; '.join(errors)}", "bring etcd back first"
    )


def etcd_version(cluster: Cluster) -> str | None:
    client = _etcd(cluster)
    try:
        for node in client.nodes:
            try:
                return str(client.call(node, STATUS_PATH, {}).get("version") or "") or None
            except EtcdError:
                continue
    finally:
        client.close()
    return cluster.facts.etcd_version


def check_etcd_flags(cluster: Cluster) -> Judgement:
    members: dict[str, dict[str, str]] = {}
    sources: dict[str, str] = {}
    unreadable: list[str] = []
    for node in cluster.with_role("etcd"):
        found = cluster.control.command_line(node, "etcd")
        if found is None:
            unreadable.append(node.name)
            continue
        members[node.name] = parse_flags(found.argv)
        sources[node.name] = found.source
    return etcd_flags.judge_members(members, sources, unreadable, etcd_version(cluster))


def _cat(node: Node, cluster: Cluster, path: str) -> str | None:
    out = cluster.transport(node).run(["cat", path], timeout=20)
    return out.stdout if out.ok and out.stdout.strip() else None


def lb_config(cluster: Cluster, node: Node) -> tuple[list[lb.HealthCheck], str] | None:
    """The LB's checks and where they were read: HAProxy's -f file or nginx's -c file from
    its command line, else Envoy's cds.yaml (kind), /etc/haproxy/haproxy.cfg or
    /etc/nginx/nginx.conf."""
    candidates: list[tuple[str, Callable[[str], list[lb.HealthCheck]]]] = []
    readers: list[tuple[str, str, Callable[[str], list[lb.HealthCheck]]]] = [
        ("haproxy", "-f", lb.parse_haproxy),
        ("nginx", "-c", lb.parse_nginx),
    ]
    for component, flag, parse in readers:
        command = cluster.control.command_line(node, component)
        if command is not None:
            # nginx retitles its master: one string "nginx: master process <command line>".
            argv = list(command.argv)
            if len(argv) == 1:
                argv = argv[0].split()
            if flag in argv[:-1]:
                candidates.append((argv[argv.index(flag) + 1], parse))
    candidates += [
        (lb.ENVOY_CDS, lb.parse_envoy_cds),
        (lb.HAPROXY_DEFAULT_CFG, lb.parse_haproxy),
        (lb.NGINX_DEFAULT_CFG, lb.parse_nginx),
    ]
    for path, parse in candidates:
        text = _cat(node, cluster, path)
        if text is not None:
            return parse(text), f"{node.name}:{path}"
    return None


def check_lb(cluster: Cluster) -> Judgement:
    if cluster.kube is None:
        return Judgement("skip", NO_KUBERNETES)
    nodes = cluster.with_role("lb")
    if not nodes:
        return Judgement(
            "warn",
            f"unknown: {cluster.name} names no load-balancer node (role lb), so its health "
            "checks cannot be read",
            "put the apiservers behind a load balancer and let kubedrill read its config (an "
            "SSH inventory host with the role lb)",
        )
    judged: list[Judgement] = []
    for node in nodes:
        found = lb_config(cluster, node)
        if found is None:
            judged.append(
                Judgement(
                    "warn",
                    f"unknown: no readable HAProxy, nginx or Envoy config on {node.name}",
                    "make the LB's config readable to kubedrill (HAProxy's -f file, or "
                    "/etc/haproxy/haproxy.cfg)",
                )
            )
        else:
            judged.append(lb.judge_checks(*found))
    status = worst(j.status for j in judged)
    shown = next(j for j in judged if j.status == status)
    details = tuple(d for j in judged for d in j.details)
    return Judgement(status, shown.evidence, shown.fix, details)


def cert_endpoints(cluster: Cluster) -> list[tuple[certs.Endpoint, TLSFiles | None]]:
    e = cluster.etcd
    found: list[tuple[certs.Endpoint, TLSFiles | None]] = [
        (certs.Endpoint.of_url(f"{name} etcd client", url, e.client_port), e.tls)
        for name, url in sorted(e.endpoints.items())
        if url.startswith("https")
    ]
    found += [
        (certs.Endpoint(f"{n.name} etcd peer", n.address, e.peer_port), e.tls)
        for n in cluster.with_role("etcd")
        if e.tls is not None
    ]
    if cluster.kube is not None:
        k = cluster.kube
        client = TLSFiles(k.ca, k.cert, k.key)
        found += [
            (certs.Endpoint(f"{n.name} kube-apiserver", n.address, APISERVER_PORT), client)
            for n in cluster.with_role("control-plane")
        ]
        found.append((certs.Endpoint.of_url("API endpoint (kubeconfig)", k.server, 443), client))
    return found


def check_certs(cluster: Cluster) -> Judgement:
    endpoints = cert_endpoints(cluster)
    with ThreadPoolExecutor(max_workers=8) as pool:
        served = list(pool.map(lambda ep: certs.served_cert(*ep), endpoints))
    return certs.judge_certs(served, dt.datetime.now(dt.UTC))


def _renew_time(api: k8s.ApiClient, name: str) -> leader_election.LeaseWatch:
    try:
        lease = read_json(
            k8s.CoordinationV1Api(api).read_namespaced_lease, name, "kube-system", timeout=5
        )
    except ApiException as exc:
        if exc.status == 404:
            return leader_election.LeaseWatch(found=False)
        raise
    spec = lease.get("spec") or {}
    renew = str(spec.get("renewTime") or "")
    return leader_election.LeaseWatch(
        True, str(spec.get("holderIdentity") or ""), int(spec.get("leaseDurationSeconds") or 15),
        renew, renew,
    )  # fmt: skip


def watch_lease(api: k8s.ApiClient, name: str) -> leader_election.LeaseWatch:
    """Read the Lease, then again until renewTime moves (at most one lease duration + 2 s)."""
    first = _renew_time(api, name)
    if not first.found or not first.holder:
        return first
    started = time.monotonic()
    last, _ = poll_until(
        lambda: _renew_time(api, name),
        lambda w: w.first_renew != first.first_renew,
        timeout=first.duration_s + 2.0,
        interval=0.5,
    )
    return leader_election.LeaseWatch(
        True, last.holder or first.holder, first.duration_s, first.first_renew,
        last.first_renew, time.monotonic() - started,
    )  # fmt: skip


def check_leader_election(cluster: Cluster) -> Judgement:
    api = _api(cluster)
    if api is None:
        return Judgement("skip", NO_KUBERNETES)
    judged: list[tuple[str, Judgement]] = []
    try:
        for component in leader_election.COMPONENTS:
            values: dict[str, str | None] = {}
            for node in cluster.with_role("control-plane"):
                found = cluster.control.command_line(node, component)
                flags = parse_flags(found.argv) if found is not None else None
                values[node.name] = None if flags is None else flags.get("leader-elect", "<unset>")
            judged.append(
                (
                    component,
                    leader_election.judge_component(component, watch_lease(api, component), values),
                )
            )
    finally:
        api.close()
    status = worst(j.status for _, j in judged)
    evidence = "; ".join(f"{c}: {j.evidence}" for c, j in judged)
    fix = " ".join(j.fix for _, j in judged if j.fix)
    return Judgement(status, evidence, fix, tuple(f"{c}: {j.status}" for c, j in judged))


def check_clock(cluster: Cluster) -> Judgement:
    if cluster.target in SHARED_CLOCK_TARGETS:
        return shared_clock(cluster.target, len(cluster.nodes))
    with ThreadPoolExecutor(max_workers=8) as pool:
        offsets = dict(
            zip(
                [n.name for n in cluster.nodes],
                pool.map(measure_offset, cluster.nodes),
                strict=True,
            )
        )
    return judge_offsets(offsets)
