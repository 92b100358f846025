"""`kubedrill lab up|down|status|logs`: build, wire, start and tear down the lab."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from kubedrill.cluster import Cluster, ClusterFacts, EtcdAccess, KubeAccess, Node, TLSFiles
from kubedrill.errors import GuardError, MissingBinaryError, NotRootError, TargetError
from kubedrill.faults.disk import remove_lab_cgroups
from kubedrill.ledger import Ledger, UndoRecord, pid_alive
from kubedrill.polling import poll_until
from kubedrill.probes.etcd import EtcdClient
from kubedrill.probes.lb import FirstAnswering, HaproxySocket, LoadBalancerView
from kubedrill.probes.leaders import add_leader_locators
from kubedrill.probes.vip import add_vip_locators
from kubedrill.targets.lab import balancer, kube, kube_lab, network, pki, topology
from kubedrill.targets.lab import state as lab_state
from kubedrill.targets.lab.build import ensure_built, find_binaries
from kubedrill.targets.lab.config import LabConfig
from kubedrill.targets.lab.control import LOCAL, LabControl
from kubedrill.targets.lab.etcd import etcd_argv, etcd_env, failpoint_url, start_after
from kubedrill.targets.lab.gofail import etcd_build_for
from kubedrill.targets.lab.kube import KubePaths
from kubedrill.targets.lab.kube_build import kubernetes_build, kwok_build, kwok_stages
from kubedrill.targets.lab.state import KubeState, LabState
from kubedrill.targets.lab.supervisor import ComponentSpec
from kubedrill.transport import TransportSpec
from kubedrill.transport.kernel import local_delay_method

Progress = Callable[[str], None]
REQUIRED_TOOLS = {"ip": "iproute2", "iptables": "iptables", "tc": "iproute2"}
LB_TOOLS = {"haproxy": {"haproxy": "haproxy"}, "nginx": {"nginx": "nginx"}}


def require_root(action: str) -> None:
    if os.geteuid() != 0:
        raise NotRootError(
            f"{action} needs root: it creates network namespaces, iptables rules and processes",
            "run it as root (sudo -E kubedrill ...); nothing was changed",
        )


def require_tools(config: LabConfig) -> None:
    tools = dict(REQUIRED_TOOLS)
    if topology.has_kubernetes(config):
        tools |= LB_TOOLS[config.lb.kind]
        if config.lb.pair:
            tools |= {"keepalived": "keepalived", "curl": "curl"}
    missing = [
        f"{tool} (Debian package {pkg})"
        for tool, pkg in tools.items()
        if shutil.which(tool) is None
    ]
    if (
        topology.has_kubernetes(config)
        and config.lb.kind == "nginx"
        and not balancer.NGINX_STREAM_MODULE.exists()
    ):
        missing.append(f"{balancer.NGINX_STREAM_MODULE} (Debian package libnginx-mod-stream)")
    if missing:
        raise MissingBinaryError(
            f"missing {', '.join(missing)}",
            "install them (make setup does), then retry; nothing was changed",
        )


ETCD_BINARIES = ("etcd", "etcdctl")
# Offline tools the lab does not run but drills use (snapshot status/restore); built with etcd,
# optional in a user's bin_dir (a drill that needs one says so).
ETCD_TOOLS = ("etcdutl",)
KUBE_BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")


def binaries(config: LabConfig, progress: Progress) -> dict[str, Path]:
    """Path of every binary the lab runs: from lab.bin_dir, else built and cached."""
    kubernetes = topology.has_kubernetes(config)
    names = list(ETCD_BINARIES) + ([*KUBE_BINARIES, "kwok"] if kubernetes else [])
    if config.bin_dir is not None:
        found = find_binaries(config.bin_dir, names)
        paths = {n: found / n for n in names}
        paths |= {n: found / n for n in ETCD_TOOLS if os.access(found / n, os.X_OK)}
    else:
        etcd = etcd_build_for(config.etcd.version, failpoints=config.etcd.failpoints)
        etcd_dir = ensure_built(etcd, config.cache_dir, progress)
        paths = {n: etcd_dir / n for n in (*ETCD_BINARIES, *ETCD_TOOLS)}
        if kubernetes:
            k = config.kubernetes
            kube_dir = ensure_built(
                kubernetes_build(k.version, config.cache_dir, progress), config.cache_dir, progress
            )
            kwok_dir = ensure_built(kwok_build(k.kwok_version), config.cache_dir, progress)
            paths |= {n: kube_dir / n for n in KUBE_BINARIES}
            paths["kwok"] = kwok_dir / "kwok"
    if kubernetes:
        for tool in (config.lb.kind, *(["keepalived"] if config.lb.pair else [])):
            paths[tool] = Path(shutil.which(tool) or tool)
    return paths


def supervisor_pid(state_dir: Path) -> int | None:
    """The lab's supervisor, if it runs: the pid must still be *our* supervisor for this lab
    (after a reboot or a SIGKILL the pid file may name an unrelated process)."""
    try:
        pid = int((state_dir / "run" / "supervisor.pid").read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    ours = b"kubedrill.targets.lab.supervisor" in cmdline and str(state_dir).encode() in cmdline
    return pid if ours and pid_alive(pid) else None


def read_state(state_dir: Path) -> LabState | None:
    return lab_state.read_state(state_dir)


def up(config: LabConfig, progress: Progress = print) -> Cluster:
    """Idempotent: an existing lab with the same shape is kept and only checked."""
    require_root("lab up")
    require_tools(config)
    state_dir = config.state_dir
    existing = read_state(state_dir)
    layout = topology.hosts(config)
    if existing is not None and supervisor_pid(state_dir) is not None:
        have = [h["name"] for h in existing["hosts"]]
        if have != [h.name for h in layout] or existing["topology"] != config.topology:
            raise TargetError(
                f"lab {config.name!r} is already up as {existing['topology']} with "
                f"{', '.join(have)}",
                "run `kubedrill lab down` first to change its shape",
            )
        progress(f"lab {config.name!r} is already up; checking health")
        cluster = load_cluster(state_dir)
        wait_healthy(cluster, progress)
        return cluster

    if existing is not None:
        # State without a live supervisor: it was killed. Its members may still run unsupervised
        # and hold the ports; stop them so the new supervisor owns every member.
        for leftover in kill_lab_processes(config.name, state_dir):
            progress(f"stopped unsupervised {leftover}")
    started = time.monotonic()
    plan = network.plan_network(config.name, config.subnet, [h.name for h in layout])
    network.check_subnet_free(plan, config.subnet)  # before any (long) build
    bins = binaries(config, progress)
    progress(f"creating {len(plan.hosts)} hosts on bridge {plan.bridge} ({config.subnet})")
    state_dir.mkdir(parents=True, exist_ok=True)
    try:
        network.create(plan)
        specs = component_specs(config, layout, plan, bins, progress)
        (state_dir / "components.json").write_text(
            json.dumps([s.to_dict() for s in specs], indent=1)
        )
        (state_dir / "supervisor.json").write_text(json.dumps(asdict(config.supervisor)))
        write_state(state_dir, config, layout, plan, bins, local_delay_method())
        start_supervisor(state_dir)
        cluster = load_cluster(state_dir)
        wait_healthy(cluster, progress)
        if topology.has_kubernetes(config):
            kube_lab.bootstrap(cluster, config, progress)
    except BaseException:
        progress("lab up failed; last log lines of each component:")
        for log_file in sorted((state_dir / "logs").glob("*/*.log")):
            tail = log_file.read_text(errors="replace").splitlines()[-6:]
            progress(f"==> {log_file.relative_to(state_dir)} <==\n" + "\n".join(tail))
        progress("tearing down what was made")
        down(config, progress=lambda _m: None)
        raise
    progress(f"lab {config.name!r} up in {time.monotonic() - started:.1f} s")
    if topology.has_kubernetes(config):
        progress(f"kubeconfig: {KubePaths(state_dir).admin}")
    return cluster


# What needs a ready apiserver starts once it is ready (at most this late), since starting it
# earlier cost more than the wait: HAProxy starts its backends UP, marks one DOWN at its first
# failed check, then takes rise x inter (the seed's 2 x 2 s) to mark it UP again (+3.5 s);
# controller-managers exited at an apiserver whose RBAC was not bootstrapped yet and were
# restarted with back-off; kwok's watches backed off while the load balancer was not up (5
# control planes: Nodes Ready 5.6 s after the apiservers were).
API_WAIT_MAX_S = 120.0


def front_address(config: LabConfig, plan: network.NetworkPlan) -> str:
    """Where clients reach the API: the LB host, or a pair's VIP."""
    if config.lb.pair:
        return balancer.vip_address(config.subnet)
    return next(h.address for h in plan.hosts if h.name == "lb")


