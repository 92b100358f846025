"""The stacked lab is a real HA control plane: kubectl through HAProxy sees every Node Ready,
the server reports the pinned version, every backend is UP, controller leases are held, and
`lab down` leaves nothing behind."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from kubedrill.cluster import Cluster
from kubedrill.probes.kube import KubeProbes
from kubedrill.targets.lab import lab
from kubedrill.targets.lab.config import load_lab_config
from tests.integration.conftest import ROOT, leftovers, run_pytest


def test_stacked_lab(tmp_path: Path) -> None:
    config_file = tmp_path / "lab.yaml"
    config_file.write_text("lab:\n  name: kdk\n  topology: stacked\n  subnet: 10.213.42.0/24\n")
    config = load_lab_config(config_file)
    try:
        cluster = lab.up(config, progress=lambda _m: None)
        assert cluster.kube is not None
        kubectl = [cluster.facts.kubectl or "kubectl", f"--kubeconfig={cluster.kube.kubeconfig}"]
        nodes = json.loads(
            subprocess.run(
                [*kubectl, "get", "nodes", "-o", "json"], capture_output=True, text=True, check=True
            ).stdout
        )
        ready = {
            n["metadata"]["name"]
            for n in nodes["items"]
            if any(
                c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"]
            )
        }
        assert ready == {"control-1", "control-2", "control-3", "worker-1", "worker-2", "worker-3"}
        control = next(n for n in nodes["items"] if n["metadata"]["name"] == "control-1")
        assert "node-role.kubernetes.io/control-plane" in control["metadata"]["labels"]
        assert control["spec"]["taints"][0]["effect"] == "NoSchedule"
        version = json.loads(
            subprocess.run(
                [*kubectl, "version", "-o", "json"], capture_output=True, text=True, check=True
            ).stdout
        )
        assert version["serverVersion"]["gitVersion"] == config.kubernetes.version
        assert cluster.kube.server.startswith(f"https://{cluster.node('lb').address}:")
        # The scheduled game day example is valid Kubernetes: the real apiserver accepts it
        # (server-side dry run validates every field against the schema).
        subprocess.run([*kubectl, "create", "namespace", "kubedrill"], check=True, timeout=30)
        applied = subprocess.run(
            [
                *kubectl,
                "apply",
                "--dry-run=server",
                "-f",
                str(ROOT / "deploy/gameday-cronjob.yaml"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert applied.returncode == 0, applied.stderr
        assert "cronjob.batch/kubedrill-gameday created (server dry run)" in applied.stdout
        probes = KubeProbes(cluster.kube)
        try:
            assert probes.backends() == {f"control-{i}": "UP" for i in (1, 2, 3)}
            for lease in ("kube-controller-manager", "kube-scheduler"):
                holder = probes.lease(lease)
                assert holder is not None and holder.node in {"control-1", "control-2", "control-3"}
        finally:
            probes.close()
        check_gameday_dry_run(config_file, cluster, tmp_path / "dry-run")
    finally:
        lab.down(config, progress=lambda _m: None)
    assert leftovers("kdk") == []


def check_gameday_dry_run(config_file: Path, cluster: Cluster, reports: Path) -> None:
    """Every drill can be dry-run to its end (none fails on what a dry run cannot observe),
    and the game day's walk has all of it: its three faults in order, each with its undo,
    its waits with their budgets, the final verify; printed without -s, and the lab is
    untouched (no rule, no cordon, no namespace, the same etcd leader)."""
    assert cluster.kube is not None
    leader = cluster.leader("etcd")
    proc = run_pytest(
        "drills/",
        "--dry-run",
        "--lab-config",
        str(config_file),
        "--kubedrill-reports",
        str(reports),
        "--alluredir",
        str(reports / "allure"),
        "--junitxml",
        str(reports / "junit.xml"),
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    drills = json.loads((reports / "summary.json").read_text())["drills"]
    assert {d["verdict"] for d in drills} <= {"passed", "skipped"}
    (drill,) = [d for d in drills if d["drill"] == "test_gameday"]
    kinds = [(s["kind"], s["what"]) for s in drill["dry_run"]]
    faults = ["drain node control-1", "stop etcd on control-2", "isolate control-3"]
    injects = [what for kind, what in kinds if kind == "inject"]
    undos = [what for kind, what in kinds if kind == "undo"]
    assert [i.split(" from")[0] for i in injects] == faults, injects
    assert undos == injects
    for fault in injects:  # each fault is undone before the next one is injected
        assert kinds.index(("undo", fault)) < kinds.index(("inject", fault)) + 6
    waits = [s for s in drill["dry_run"] if s["kind"] == "wait"]
    assert any("budget leader_election 15 s" in " ".join(w["detail"]) for w in waits)
    assert kinds[-1][0] == "assert" and ("verify", "verify") in kinds
    assert "kubedrill dry run" in proc.stdout and "isolate control-3" in proc.stdout
    assert drill["measurements"] == []  # nothing was measured, so no figure is reported
    for node in cluster.nodes:
        assert "DROP" not in cluster.transport(node).run(["iptables", "-S"]).stdout
    assert cluster.leader("etcd") == leader
    kubectl = [cluster.facts.kubectl or "kubectl", f"--kubeconfig={cluster.kube.kubeconfig}"]
    nodes = subprocess.run(
        [*kubectl, "get", "nodes", "-o", "json"], capture_output=True, text=True, check=True
    ).stdout
    assert '"unschedulable": true' not in nodes
    namespaces = subprocess.run(
        [*kubectl, "get", "namespaces", "-o", "name"], capture_output=True, text=True, check=True
    ).stdout
    assert "drill-gameday" not in namespaces
