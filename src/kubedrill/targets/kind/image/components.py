"""The images a node preloads: exactly the names kubeadm asks for, built `FROM scratch` here.

kubeadm's static-pod manifests and add-ons call the upstream images' binaries by name
(`kube-apiserver ...`, `etcd ...`, `/usr/local/bin/kube-proxy`, CoreDNS's entrypoint `/coredns`,
the pause binary `/pause`), so each image holds its locally built binary where the upstream
image has it, with PATH and entrypoint set the same way. kube-proxy also needs iptables: its
image carries the Debian packages' files (and libraries) from the node's own root file system.
The pause image also goes by the name drills give their workload pods.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# The image drills' Deployments use by default (kubedrill.probes.kube.DEFAULT_WORKLOAD_IMAGE).
# Never pulled: the tag is not `latest`, so kubelet uses the preloaded image.
WORKLOAD_IMAGE = "registry.invalid/kubedrill/pause:1"
KIND_LABEL = "io.kubedrill.kind-image"


@dataclass(frozen=True)
class ComponentImage:
    """One image: its name, files (path in the image -> built binary) and config."""

    name: str
    files: Mapping[str, str]  # absolute path in the image -> binary name (NodeBinaries.path)
    entrypoint: tuple[str, ...] = ()
    user: str = ""
    with_iptables: bool = False  # kube-proxy: the iptables/conntrack files from the rootfs
    aliases: tuple[str, ...] = field(default=())


def repository(image: str) -> str:
    """registry.k8s.io/coredns/coredns:v1.12.1 -> coredns (the last path element, no tag)."""
    last = image.rsplit("/", 1)[-1]
    return last.split("@", 1)[0].split(":", 1)[0]


def tag(image: str) -> str:
    last = image.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else "latest"


def component_image(image: str) -> ComponentImage | None:
    """The recipe for one name of `kubeadm config images list`; None for one kubedrill cannot
    build (CoreDNS when it is left out is decided by the caller)."""
    name = repository(image)
    if name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        binary = f"/usr/local/bin/{name}"
        return ComponentImage(image, {binary: name}, entrypoint=(binary,))
    if name == "kube-proxy":
        binary = "/usr/local/bin/kube-proxy"
        return ComponentImage(image, {binary: name}, entrypoint=(binary,), with_iptables=True)
    if name == "etcd":
        return ComponentImage(
            image,
            {"/usr/local/bin/etcd": "etcd", "/usr/local/bin/etcdctl": "etcdctl"},
            entrypoint=("/usr/local/bin/etcd",),
        )
    if name == "pause":
        return ComponentImage(
            image, {"/pause": "pause"}, entrypoint=("/pause",), user="65535:65535",
            aliases=(WORKLOAD_IMAGE,),
        )  # fmt: skip
    if name == "coredns":
        return ComponentImage(image, {"/coredns": "coredns"}, entrypoint=("/coredns",))
    return None


def containerfile(image: ComponentImage) -> str:
    """The Containerfile of a component image; its build context holds `rootfs/`."""
    lines = [
        "FROM scratch",
        "COPY rootfs/ /",
        f"ENV PATH={PATH}",
        f"LABEL {KIND_LABEL}=component",
    ]
    if image.user:
        lines.append(f"USER {image.user}")
    if image.entrypoint:
        lines.append(f"ENTRYPOINT {json.dumps(list(image.entrypoint))}")
    return "\n".join(lines) + "\n"


def sandbox_image(images: Sequence[str]) -> str:
    """The pause image among kubeadm's names (containerd's sandbox_image)."""
    for image in images:
        if repository(image) == "pause":
            return image
    raise ValueError(f"kubeadm lists no pause image: {list(images)}")


def parse_image_list(text: str) -> list[str]:
    """`kubeadm config images list` output: one image per line, warnings dropped."""
    return [
        line.strip()
        for line in text.splitlines()
        if line.strip() and " " not in line.strip() and "/" in line and ":" in line
    ]


def context_files(image: ComponentImage, resolve: Mapping[str, Path]) -> dict[str, Path]:
    """Path in the image -> file on this machine, for the binaries of `image`."""
    return {target: resolve[binary] for target, binary in image.files.items()}