def readyz(host: network.HostPlan) -> str:
    return f"https://{host.address}:{kube.APISERVER_PORT}/readyz"


def component_specs(
    config: LabConfig,
    layout: list[topology.HostRole],
    plan: network.NetworkPlan,
    bins: dict[str, Path],
    progress: Progress,
) -> list[ComponentSpec]:
    state_dir = config.state_dir
    by_name = {h.name: h for h in plan.hosts}
    members = [by_name[h.name] for h in layout if "etcd" in h.roles]
    controls = [by_name[h.name] for h in layout if "control-plane" in h.roles]
    pki_dir = state_dir / "pki" / "etcd"
    paths = KubePaths(state_dir)
    if not (pki_dir / "ca.crt").exists():
        progress("generating PKI")
        validity = dt.timedelta(days=config.cert_validity_days)
        etcd_ca = make_pki(pki_dir, members, validity)
        if controls:
            lbs = [by_name[h.name] for h in layout if "lb" in h.roles]
            kube.make_kube_pki(
                paths, etcd_ca, controls, lbs, front_address(config, plan), config.kubernetes,
                validity,
            )  # fmt: skip
    specs = [
        ComponentSpec(
            host.name,
            "etcd",
            host.netns,
            etcd_argv(
                bins["etcd"],
                host,
                members,
                config.etcd,
                state_dir / "data" / host.name / "etcd",
                pki_dir,
                f"kubedrill-{config.name}",
            ),
            env=etcd_env(host, config.etcd),
            after=start_after(members, index, config.etcd.peer_port),
        )
        for index, host in enumerate(members)
    ]
    if not controls:
        return specs
    k = config.kubernetes
    etcd_urls = [f"https://{m.address}:{config.etcd.client_port}" for m in members]
    for host in controls:
        specs += [
            ComponentSpec(
                host.name,
                "kube-apiserver",
                host.netns,
                kube.apiserver_argv(
                    bins["kube-apiserver"], host, paths, etcd_urls, pki_dir / "ca.crt", k
                ),
            ),
            ComponentSpec(
                host.name,
                "kube-controller-manager",
                host.netns,
                kube.controller_manager_argv(bins["kube-controller-manager"], host, paths, k),
                after=(readyz(host),),
                after_max_s=API_WAIT_MAX_S,
            ),
            ComponentSpec(
                host.name,
                "kube-scheduler",
                host.netns,
                kube.scheduler_argv(bins["kube-scheduler"], host, paths, k),
                after=(readyz(host),),
                after_max_s=API_WAIT_MAX_S,
            ),
        ]
    specs += balancer.specs(
        [balancer.LbHost(by_name[h.name], h.vrrp_priority) for h in layout if "lb" in h.roles],
        controls,
        state_dir,
        bins,
        config.lb,
        k,
        prefixlen=plan.prefixlen,
        vip=balancer.vip_address(config.subnet),
        after=tuple(readyz(c) for c in controls),
        after_max_s=API_WAIT_MAX_S,
    )
    stages = kwok_stages(config.kubernetes.kwok_version, config.cache_dir)
    sites = [h for h in layout if "worker" in h.roles]
    for index, site in enumerate(sites):
        host = by_name[site.name]
        specs.append(
            ComponentSpec(
                host.name,
                "kwok",
                host.netns,
                # Each site's pods get addresses of their own (a /20 of 10.244.0.0/16).
                kube.kwok_argv(
                    bins["kwok"], paths, stages, site.name, k, cidr=f"10.244.{16 * index}.0/20"
                ),
                # kwok talks to the API through the load balancer (a pair's VIP).
                after=(f"https://{front_address(config, plan)}:{kube.APISERVER_PORT}/readyz",),
                after_max_s=API_WAIT_MAX_S,
            )
        )
    return specs


