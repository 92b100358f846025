"""Assembles the kind node image: binaries, Debian base, kubedrill's files, preloaded images.

Stages (each cached on its own, each timed in the progress lines):
  1. binaries    - Go builds and the pause binary (binaries.py), cached under ~/.cache/kubedrill/bin
  2. rootfs      - debootstrap tar (rootfs.py), cached under ~/.cache/kubedrill/kind
  3. base        - that tar imported into podman (`localhost/kubedrill/kind-base:<rootfs key>`)
  4. components  - one `FROM scratch` image per name of `kubeadm config images list`, built in a
                   private podman store and saved together (`podman save -m`)
  5. node        - a container of the base gets the package data, the binaries and the rendered
                   configs, imports the saved images into its containerd (`ctr images import`),
                   and is committed as `localhost/kubedrill/node:<k8s version>-<inputs hash>`.
The tag depends only on the inputs (hashing.py), so `node_image()` on a warm machine is one
`podman image exists`.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import shutil
import string
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from kubedrill.targets.kind.image import components, hashing, rootfs, spec
from kubedrill.targets.kind.image.binaries import NodeBinaries, ensure_binaries
from kubedrill.targets.kind.image.package_files import extract
from kubedrill.targets.kind.image.podman import Podman
from kubedrill.targets.kind.image.run import ImageBuildError, Progress, output, run
from kubedrill.targets.lab.config import default_cache_dir

# Bump when the Python build steps change what the image holds (the package data is hashed).
RECIPE = "1"
DATA = Path(__file__).parent / "files"
BASE_REPOSITORY = "localhost/kubedrill/kind-base"
# The node image's config, the way kind's own node images have it.
NODE_CHANGES = [
    'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]',
    "STOPSIGNAL SIGRTMIN+3",
    "ENV container=docker",
    f"LABEL {components.KIND_LABEL}=node",
]
BUILD_MOUNT = "/kubedrill-build"


def versions() -> dict[str, str]:
    return {
        "kubernetes": spec.KUBERNETES_VERSION,
        "etcd": spec.ETCD_VERSION,
        "cri-tools": spec.CRI_TOOLS_VERSION,
        "kind": spec.KIND_VERSION,
        "coredns": "kubeadm's" if spec.WITH_COREDNS else "none",
    }


def node_image_tag() -> str:
    """The tag the current inputs give (nothing is built or asked of podman)."""
    digest = hashing.inputs_hash(
        versions(), spec.SUITE, spec.PACKAGES, hashing.data_files(DATA), RECIPE
    )
    return hashing.image_tag(spec.KUBERNETES_VERSION, digest)


def render_containerd_config(sandbox_image: str) -> str:
    template = (DATA / "templates" / "containerd-config.toml").read_text()
    return string.Template(template).substitute(sandbox_image=sandbox_image)


def node_image(progress: Progress, *, force: bool = False, cache_dir: Path | None = None) -> str:
    """The node image's tag, built first if podman does not have it (or `force`)."""
    tag = node_image_tag()
    engine = Podman()
    if not force and engine.image_exists(tag):
        progress(f"node image {tag} is up to date")
        return tag
    cache = cache_dir or default_cache_dir()
    with _build_lock(cache / "kind" / "node-image.lock", progress):
        if not force and engine.image_exists(tag):  # built by whoever held the lock
            return tag
        _Build(tag, cache, progress, engine).run()
    return tag


