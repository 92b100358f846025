"""The pure parts of `kubedrill kind image build`: apt sources, hashing, configs, image recipes,
dpkg closure, and the build definitions (nothing is built or run here)."""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubedrill.errors import ConfigError
from kubedrill.probes.kube import DEFAULT_WORKLOAD_IMAGE
from kubedrill.targets.kind import cli as kind_cli
from kubedrill.targets.kind.image import (
    apt_sources,
    binaries,
    components,
    hashing,
    node,
    package_files,
    rootfs,
    spec,
)
from kubedrill.targets.kind.image.cli import add_image_commands
from kubedrill.targets.lab import kube_build, versions

DEB822 = """\
Types: deb
# a comment
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://mirror.example/debian
Suites: bookworm
Components: main

Types: deb
URIs: http://mirror.example/debian-security/
Suites: bookworm-security
Components: main contrib

Types: deb
Enabled: no
URIs: http://disabled.example/debian
Suites: bookworm
Components: main
"""

ONE_LINE = """\
# deb http://commented.example/debian bookworm main
deb [arch=amd64 signed-by=/k.gpg] http://other.example/debian/ trixie main non-free
deb http://plain.example/debian bookworm main
"""


# -- apt sources ---------------------------------------------------------------------------------


def test_deb822_keeps_enabled_binary_sources() -> None:
    sources = apt_sources.parse_deb822(DEB822)
    assert [s.uri for s in sources] == [
        "http://mirror.example/debian",
        "http://mirror.example/debian-security",
    ]
    assert sources[0].suites == ("bookworm", "bookworm-updates")
    assert sources[0].signed_by == "/usr/share/keyrings/debian-archive-keyring.gpg"
    assert sources[1].components == ("main", "contrib")


def test_one_line_sources_with_options() -> None:
    sources = apt_sources.parse_one_line(ONE_LINE)
    assert [(s.uri, s.suites, s.signed_by) for s in sources] == [
        ("http://other.example/debian", ("trixie",), "/k.gpg"),
        ("http://plain.example/debian", ("bookworm",), ""),
    ]


def test_mirror_and_chroot_sources_for_a_suite(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(DEB822)
    (tmp_path / "sources.list").write_text(ONE_LINE)
    sources = apt_sources.machine_sources(tmp_path)
    # sources.list comes first, as apt reads it
    assert apt_sources.mirror_for("bookworm", sources) == "http://plain.example/debian"
    assert apt_sources.mirror_for("trixie", sources) == "http://other.example/debian"
    lines = apt_sources.chroot_sources_list("bookworm", sources).splitlines()
    assert lines == [
        "deb http://plain.example/debian bookworm main",
        "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] "
        "http://mirror.example/debian bookworm main",
        "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] "
        "http://mirror.example/debian bookworm-updates main",
        "deb http://mirror.example/debian-security bookworm-security main contrib",
    ]


def test_no_source_for_the_suite_is_an_error() -> None:
    with pytest.raises(ConfigError, match="bullseye"):
        apt_sources.mirror_for("bullseye", apt_sources.parse_deb822(DEB822))


# -- the rootfs cache key and the image's inputs hash ---------------------------------------------


def test_rootfs_key_ignores_package_order_only() -> None:
    key = rootfs.rootfs_key("bookworm", ["b", "a"])
    assert key == rootfs.rootfs_key("bookworm", ["a", "b", "a"])
    assert key != rootfs.rootfs_key("bookworm", ["a", "b", "c"])
    assert key != rootfs.rootfs_key("trixie", ["a", "b"])
    tar = rootfs.rootfs_tar(Path("/cache"), "bookworm", ["a", "b"])
    assert tar == Path(f"/cache/kind/rootfs-bookworm-{key}.tar")


def test_inputs_hash_follows_every_input(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "entrypoint").write_text("#!/bin/sh\n")
    (tmp_path / "a" / "__pycache__").mkdir()
    (tmp_path / "a" / "__pycache__" / "x.pyc").write_bytes(b"junk")
    (tmp_path / "b.yaml").write_text("k: v\n")
    files = hashing.data_files(tmp_path)
    assert [f[0] for f in files] == ["a/entrypoint", "b.yaml"]

    def digest(**changes: Any) -> str:
        args: dict[str, Any] = {
            "versions": {"kubernetes": "v1.34.4", "etcd": "v3.6.16"},
            "suite": "bookworm",
            "packages": ["x", "y"],
            "files": hashing.data_files(tmp_path),
            "recipe": "1",
        }
        args.update(changes)
        return hashing.inputs_hash(**args)

    base = digest()
    assert len(base) == 12
    assert base == digest(packages=["y", "x"])
    assert base != digest(packages=["x"])
    assert base != digest(versions={"kubernetes": "v1.34.5", "etcd": "v3.6.16"})
    assert base != digest(suite="trixie")
    assert base != digest(recipe="2")
    (tmp_path / "a" / "entrypoint").chmod(0o755)
    assert base != digest()  # the executable bit is an input
    (tmp_path / "a" / "entrypoint").chmod(0o644)
    assert base == digest()
    (tmp_path / "b.yaml").write_text("k: w\n")
    assert base != digest()


def test_node_image_tag_is_stable_and_names_the_version() -> None:
    tag = node.node_image_tag()
    assert tag == node.node_image_tag()
    assert tag.startswith(f"localhost/kubedrill/node:{spec.KUBERNETES_VERSION}-")
    assert len(tag.rsplit("-", 1)[1]) == 12


# -- configs and manifests in the package data ---------------------------------------------


def test_containerd_config() -> None:
    rendered = node.render_containerd_config("registry.k8s.io/pause:3.10.1")
    assert 'sandbox_image = "registry.k8s.io/pause:3.10.1"' in rendered
    assert "restrict_oom_score_adj = true" in rendered
    assert "SystemdCgroup = true" in rendered
    assert "fuse-overlayfs" not in rendered.split("\n", 4)[-1]  # only the header mentions it
    assert "proxy_plugins" not in rendered
    assert 'bin_dir = "/opt/cni/bin"' in rendered


def test_default_manifests_kind_applies() -> None:
    manifests = node.DATA / "rootfs" / "kind" / "manifests"
    docs = list(yaml.safe_load_all((manifests / "default-cni.yaml").read_text()))
    assert [d["kind"] for d in docs] == ["ConfigMap", "ClusterRole", "ClusterRoleBinding"]
    assert docs[0]["metadata"]["namespace"] == "kube-system"
    assert "kubedrill-cni.service" in docs[0]["data"]["provider"]
    # Kubernetes >= 1.34 lets a node read only its own Node: every node may list them here
    assert docs[1]["rules"] == [
        {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]}
    ]
    assert docs[2]["subjects"][0]["name"] == "system:nodes"
    storage = yaml.safe_load((manifests / "default-storage.yaml").read_text())
    assert storage["kind"] == "StorageClass"
    assert storage["metadata"]["annotations"] == {
        "storageclass.kubernetes.io/is-default-class": "true"
    }