def make_pki(
    pki_dir: Path, members: list[network.HostPlan], validity: dt.timedelta = pki.VALIDITY
) -> pki.Authority:
    ca = pki.create_ca(pki_dir, "ca", "kubedrill-etcd-ca")
    for host in members:
        names = [host.name, "localhost"]
        ips = [host.address, "127.0.0.1"]
        pki.issue(
            ca,
            pki_dir,
            f"{host.name}-server",
            host.name,
            dns=names,
            ips=ips,
            server=True,
            client=True,
            validity=validity,
        )
        pki.issue(
            ca,
            pki_dir,
            f"{host.name}-peer",
            host.name,
            dns=names,
            ips=ips,
            server=True,
            client=True,
            validity=validity,
        )
    pki.issue(ca, pki_dir, "kubedrill-client", "kubedrill", client=True, validity=validity)
    return ca


def write_state(
    state_dir: Path,
    config: LabConfig,
    layout: list[topology.HostRole],
    plan: network.NetworkPlan,
    bins: dict[str, Path],
    delay: str,
) -> None:
    e = config.etcd
    pki_dir = state_dir / "pki" / "etcd"
    roles = {h.name: sorted(h.roles) for h in layout}
    regions = {h.name: h.region for h in layout}
    zones = {h.name: h.zone for h in layout}
    members = [h for h in plan.hosts if "etcd" in roles[h.name]]
    versions = {"etcd": e.version + ("-failpoints" if e.failpoints else "")}
    if topology.has_kubernetes(config):
        versions |= {
            "kubernetes": config.kubernetes.version,
            "kwok": config.kubernetes.kwok_version,
        }
    state: LabState = {
        "name": config.name,
        "topology": config.topology,
        "subnet": config.subnet,
        "bridge": plan.bridge,
        # A stop fault's SIGTERM-to-SIGKILL grace (LabControl), like terminationGracePeriod.
        "stop_grace_s": config.supervisor.stop_grace_s,
        "gateway": plan.gateway,
        "binaries": {k: str(v) for k, v in bins.items()},
        "versions": versions,
        "delay_method": delay,
        "hosts": [
            {
                "name": h.name,
                "roles": roles[h.name],
                "address": h.address,
                "netns": h.netns,
                "region": regions[h.name],
                "zone": zones[h.name],
            }
            for h in plan.hosts
        ],
        "etcd": {
            "endpoints": {h.name: f"https://{h.address}:{e.client_port}" for h in members},
            "metrics": {h.name: f"http://{h.address}:{e.metrics_port}/metrics" for h in members},
            "failpoints": {h.name: failpoint_url(h.address, e) for h in members}
            if e.failpoints
            else {},
            "peer_port": e.peer_port,
            "client_port": e.client_port,
            "tls": {
                "ca": str(pki_dir / "ca.crt"),
                "cert": str(pki_dir / "kubedrill-client.crt"),
                "key": str(pki_dir / "kubedrill-client.key"),
            },
            "election_timeout_ms": e.election_timeout_ms,
            "heartbeat_interval_ms": e.heartbeat_interval_ms,
        },
    }
    if topology.has_kubernetes(config):
        lbs = [h.name for h in layout if "lb" in h.roles]
        bpaths = balancer.BalancerPaths(state_dir)
        sockets = (
            [str(bpaths.haproxy_socket(h)) for h in lbs]
            if config.lb.pair
            else [str(KubePaths(state_dir).haproxy_socket)]
        )
        state["kubernetes"] = {
            "kubeconfig": str(KubePaths(state_dir).admin),
            "server": f"https://{front_address(config, plan)}:{kube.APISERVER_PORT}",
            "haproxy_socket": sockets[0] if config.lb.kind == "haproxy" else None,
            "haproxy_sockets": sockets if config.lb.kind == "haproxy" else [],
            "workers": config.kubernetes.workers,
            "lb": {
                "kind": config.lb.kind,
                "hosts": lbs,
                "vip": balancer.vip_address(config.subnet) if config.lb.pair else None,
            },
        }
    lab_state.write_state(state_dir, state)