@contextmanager
def _build_lock(path: Path, progress: Progress) -> Iterator[None]:
    """One image build at a time on this machine (they share work directories and podman)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            progress("another kind node image build is running; waiting for it")
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


@dataclass
class _Build:
    tag: str
    cache_dir: Path
    progress: Progress
    engine: Podman
    timings: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self.progress(f"[{name}] ...")
        started = time.monotonic()
        yield
        self.timings[name] = time.monotonic() - started
        self.progress(f"[{name}] done in {self.timings[name]:.1f} s")

    def run(self) -> None:
        if os.geteuid() != 0:
            raise ImageBuildError(
                "building the kind node image needs root (debootstrap, podman)",
                "run it as root",
            )
        self.progress(f"building kind node image {self.tag}")
        work = self.cache_dir / "kind" / "work" / f"node-{self.tag.rsplit('-', 1)[-1]}"
        rootfs.remove_tree(work)
        work.mkdir(parents=True)
        try:
            with self.stage("binaries"):
                bins = ensure_binaries(self.cache_dir, self.progress, coredns=None)
                images = self._kubeadm_images(bins)
                coredns = next(
                    (components.tag(i) for i in images if components.repository(i) == "coredns"),
                    None,
                )
                if spec.WITH_COREDNS and coredns:
                    bins = ensure_binaries(self.cache_dir, self.progress, coredns=coredns)
            with self.stage("rootfs"):
                tar = rootfs.ensure_rootfs(self.cache_dir, spec.SUITE, spec.PACKAGES, self.progress)
            with self.stage("base"):
                base = self._base_image(tar)
            with self.stage("components"):
                archive, names = self._component_images(bins, images, tar, work)
            with self.stage("node"):
                self._node(base, bins, images, archive, names, work)
        finally:
            rootfs.remove_tree(work)
        self._prune_old()
        size = self.engine.inspect_image(self.tag).get("Size", 0)
        summary = ", ".join(f"{k} {v:.1f} s" for k, v in self.timings.items())
        self.progress(f"built {self.tag} ({size / 1e6:.0f} MB): {summary}")

    def _kubeadm_images(self, bins: NodeBinaries) -> list[str]:
        listed = output(
            [str(bins.path("kubeadm")), "config", "images", "list",
             "--kubernetes-version", spec.KUBERNETES_VERSION]
        )  # fmt: skip
        images = components.parse_image_list(listed)
        self.progress(f"  kubeadm asks for: {' '.join(images)}")
        return images

    def _base_image(self, tar: Path) -> str:
        name = f"{BASE_REPOSITORY}:{tar.stem.rsplit('-', 1)[-1]}"
        if not self.engine.image_exists(name):
            self.progress(f"  podman import {tar.name} -> {name}")
            self.engine.import_tar(tar, name, NODE_CHANGES[:3])
        return name

    def _component_images(
        self, bins: NodeBinaries, images: list[str], tar: Path, work: Path
    ) -> tuple[Path, list[str]]:
        runroot = Path(tempfile.mkdtemp(prefix="kd-img-", dir="/tmp"))
        store = Podman(root=work / "store", runroot=runroot)
        resolve: dict[str, Path] = {
            name: bins.path(name)
            for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler",
                         "kube-proxy", "etcd", "etcdctl")
        }  # fmt: skip
        resolve["pause"] = bins.pause
        if bins.coredns is not None:
            resolve["coredns"] = bins.coredns
        iptables_root = work / "iptables-root"
        names: list[str] = []
        try:
            for image in images:
                recipe = components.component_image(image)
                if recipe is None or any(b not in resolve for b in recipe.files.values()):
                    self.progress(f"  {image}: not built here (left out)")
                    continue
                context = work / "components" / components.repository(image)
                files = context / "rootfs"
                if recipe.with_iptables:
                    if not iptables_root.is_dir():
                        packages = extract(tar, spec.KUBE_PROXY_PACKAGES, iptables_root)
                        self.progress(f"  iptables for kube-proxy from: {' '.join(packages)}")
                    shutil.copytree(iptables_root, files, symlinks=True)
                for target, source in components.context_files(recipe, resolve).items():
                    _install(source, files / target.lstrip("/"))
                (context / "Containerfile").write_text(components.containerfile(recipe))
                store.build(context, image)
                names.append(image)
                for alias in recipe.aliases:
                    store.tag(image, alias)
                    names.append(alias)
            archive = work / "images.tar"
            store.save(names, archive)
            self.progress(f"  saved {len(names)} images ({archive.stat().st_size / 1e6:.0f} MB)")
            return archive, names
        finally:
            store.remove_images(names)
            rootfs.remove_tree(work / "store")
            rootfs.remove_tree(runroot)

    def _node(
        self,
        base: str,
        bins: NodeBinaries,
        images: list[str],
        archive: Path,
        names: list[str],
        work: Path,
    ) -> None:
        context = work / "context"
        files = context / "rootfs"
        shutil.copytree(DATA / "rootfs", files, symlinks=True)
        for name in ("kubelet", "kubeadm", "kubectl"):
            _install(bins.path(name), files / "usr" / "bin" / name)
        _install(bins.crictl, files / "usr" / "local" / "bin" / "crictl")
        config = files / "etc" / "containerd" / "config.toml"
        config.write_text(render_containerd_config(components.sandbox_image(images)))
        (files / "kind" / "version").write_text(spec.KUBERNETES_VERSION)
        shutil.copy2(DATA / "scripts" / "setup-node.sh", context / "setup-node.sh")
        archive.rename(context / "images.tar")
        self.progress("  build context ready (binaries stripped, configs rendered)")
        container = f"kubedrill-image-build-{secrets.token_hex(4)}"
        try:
            self.engine.run_detached(
                container,
                base,
                ["--network", "none", "--entrypoint", '["sleep", "infinity"]',
                 "-v", f"{context}:{BUILD_MOUNT}:ro"],
            )  # fmt: skip
            listed = self.engine.exec(
                container, ["bash", f"{BUILD_MOUNT}/setup-node.sh", BUILD_MOUNT]
            )
            missing = sorted(set(names) - set(listed.split()))
            if missing:
                raise ImageBuildError(
                    f"containerd in the node lacks preloaded images: {', '.join(missing)}"
                )
            self.progress(f"  preloaded into containerd: {len(names)} images; committing")
            self.engine.commit(container, self.tag, NODE_CHANGES)
        finally:
            self.engine.remove_container(container)

    def _prune_old(self) -> None:
        """Older kubedrill node images (other input hashes) go, unless a container uses them."""
        stale = [t for t in self.engine.images(hashing.REPOSITORY) if t != self.tag]
        if stale:
            self.engine.remove_images(stale)


def _install(source: Path, dest: Path) -> None:
    """Copy a binary into a build context without its symbol table and DWARF (what the release
    builds' `-s -w` leave out; Go's own tables for stack traces stay): about 30% smaller."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if run(["strip", "-o", str(dest), str(source)], check=False).returncode != 0:
        shutil.copy2(source, dest)
    dest.chmod(0o755)
