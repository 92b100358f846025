"""The pure part of kube_build: staging replaces out of k8s.io/kubernetes' go.mod, and ldflags."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubedrill.targets.lab.kube_build import (
    kubernetes_build,
    kubernetes_ldflags,
    kwok_build,
    parse_staging_replaces,
    published_version,
)

# Trimmed from k8s.io/kubernetes v1.34.4's go.mod, plus the shapes the parser must also accept.
GOMOD = """\
module k8s.io/kubernetes

go 1.24.0

godebug default=go1.24

require (
\tgithub.com/blang/semver/v4 v4.0.0
\tk8s.io/api v0.0.0
\tk8s.io/client-go v0.0.0 // the replace below wins
)

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/client-go => ./staging/src/k8s.io/client-go // comment
\tk8s.io/kubelet v0.0.0 => ./staging/src/k8s.io/kubelet

\t// k8s.io/commented => ./staging/src/k8s.io/commented
\tgithub.com/example/fork => github.com/someone/fork v1.2.3
)

replace k8s.io/kms => ./staging/src/k8s.io/kms
replace "k8s.io/quoted" => "./staging/src/k8s.io/quoted"
replace example.com/local => ../elsewhere
"""


def test_staging_replaces_map_every_staging_module_to_the_published_release() -> None:
    assert parse_staging_replaces(GOMOD, "v0.34.4") == {
        "k8s.io/api": "v0.34.4",
        "k8s.io/client-go": "v0.34.4",
        "k8s.io/kubelet": "v0.34.4",
        "k8s.io/kms": "v0.34.4",
        "k8s.io/quoted": "v0.34.4",
    }


def test_requires_and_other_replaces_are_ignored() -> None:
    assert parse_staging_replaces("module x\n\nrequire k8s.io/api v0.0.0\n", "v0.34.4") == {}
    text = "replace (\n\tgithub.com/a/b => github.com/c/b v1.0.0\n)\nreplace x => ../x\n"
    assert parse_staging_replaces(text, "v0.34.4") == {}


def test_published_version() -> None:
    assert published_version("v1.34.4") == "v0.34.4"
    assert published_version("v1.35.0-rc.1") == "v0.35.0-rc.1"
    for bad in ("1.34.4", "v2.0.0", "v1.34", "latest"):
        with pytest.raises(ValueError, match="Kubernetes"):
            published_version(bad)


def test_ldflags_set_the_version_in_both_version_packages() -> None:
    flags = kubernetes_ldflags("v1.34.4", "2026-02-10T19:32:20Z").split()
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        for value in (
            "gitVersion=v1.34.4",
            "gitMajor=1",
            "gitMinor=34",
            "gitTreeState=clean",
            "buildDate=2026-02-10T19:32:20Z",
        ):
            assert f"{package}.{value}" in flags
    assert not any("buildDate" in f for f in kubernetes_ldflags("v1.34.4").split())


def test_builds_are_keyed_by_version_and_resolve_replaces_lazily(tmp_path: Path) -> None:
    build = kubernetes_build("v1.34.4", tmp_path, lambda _: None)
    assert build.key == "kubernetes-v1.34.4"
    assert set(build.binaries) == {
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kubectl",
    }
    assert build.binaries["kubectl"] == "k8s.io/kubernetes/cmd/kubectl"
    assert build.replaces == {}
    assert build.prepare is not None
    kwok = kwok_build("v0.8.0")
    assert kwok.binaries == {"kwok": "sigs.k8s.io/kwok/cmd/kwok"}
    assert "sigs.k8s.io/kwok/pkg/consts.Version=v0.8.0" in kwok.ldflags