def start_supervisor(state_dir: Path) -> None:
    if supervisor_pid(state_dir) is not None:
        return
    log = open(state_dir / "supervisor.log", "a")  # noqa: SIM115 - handed to the child
    subprocess.Popen(
        [sys.executable, "-m", "kubedrill.targets.lab.supervisor", str(state_dir)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
    )
    log.close()
    _, started = poll_until(
        lambda: supervisor_pid(state_dir), lambda pid: pid is not None, timeout=10, interval=0.05
    )
    if not started:
        raise TargetError("the lab supervisor did not start", f"see {state_dir / 'supervisor.log'}")


# A member answers a status request in milliseconds once it serves clients; until then (before
# the first leader is elected) a request hangs for its whole timeout, so a short one keeps each
# round from outliving the moment the lab became healthy.
HEALTH_REQUEST_TIMEOUT_S = 0.3


def wait_healthy(cluster: Cluster, progress: Progress, timeout: float = 60.0) -> None:
    """Every member answers and a quorum agrees on a leader."""
    client = EtcdClient(cluster.etcd, timeout=HEALTH_REQUEST_TIMEOUT_S)
    try:

        def healthy() -> bool:
            view = client.leader_view(complete=True)
            return view.leader is not None and view.reachable == len(client.nodes)

        _, ok = poll_until(healthy, bool, timeout=timeout, interval=0.1)
        if not ok:
            raise TargetError(
                f"etcd in lab {cluster.name!r} did not become healthy within {timeout:.0f} s",
                "see `kubedrill lab logs` for the members' logs",
            )
        progress(f"etcd healthy: leader {client.leader()}")
    finally:
        client.close()


def load_cluster(state_dir: Path) -> Cluster:
    state = read_state(state_dir)
    if state is None:
        raise TargetError(f"no lab state in {state_dir}", "bring the lab up: kubedrill lab up")
    nodes = tuple(
        Node(
            h["name"],
            frozenset(h["roles"]),
            h["address"],
            TransportSpec("netns", h["name"], {"netns": h["netns"]}),
            region=h.get("region"),
            zone=h.get("zone"),
        )
        for h in state["hosts"]
    )
    e = state["etcd"]
    tls = TLSFiles(Path(e["tls"]["ca"]), Path(e["tls"]["cert"]), Path(e["tls"]["key"]))
    access = EtcdAccess(
        e["endpoints"],
        tls,
        e["peer_port"],
        e["client_port"],
        e["metrics"],
        failpoint_urls=e.get("failpoints", {}),
    )
    cluster = Cluster(
        name=f"lab/{state['name']}",
        target="lab",
        nodes=nodes,
        etcd=access,
        control=LabControl(state_dir, grace_s=int(state.get("stop_grace_s", 10.0))),
        observer=LOCAL,
        facts=ClusterFacts(
            target="lab",
            topology=state["topology"],
            members=len(e["endpoints"]),
            election_timeout_ms=int(e["election_timeout_ms"]),
            heartbeat_interval_ms=int(e["heartbeat_interval_ms"]),
            delay_method=state.get("delay_method", "netem"),
            etcd_version=state["versions"]["etcd"],
            # Where the runner finds etcdctl/etcdutl (backup drills run them on the runner).
            extra={
                n: p for n, p in state.get("binaries", {}).items() if n in ("etcdctl", *ETCD_TOOLS)
            },
        ),
    )
    if "kubernetes" in state:
        add_kubernetes(cluster, state)
    add_leader_locators(cluster)
    lb = state["kubernetes"].get("lb") if "kubernetes" in state else None
    if lb is not None and lb["vip"]:
        add_vip_locators(cluster, lb["vip"], ("keepalived", lb["kind"]))
    return cluster


def lb_view(k: KubeState) -> LoadBalancerView | None:
    """HAProxy's stats socket (of a pair: the first that answers); nginx has no such view."""
    single = k["haproxy_socket"]
    sockets = k.get("haproxy_sockets") or ([single] if single else [])
    if not sockets:
        return None
    if len(sockets) == 1:
        return HaproxySocket(Path(sockets[0]))
    return FirstAnswering(tuple(HaproxySocket(Path(s)) for s in sockets))


def add_kubernetes(cluster: Cluster, state: LabState) -> None:
    k = state["kubernetes"]
    pki_dir = Path(k["kubeconfig"]).parent.parent / "pki" / "kubernetes"
    cluster.kube = KubeAccess(
        Path(k["kubeconfig"]),
        k["server"],
        pki_dir / "ca.crt",
        pki_dir / "admin.crt",
        pki_dir / "admin.key",
        lb=lb_view(k),
        component_ca=pki_dir / "ca.crt",
    )
    cluster.facts = dataclasses.replace(
        cluster.facts,
        kubectl=state.get("binaries", {}).get("kubectl", "kubectl"),
        kubernetes_version=state["versions"]["kubernetes"],
        kubeconfig=k["kubeconfig"],
        api_server=k["server"],
    )


def down(config: LabConfig, progress: Progress = print) -> list[str]:
    """Stop everything and delete every trace: processes, namespaces, links, state, records.

    A lab being thrown away needs no graceful stop: every process is SIGKILLed at once (a
    drill's own stop fault keeps its SIGTERM and grace period). Refused while a drill runs
    against the lab, whose undo records would otherwise be dropped under it."""
    require_root("lab down")
    refuse_if_drill_running(config.name)
    state_dir = config.state_dir
    removed = kill_lab_processes(config.name, state_dir)
    removed += remove_lab_cgroups(config.name)
    removed += network.destroy(config.name)
    dropped = drop_ledger_records(f"lab/{config.name}")
    removed += [f"undo record {r}" for r in dropped]
    if state_dir.exists():
        shutil.rmtree(state_dir)
        removed.append(f"state {state_dir}")
    for parent in (state_dir.parent, state_dir.parent.parent):
        with contextlib.suppress(OSError):
            parent.rmdir()
    for item in removed:
        progress(f"removed {item}")
    return removed


def live_drill_records(cluster: str) -> list[UndoRecord]:
    """Undo records of `cluster` whose owner still runs: a drill in progress. (Our own records
    count as ours to drop, as `Ledger.orphans` counts them.)"""
    return [
        rec
        for rec in Ledger().outstanding()
        if rec.cluster == cluster and rec.owner_pid != os.getpid() and pid_alive(rec.owner_pid)
    ]


def refuse_if_drill_running(lab_name: str) -> None:
    live = live_drill_records(f"lab/{lab_name}")
    if live:
        held = ", ".join(f"pid {r.owner_pid}: {r.fault}" for r in live)
        # One line: the drill's pid, its fault and what to do; nothing was removed.
        raise GuardError(
            f"lab {lab_name!r} has a drill in progress ({held}); wait for it or stop it, "
            "run `kubedrill heal`, then `kubedrill lab down` again (nothing was removed)"
        )


# SIGKILLed processes are gone within milliseconds; one in uninterruptible sleep may take longer.
KILL_WAIT_S = 2.0


def kill_lab_processes(lab_name: str, state_dir: Path) -> list[str]:
    """SIGKILL the supervisor first (so it restarts nothing), then every component's process
    group and anything else inside the lab's namespaces (a supervisor killed earlier may have
    left members running); return once they are gone."""
    killed: dict[int, str] = {}
    sup = supervisor_pid(state_dir)
    if sup is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(sup, signal.SIGKILL)
            killed[sup] = f"supervisor {sup}"
    for pid, key in component_pids(state_dir).items():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)  # each component leads a session of its own
            killed[pid] = f"process {pid} ({key})"
    for pid, ns in network.namespace_pids(lab_name).items():
        if pid not in killed:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                killed[pid] = f"process {pid} in {ns}"
    _, gone = poll_until(
        lambda: [p for p in killed if pid_alive(p)],
        lambda alive: not alive,
        timeout=KILL_WAIT_S,
        interval=0.01,
    )
    if not gone:
        raise TargetError(
            f"processes of lab {lab_name!r} survived SIGKILL for {KILL_WAIT_S:.0f} s",
            "see `ps -o pid,stat,wchan,cmd -p <pid>` (state D: stuck in the kernel), then "
            "run `kubedrill lab down` again",
        )
    return list(killed.values())