def test_shell_scripts_parse_and_are_executable() -> None:
    scripts = [
        node.DATA / "rootfs" / "usr" / "local" / "bin" / "entrypoint",
        *sorted((node.DATA / "rootfs" / "kind" / "bin").iterdir()),
        node.DATA / "scripts" / "setup-node.sh",
    ]
    for script in scripts:
        assert subprocess.run(["bash", "-n", str(script)], check=False).returncode == 0, script
    for script in scripts[:-1]:
        assert script.stat().st_mode & 0o111, f"{script} is not executable"


def test_sysctl_guard_holds_kubelets_values() -> None:
    guard = (node.DATA / "rootfs" / "kind" / "bin" / "kubedrill-sysctl-guard").read_text()
    for entry in ("[vm/overcommit_memory]=1", "[kernel/panic]=10", "[kernel/panic_on_oops]=1"):
        assert entry in guard
    dropins = node.DATA / "rootfs" / "etc" / "systemd" / "system" / "kubelet.service.d"
    assert "ExecStartPre=/kind/bin/kubedrill-sysctl-guard" in "".join(
        p.read_text() for p in dropins.iterdir()
    )


# -- component images ---------------------------------------------------------------------------

KUBEADM_LIST = """\
W1201 12:00:00.000000    1 version.go:104] could not fetch a Kubernetes version
registry.k8s.io/kube-apiserver:v1.34.4
registry.k8s.io/kube-controller-manager:v1.34.4
registry.k8s.io/kube-scheduler:v1.34.4
registry.k8s.io/kube-proxy:v1.34.4
registry.k8s.io/coredns/coredns:v1.12.1
registry.k8s.io/pause:3.10.1
registry.k8s.io/etcd:3.6.5-0
"""


def test_kubeadm_list_and_recipes() -> None:
    images = components.parse_image_list(KUBEADM_LIST)
    assert len(images) == 7
    assert components.sandbox_image(images) == "registry.k8s.io/pause:3.10.1"
    recipes = {components.repository(i): components.component_image(i) for i in images}
    assert all(r is not None for r in recipes.values())
    apiserver = recipes["kube-apiserver"]
    assert apiserver is not None
    assert apiserver.files == {"/usr/local/bin/kube-apiserver": "kube-apiserver"}
    proxy = recipes["kube-proxy"]
    assert proxy is not None and proxy.with_iptables
    assert proxy.entrypoint == ("/usr/local/bin/kube-proxy",)
    etcd = recipes["etcd"]
    assert etcd is not None and set(etcd.files) >= {"/usr/local/bin/etcd"}
    coredns = recipes["coredns"]
    assert coredns is not None and coredns.entrypoint == ("/coredns",)
    pause = recipes["pause"]
    assert pause is not None and pause.aliases == (components.WORKLOAD_IMAGE,)
    assert components.tag("registry.k8s.io/coredns/coredns:v1.12.1") == "v1.12.1"
    assert components.component_image("registry.k8s.io/unknown:1") is None


