"""The target seam's pure parts: the LB views' parsers, nodes by role, typed facts, and faults
that say when a target cannot carry them."""

from __future__ import annotations

import pytest

from kubedrill.cluster import Cluster, ClusterFacts, EtcdAccess, Node
from kubedrill.errors import UnknownNodeError
from kubedrill.faults import Drain, Isolate, KillComponent, NetemDelay, PauseNode, Selector
from kubedrill.probes.lb import parse_envoy_clusters, parse_haproxy_stat
from kubedrill.targets.lab.control import LabControl
from kubedrill.transport import TransportSpec

ENVOY = """\
kube_apiservers::observability_name::kube_apiservers
kube_apiservers::default_priority::max_connections::1024
kube_apiservers::10.213.40.11:6443::cx_active::2
kube_apiservers::10.213.40.11:6443::health_flags::healthy
kube_apiservers::10.213.40.12:6443::health_flags::/failed_active_hc
kube_apiservers::10.213.40.13:6443::health_flags::/failed_active_hc/pending_active_hc
other::10.0.0.9:80::health_flags::healthy
"""

HAPROXY = """\
# pxname,svname,qcur,status,weight
kube-apiserver,FRONTEND,,OPEN,
kube-apiserver,control-1,0,UP,1
kube-apiserver,control-2,0,DOWN,1
kube-apiserver,control-3,0,UP 1/2,1
kube-apiserver,BACKEND,0,UP,3
stats,control-9,0,UP,1
"""


def test_envoy_clusters_by_node_name() -> None:
    names = {"10.213.40.11": "k-control-plane", "10.213.40.12": "k-control-plane2"}
    states = parse_envoy_clusters(ENVOY, "kube_apiservers", names)
    assert states == {
        "k-control-plane": "UP",
        "k-control-plane2": "DOWN",
        "10.213.40.13": "DOWN",  # unknown address: named by its address
    }


def test_haproxy_stat_first_word_of_state() -> None:
    states = parse_haproxy_stat(HAPROXY, "kube-apiserver")
    assert states == {"control-1": "UP", "control-2": "DOWN", "control-3": "UP"}
    assert parse_haproxy_stat("", "kube-apiserver") == {}


def cluster(names: list[str], delay_method: str = "netem", kind: str = "netns") -> Cluster:
    nodes = tuple(
        Node(
            n,
            frozenset({"etcd", "control-plane"}),
            f"10.0.0.{i}",
            TransportSpec(kind, n, {"container": n} if kind == "docker" else {"netns": n}),
        )
        for i, n in enumerate(names, start=1)
    )
    return Cluster(
        name="lab/t",
        target="lab",
        nodes=nodes,
        etcd=EtcdAccess({n: f"https://10.0.0.{i}:2379" for i, n in enumerate(names, 1)}, None),
        control=LabControl.__new__(LabControl),
        observer=TransportSpec("local", "kubedrill"),
        facts=ClusterFacts("lab", "stacked", len(names), delay_method=delay_method),
    )


def test_nth_orders_names_naturally() -> None:
    c = cluster(["k-control-plane3", "k-control-plane", "k-control-plane2"])
    assert [c.nth("control-plane", i) for i in range(3)] == [
        "k-control-plane",
        "k-control-plane2",
        "k-control-plane3",
    ]
    lab = cluster(["control-10", "control-2", "control-1"])
    assert lab.nth("etcd", 2) == "control-10"
    with pytest.raises(UnknownNodeError, match="has 3 control-plane node"):
        lab.nth("control-plane", 3)


def test_faults_say_why_a_target_cannot_carry_them() -> None:
    c = cluster(["n1", "n2", "n3"], delay_method="none")
    reason = NetemDelay(200).available(c)
    assert reason is not None and "delay no packets" in reason
    assert NetemDelay(200).available(cluster(["n1"], delay_method="nfqueue")) is None
    assert Isolate(Selector.leader()).available(c) is None
    assert "no Kubernetes" in (Drain("n1").available(c) or "")
    node_fault = PauseNode(Selector.named("n1")).available(c)
    assert node_fault is not None and "not containers" in node_fault
    assert PauseNode(Selector.named("n1")).available(cluster(["n1"], kind="docker")) is None
    # No leader locator for etcd on this bare cluster: a leader fault cannot be aimed.
    assert "cannot tell" in (KillComponent("etcd", Selector.leader()).available(c) or "")
    assert KillComponent("etcd", Selector.named("n1")).available(c) is None


def test_facts_flatten_for_reports() -> None:
    facts = ClusterFacts(
        "kind", "stacked", 3, kubectl="/usr/bin/kubectl", extra={"kind_cluster": "drills"}
    )
    flat = facts.to_dict()
    assert flat["members"] == "3" and flat["kind_cluster"] == "drills"
    assert "api_server" not in flat  # unset optional facts are left out
    with pytest.raises(ValueError, match="delay method"):
        ClusterFacts("lab", "etcd", 3, delay_method="tc")


def test_delayer_runs_host_side_in_a_node_containers_netns() -> None:
    c = cluster(["n1", "n2", "n3"], delay_method="nfqueue", kind="docker")
    c = Cluster(**{**c.__dict__, "leader_locators": {"etcd": lambda: "n1"}})
    plan = NetemDelay(150).plan(c)
    kinds = {(s.transport.kind, s.argv[0]) for s in plan.inject}
    # The Python delayer starts in the node's netns from the host; iptables runs in the node.
    assert ("container-netns", "sh") in kinds and ("docker", "iptables") in kinds
    assert not any(
        s.transport.kind == "docker" and "delayer" in " ".join(s.argv) for s in plan.inject
    )
    undo_kinds = [s.transport.kind for s in plan.undo]
    assert "container-netns" in undo_kinds and "docker" in undo_kinds
