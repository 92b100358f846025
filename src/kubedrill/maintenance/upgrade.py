"""An in-place upgrade to the next pinned Kubernetes minor: a rolling restart whose hook swaps
the host's binaries while each component is down.

The plan is pure data: from the lab's release to the next one in `versions.RELEASES`, the
components in the order kubeadm upgrades a control-plane host (etcd first, when the paired
etcd changes; then kube-apiserver, kube-controller-manager, kube-scheduler). On the lab the
swap is a binary-directory override the supervisor reads at the component's next start (the
lab's new static-pod image); the upgraded lab stays upgraded (an etcd whose cluster version
moved on cannot go back by a binary swap: a downgrade is its own runbook).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from kubedrill.cluster import Cluster, Node
from kubedrill.errors import ConfigError
from kubedrill.maintenance.rolling import KUBE_COMPONENTS
from kubedrill.targets.lab import layout, overrides, versions
from kubedrill.targets.lab.build import Progress
from kubedrill.targets.lab.config import EtcdSettings, KubernetesSettings, LabConfig
from kubedrill.targets.lab.versions import Release


@dataclass(frozen=True)
class UpgradePlan:
    """From one pinned release to the next minor's."""

    current: Release
    target: Release

    @property
    def etcd_changes(self) -> bool:
        return self.current.etcd != self.target.etcd

    @property
    def components(self) -> tuple[str, ...]:
        """Per host, in kubeadm's order."""
        return (("etcd",) if self.etcd_changes else ()) + KUBE_COMPONENTS

    def describe(self) -> str:
        etcd = (
            f", etcd {self.current.etcd} -> {self.target.etcd}"
            if self.etcd_changes
            else f", etcd stays {self.current.etcd}"
        )
        return f"Kubernetes {self.current.kubernetes} -> {self.target.kubernetes}{etcd}"


def plan_from(kubernetes_version: str, etcd_version: str | None = None) -> UpgradePlan:
    """The upgrade of a cluster on `kubernetes_version` to the next pinned minor (a
    ConfigError when there is none: the cluster is on the newest)."""
    minor = versions.minor_of(kubernetes_version)
    current = Release(kubernetes_version, etcd_version or versions.paired_etcd(kubernetes_version))
    newer = [r for r in versions.RELEASES if r.minor == minor + 1]
    if not newer:
        known = ", ".join(r.kubernetes for r in versions.RELEASES)
        raise ConfigError(
            f"no pinned release of Kubernetes 1.{minor + 1} to upgrade {kubernetes_version} to",
            f"start the lab on an older minor (pinned: {known})",
        )
    return UpgradePlan(current, newer[0])


@dataclass(frozen=True)
class LabBinarySwitch:
    """The hook of the rolling restart: while `component` is down on a host, point the
    supervisor at the new release's binary for it."""

    state_dir: Path
    bin_dirs: Mapping[str, Path]  # component -> directory holding its new binary

    def __call__(self, node: Node, component: str) -> None:
        overrides.write_bin_dir(
            self.state_dir, layout.component_key(node.name, component), self.bin_dirs[component]
        )


def bin_dirs(binaries: Mapping[str, Path]) -> dict[str, Path]:
    """component -> its binary's directory, from lab.binaries()' name -> path."""
    return {name: path.parent for name, path in binaries.items()}


def lab_switch(cluster: Cluster, plan: UpgradePlan, progress: Progress) -> LabBinarySwitch | None:
    """The binary switch for a lab cluster, the target release built (or found cached) first;
    None on other targets (their upgrade is the node's package manager, not ours)."""
    from kubedrill.disaster.recovery import lab_state_dir  # noqa: PLC0415
    from kubedrill.targets.lab import lab  # noqa: PLC0415

    state_dir = lab_state_dir(cluster)
    if state_dir is None:
        return None
    config = LabConfig(
        topology="stacked",
        etcd=EtcdSettings(version=plan.target.etcd),
        kubernetes=KubernetesSettings(version=plan.target.kubernetes),
    )
    return LabBinarySwitch(state_dir, bin_dirs(lab.binaries(config, progress)))