def component_pids(state_dir: Path) -> dict[int, str]:
    """Components the supervisor started, from its pid files; a pid is taken only while its
    command line still names this lab's state dir (a pid file outlives a reused pid)."""
    found: dict[int, str] = {}
    mark = f"{state_dir}/".encode()
    for pid_file in (state_dir / "run").glob("*__*.pid"):
        try:
            pid = int(pid_file.read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            continue
        if mark in cmdline:
            found[pid] = pid_file.stem
    return found


def drop_ledger_records(cluster: str) -> list[str]:
    """Faults of a lab that no longer exists have nothing left to undo."""
    ledger = Ledger()
    dropped = []
    for rec in ledger.outstanding():
        if rec.cluster == cluster:
            ledger.heal(rec)  # best effort (the hold files are about to go anyway)
            ledger.remove(rec)
            dropped.append(rec.id)
    return dropped


def status(config: LabConfig) -> dict[str, Any]:
    state_dir = config.state_dir
    state = read_state(state_dir)
    sup = supervisor_pid(state_dir)
    if state is None:
        return {"name": config.name, "up": False, "reason": "no lab state (not up)"}
    try:
        procs = json.loads((state_dir / "run" / "status.json").read_text())
    except (OSError, ValueError):
        procs = {}
    cluster = load_cluster(state_dir)
    client = EtcdClient(cluster.etcd, timeout=1.0)
    try:
        view = client.leader_view(complete=True)
    finally:
        client.close()
    hosts = []
    for node in cluster.nodes:
        st = view.statuses.get(node.name)
        components = {}
        for component in cluster.control.components(node):
            proc = procs.get(f"{node.name}__{component}", {})
            components[component] = {
                "pid": proc.get("pid"),
                "restarts": proc.get("restarts", 0),
                "held": proc.get("held", False),
                "running": cluster.control.is_running(node, component),
            }
        hosts.append(
            {
                "host": node.name,
                "address": node.address,
                "zone": node.zone,
                "roles": sorted(node.roles),
                "components": components,
                "running": all(c["running"] for c in components.values()),
                "etcd": None
                if st is None
                else {
                    "leader": st.is_leader,
                    "term": st.raft_term,
                    "raft_index": st.raft_index,
                    "revision": st.revision,
                },
            }
        )
    leaders = {"etcd": view.leader}
    for component, locate in cluster.leader_locators.items():
        if component != "etcd":
            leaders[component] = locate()
    return {
        "name": config.name,
        "topology": state["topology"],
        "up": sup is not None and view.leader is not None,
        "supervisor_pid": sup,
        "leader": view.leader,
        "leaders": leaders,
        "term": view.term,
        "versions": state["versions"],
        "kubeconfig": state.get("kubernetes", {}).get("kubeconfig"),
        "hosts": hosts,
    }


def render_status(report: dict[str, Any]) -> str:
    if "hosts" not in report:
        return f"lab {report['name']!r}: down ({report.get('reason', '')})"
    leaders = "  ".join(f"{k} leader={v}" for k, v in report["leaders"].items())
    lines = [
        f"lab {report['name']!r} ({report['topology']}): "
        f"{'up' if report['up'] else 'DEGRADED'}  supervisor={report['supervisor_pid']}  "
        f"versions={report['versions']}",
        f"  {leaders}  etcd term={report['term']}",
        f"  {'host':10s} {'address':14s} {'component':24s} {'pid':>8s} {'restarts':>8s}  state"
        + ("  zone" if any(h.get("zone") for h in report["hosts"]) else ""),
    ]
    for h in report["hosts"]:
        for name, c in h["components"].items():
            if name == "etcd" and h["etcd"] is not None:
                state = ("LEADER" if h["etcd"]["leader"] else "follower") + (
                    f" rev={h['etcd']['revision']}"
                )
            elif c["held"]:
                state = "held down"
            else:
                state = "running" if c["running"] else ("paused" if c["pid"] else "down")
            zone = f"  {h['zone']}" if h.get("zone") else ""
            lines.append(
                f"  {h['host']:10s} {h['address']:14s} {name:24s} {c['pid'] or '-'!s:>8s} "
                f"{c['restarts']:>8d}  {state:18s}{zone}".rstrip()
            )
    if report.get("kubeconfig"):
        lines.append(f"  kubeconfig: {report['kubeconfig']}")
    return "\n".join(lines)


def logs(config: LabConfig, *, host: str | None, component: str, lines: int) -> str:
    state_dir = config.state_dir
    cluster = load_cluster(state_dir)
    nodes = [cluster.node(host)] if host else list(cluster.nodes)
    out = []
    for node in nodes:
        text = cluster.control.logs(node, component).splitlines()[-lines:]
        out.append(f"==> {node.name} {component} <==")
        out.extend(text)
    return "\n".join(out)
