"""Drain a Node the way `kubectl drain` does (cordon, then the Eviction API, respecting
PodDisruptionBudgets and retrying 429s, skipping DaemonSet and mirror pods); heal uncordons.

kubectl is the reference implementation of drain, so the lab uses it rather than a copy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from kubedrill.errors import FaultError
from kubedrill.faults.base import FaultPlan
from kubedrill.transport.step import Step

if TYPE_CHECKING:
    from kubedrill.cluster import Cluster


@dataclass(frozen=True)
class Drain:
    node: str
    timeout_s: int = 90

    @property
    def name(self) -> str:
        return "drain"

    def available(self, cluster: Cluster) -> str | None:
        if cluster.kube is None or not cluster.facts.kubectl:
            return f"{cluster.name} has no Kubernetes API (and kubectl) to drain through"
        return None

    def plan(self, cluster: Cluster) -> FaultPlan:
        kubectl = cluster.facts.kubectl
        if cluster.kube is None or not kubectl:
            raise FaultError(
                f"{cluster.name} has no Kubernetes API to drain {self.node} through",
                "bring the lab up with --topology stacked",
            )
        base = (kubectl, f"--kubeconfig={cluster.kube.kubeconfig}")
        inject = Step(
            cluster.observer,
            (
                *base,
                "drain",
                self.node,
                "--ignore-daemonsets",
                "--delete-emptydir-data",
                f"--timeout={self.timeout_s}s",
            ),
            timeout=self.timeout_s + 15,
        )
        undo = Step(cluster.observer, (*base, "uncordon", self.node), timeout=30)
        return FaultPlan(
            self.name,
            (self.node,),
            f"drain node {self.node}",
            (inject,),
            (undo,),
            data={"component": "kwok"},
            claims=frozenset({f"the cordon of Node {self.node}"}),  # one uncordon ends both
        )
