"""Every binary the node image holds, built here and cached under ~/.cache/kubedrill/bin.

The control-plane binaries, kubectl and etcd are the lab's own cached builds (reused, not rebuilt).
The node adds kubelet, kubeadm and kube-proxy (a separate GoBuild key, so the lab's cache stays
valid; the same GOCACHE, so shared packages are compiled once), crictl, CoreDNS, the pause binary
(a static C build of Kubernetes' own pause.c) and the kind CLI that drives it all.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from kubedrill.errors import MissingBinaryError
from kubedrill.targets.kind.image import spec
from kubedrill.targets.kind.image.run import Progress, run
from kubedrill.targets.lab.build import GoBuild, ensure_built, etcd_build, go_environment
from kubedrill.targets.lab.kube_build import KUBERNETES_MODULE, _download, kubernetes_build

NODE_BINARIES = ("kubelet", "kubeadm", "kube-proxy")
KIND_MODULE = "sigs.k8s.io/kind"
CRI_TOOLS_MODULE = "sigs.k8s.io/cri-tools"
COREDNS_MODULE = "github.com/coredns/coredns"


def kubernetes_node_build(version: str, cache_dir: Path, progress: Progress) -> GoBuild:
    """kubelet, kubeadm and kube-proxy, built exactly like the lab's control-plane binaries."""
    control_plane = kubernetes_build(version, cache_dir, progress)
    key = f"kubernetes-node-{version}"
    binaries = {name: f"{KUBERNETES_MODULE}/cmd/{name}" for name in NODE_BINARIES}
    resolve = control_plane.prepare

    def prepare(env: Mapping[str, str]) -> GoBuild:
        resolved = resolve(env) if resolve is not None else control_plane
        return dataclasses.replace(resolved, key=key, binaries=binaries, prepare=None)

    return dataclasses.replace(
        control_plane, key=key, binaries=binaries, expected_minutes=8, prepare=prepare
    )


def crictl_build(version: str) -> GoBuild:
    return GoBuild(
        key=f"cri-tools-{version}",
        requires={CRI_TOOLS_MODULE: version},
        binaries={"crictl": f"{CRI_TOOLS_MODULE}/cmd/crictl"},
        ldflags=f"-X {CRI_TOOLS_MODULE}/pkg/version.Version={version}",
        expected_minutes=3,
    )


def kind_build(version: str) -> GoBuild:
    return GoBuild(
        key=f"kind-{version}",
        requires={KIND_MODULE: version},
        binaries={"kind": KIND_MODULE},
        expected_minutes=2,
    )


def coredns_build(version: str) -> GoBuild:
    """CoreDNS with its default plugin set (core/plugin/zplugin.go as released)."""
    return GoBuild(
        key=f"coredns-{version}",
        requires={COREDNS_MODULE: version},
        binaries={"coredns": COREDNS_MODULE},
        ldflags=f"-X {COREDNS_MODULE}/coremain.GitCommit=kubedrill-{version}",
        expected_minutes=5,
    )


def kind_binary_path(cache_dir: Path, progress: Progress | None = None) -> Path:
    """The pinned kind CLI, built from its Go module on first use."""
    quiet: Progress = progress or (lambda _message: None)
    return ensure_built(kind_build(spec.KIND_VERSION), cache_dir, quiet) / "kind"


def pause_binary(version: str, cache_dir: Path, progress: Progress) -> Path:
    """A static `gcc -Os` build of build/pause/linux/pause.c from the pinned Kubernetes module."""
    target = cache_dir / "bin" / f"pause-{version}"
    binary = target / "pause"
    if (target / ".complete").exists() and os.access(binary, os.X_OK):
        return binary
    if shutil.which("gcc") is None:
        raise MissingBinaryError("building the pause binary needs gcc", "apt-get install gcc")
    progress(f"building pause from {KUBERNETES_MODULE}@{version}/build/pause/linux/pause.c")
    info = _download(f"{KUBERNETES_MODULE}@{version}", cache_dir, go_environment())
    source = Path(info["Dir"]) / "build" / "pause" / "linux" / "pause.c"
    if not source.is_file():
        raise MissingBinaryError(
            f"{KUBERNETES_MODULE}@{version}'s module has no build/pause/linux/pause.c",
            "this release is laid out differently; pin another kubernetes version",
        )
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    run(["gcc", "-Os", "-Wall", "-Werror", "-static", f"-DVERSION=kubedrill-{version}",
         "-o", str(partial / "pause"), str(source)], nice=True)  # fmt: skip
    run(["strip", str(partial / "pause")], check=False)
    (partial / ".complete").write_text(json.dumps({"source": str(source)}))
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    return binary


@dataclass(frozen=True)
class NodeBinaries:
    """Paths of everything the image build copies in."""

    kubernetes: Path  # kube-apiserver, kube-controller-manager, kube-scheduler, kubectl
    node: Path  # kubelet, kubeadm, kube-proxy
    etcd: Path  # etcd, etcdctl
    crictl: Path
    pause: Path
    coredns: Path | None  # None when CoreDNS is left out

    def path(self, name: str) -> Path:
        for directory in (self.kubernetes, self.node, self.etcd):
            if (directory / name).is_file():
                return directory / name
        raise MissingBinaryError(f"no built binary {name!r}")


def ensure_binaries(cache_dir: Path, progress: Progress, *, coredns: str | None) -> NodeBinaries:
    """Build (or find cached) every binary; `coredns` is the CoreDNS version, None to skip it."""

    def timed(build: GoBuild) -> Path:
        started = time.monotonic()
        path = ensure_built(build, cache_dir, progress)
        elapsed = time.monotonic() - started
        if elapsed > 1:
            progress(f"  {build.key}: {elapsed:.0f} s")
        return path

    version = spec.KUBERNETES_VERSION
    kubernetes = timed(kubernetes_build(version, cache_dir, progress))
    node = timed(kubernetes_node_build(version, cache_dir, progress))
    etcd = timed(etcd_build(spec.ETCD_VERSION))
    crictl = timed(crictl_build(spec.CRI_TOOLS_VERSION)) / "crictl"
    pause = pause_binary(version, cache_dir, progress)
    core = timed(coredns_build(coredns)) / "coredns" if coredns else None
    timed(kind_build(spec.KIND_VERSION))
    return NodeBinaries(kubernetes, node, etcd, crictl, pause, core)