def test_containerfile_of_a_component() -> None:
    pause = components.component_image("registry.k8s.io/pause:3.10.1")
    assert pause is not None
    text = components.containerfile(pause)
    assert text.splitlines()[:2] == ["FROM scratch", "COPY rootfs/ /"]
    assert f"ENV PATH={components.PATH}" in text
    assert "USER 65535:65535" in text
    assert 'ENTRYPOINT ["/pause"]' in text


def test_workload_image_is_the_one_drills_deploy() -> None:
    assert components.WORKLOAD_IMAGE == DEFAULT_WORKLOAD_IMAGE
    assert not components.WORKLOAD_IMAGE.endswith(":latest")  # never pulled (IfNotPresent)


# -- dpkg closure for kube-proxy's iptables ---------------------------------------------------

STATUS = """\
Package: iptables
Status: install ok installed
Depends: libc6 (>= 2.34), libxtables12 (= 1.8.9-2), netbase | inetutils-x

Package: libc6
Status: install ok installed
Depends: libgcc-s1
Pre-Depends: debconf:any | debconf-2.0

Package: libgcc-s1
Status: install ok installed
Depends: gcc-12-base (= 12.2.0-14),
 libc6 (>= 2.35)

Package: gcc-12-base
Status: install ok installed

Package: libxtables12
Status: install ok installed
Depends: libc6

Package: netbase
Status: install ok installed

Package: debconf
Status: install ok installed

Package: removed-one
Status: deinstall ok config-files
"""


def test_dpkg_closure() -> None:
    installed = package_files.parse_status(STATUS)
    assert "removed-one" not in installed
    assert installed["libgcc-s1"] == [["gcc-12-base"], ["libc6"]]
    assert package_files.closure(["iptables"], installed) == [
        "debconf",
        "gcc-12-base",
        "iptables",
        "libc6",
        "libgcc-s1",
        "libxtables12",
        "netbase",
    ]
    with pytest.raises(KeyError):
        package_files.closure(["absent"], installed)


def test_merged_usr_paths() -> None:
    links = {"lib": "usr/lib", "sbin": "usr/sbin"}
    assert package_files.canonical("/lib/x86_64-linux-gnu/libc.so.6", links) == (
        "usr/lib/x86_64-linux-gnu/libc.so.6"
    )
    assert package_files.canonical("/usr/sbin/iptables", links) == "usr/sbin/iptables"
    assert package_files.canonical("/lib", links) == "lib"
    assert package_files.ALTERNATIVES.match("usr/sbin/ip6tables-restore")
    assert package_files.ALTERNATIVES.match("etc/alternatives/iptables")
    assert not package_files.ALTERNATIVES.match("usr/sbin/xtables-nft-multi")


# -- build definitions and wiring -----------------------------------------------------------


def test_versions_agree_with_the_rest_of_kubedrill() -> None:
    assert spec.KIND_VERSION == kind_cli.KIND_VERSION
    # The node image keeps its own (older) minor; its etcd is the one that minor is paired with.
    assert spec.KUBERNETES_VERSION in {r.kubernetes for r in versions.RELEASES}
    assert versions.paired_etcd(spec.KUBERNETES_VERSION) == spec.ETCD_VERSION
    for package in ("systemd", "containerd", "runc", "iptables", "openssh-server", "conntrack"):
        assert package in spec.PACKAGES
    assert "nano" not in spec.PACKAGES
    assert node.versions()["etcd"] == spec.ETCD_VERSION


def test_node_build_has_its_own_cache_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gomod = tmp_path / "go.mod"
    gomod.write_text("module k8s.io/kubernetes\nreplace k8s.io/api => ./staging/src/k8s.io/api\n")
    info = tmp_path / "v1.34.4.info"
    info.write_text(json.dumps({"Time": "2026-02-10T00:00:00Z"}))
    monkeypatch.setattr(
        kube_build, "_download", lambda *_a: {"GoMod": str(gomod), "Info": str(info)}
    )
    build = binaries.kubernetes_node_build("v1.34.4", tmp_path, lambda _m: None)
    assert build.key == "kubernetes-node-v1.34.4"
    assert set(build.binaries) == {"kubelet", "kubeadm", "kube-proxy"}
    assert build.prepare is not None
    resolved = build.prepare({})
    assert resolved.key == "kubernetes-node-v1.34.4"
    assert set(resolved.binaries) == {"kubelet", "kubeadm", "kube-proxy"}
    assert resolved.replaces == {"k8s.io/api": "v0.34.4"}
    assert "buildDate=2026-02-10T00:00:00Z" in resolved.ldflags
    assert resolved.prepare is None
    assert binaries.kind_build("v0.33.0").key == "kind-v0.33.0"
    assert binaries.kind_build("v0.33.0").binaries == {"kind": "sigs.k8s.io/kind"}
    assert binaries.crictl_build("v1.34.0").binaries == {
        "crictl": "sigs.k8s.io/cri-tools/cmd/crictl"
    }


def test_cli_registers_image_build() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="kind_command")
    add_image_commands(sub)
    args = parser.parse_args(["image", "build", "--force"])
    assert args.force is True
    assert args.func.__name__ == "cmd_image_build"
