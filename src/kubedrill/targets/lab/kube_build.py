"""Kubernetes control-plane binaries and kwok, built from Go modules like etcd (see build.py).

k8s.io/kubernetes is not meant to be a dependency: its go.mod requires the staging modules
(k8s.io/api, k8s.io/client-go, ...) at v0.0.0 and replaces them with ./staging/src/k8s.io/<name>,
and a dependency's replace directives are ignored. The throwaway module therefore replaces each of
them with its published release: v1.34.4 -> v0.34.4. The list comes from the downloaded go.mod of
the pinned release, so a release that adds or drops a staging module needs no code change.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path

from kubedrill.errors import MissingBinaryError
from kubedrill.targets.lab import versions
from kubedrill.targets.lab.build import GoBuild, Progress, go_mod_download

KUBERNETES_VERSION = versions.DEFAULT.kubernetes
# v0.8.0 (the newest release) is built against k8s.io/client-go v0.36 and lists 1.27-1.36 in
# its supported_releases.txt; it drives 1.37 apiservers too (client-go's skew of one minor).
KWOK_VERSION = "v0.8.0"

KUBERNETES_MODULE = "k8s.io/kubernetes"
KUBERNETES_BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
# Both hold gitVersion, gitMajor, gitMinor, gitCommit, gitTreeState and buildDate; the release
# build (hack/lib/version.sh, kube::version::ldflags) sets the same keys in both.
VERSION_PACKAGES = ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
STAGING_PREFIX = "./staging/"

KWOK_MODULE = "sigs.k8s.io/kwok"

_RELEASE = re.compile(r"^v1\.(?P<minor>\d+)\.(?P<patch>\d+)(?P<pre>-[0-9A-Za-z.-]+)?$")


def published_version(version: str) -> str:
    """The staging modules' release for a Kubernetes release: v1.34.4 -> v0.34.4."""
    match = _RELEASE.match(version)
    if match is None:
        raise ValueError(f"not a Kubernetes v1.x.y release: {version!r}")
    return f"v0.{match['minor']}.{match['patch']}{match['pre'] or ''}"


def parse_staging_replaces(
    gomod: str, published: str, prefix: str = STAGING_PREFIX
) -> dict[str, str]:
    """Module -> `published` for every replace directive of `gomod` that points under `prefix`.

    Handles the one-line form (`replace a => ./staging/src/a`) and the block form, an optional
    version on the left (`a v0.0.0 => ...`), quoted paths and // comments.
    """
    out: dict[str, str] = {}
    in_block = False
    for raw in gomod.splitlines():
        line = raw.split("//", 1)[0].strip()
        if not line:
            continue
        if in_block:
            if line == ")":
                in_block = False
                continue
            spec = line
        elif line.startswith("replace"):
            spec = line[len("replace") :].strip()
            if spec == "(":
                in_block = True
                continue
            if not spec or spec == line:  # "replacefoo", not a directive
                continue
        else:
            continue
        left, arrow, right = spec.partition("=>")
        if not arrow:
            continue
        old = left.split()
        new = right.split()
        if not old or not new:
            continue
        target = new[0].strip('"')
        if target.startswith(prefix):
            out[old[0].strip('"')] = published
    return out


def kubernetes_ldflags(version: str, build_date: str | None = None) -> str:
    """-X flags that make `--version` and /version report the release (as the release build does).

    gitCommit is left empty: the module proxy does not say which commit a tag is.
    """
    match = _RELEASE.match(version)
    if match is None:
        raise ValueError(f"not a Kubernetes v1.x.y release: {version!r}")
    values = {
        "gitVersion": version,
        "gitMajor": "1",
        "gitMinor": match["minor"],
        "gitCommit": "",
        "gitTreeState": "clean",
    }
    if build_date:
        values["buildDate"] = build_date
    return " ".join(
        f"-X {package}.{key}={value}"
        for key, value in values.items()
        for package in VERSION_PACKAGES
    )


def kubernetes_build(version: str, cache_dir: Path, progress: Progress) -> GoBuild:
    """kube-apiserver, kube-controller-manager, kube-scheduler and kubectl at `version`.

    The staging replaces and the build date are read from the release's go.mod and .info files,
    which `prepare` downloads only when the binaries are not cached yet.
    """
    published = published_version(version)

    def prepare(env: Mapping[str, str]) -> GoBuild:
        progress(f"  reading {KUBERNETES_MODULE}@{version}'s go.mod for its staging modules")
        info = _download(f"{KUBERNETES_MODULE}@{version}", cache_dir, env)
        replaces = parse_staging_replaces(Path(info["GoMod"]).read_text(), published)
        if not replaces:
            raise MissingBinaryError(
                f"{KUBERNETES_MODULE}@{version}'s go.mod replaces nothing under {STAGING_PREFIX}",
                "this release is laid out differently; pin another kubernetes version",
            )
        progress(f"  {len(replaces)} staging modules -> {published}")
        release_time = json.loads(Path(info["Info"]).read_text()).get("Time")
        return dataclasses.replace(
            build,
            replaces=replaces,
            ldflags=kubernetes_ldflags(version, release_time),
            prepare=None,
        )

    build = GoBuild(
        key=f"kubernetes-{version}",
        requires={KUBERNETES_MODULE: version},
        binaries={name: f"{KUBERNETES_MODULE}/cmd/{name}" for name in KUBERNETES_BINARIES},
        ldflags=kubernetes_ldflags(version),
        expected_minutes=25,
        prepare=prepare,
    )
    return build


def kwok_build(version: str) -> GoBuild:
    """kwok (fake nodes and pods for the control plane); its go.mod has no replace directives."""
    consts = f"{KWOK_MODULE}/pkg/consts"
    return GoBuild(
        key=f"kwok-{version}",
        requires={KWOK_MODULE: version},
        binaries={"kwok": f"{KWOK_MODULE}/cmd/kwok"},
        ldflags=f"-X {consts}.Version={version} -X {consts}.PreRelease=GA",
        expected_minutes=8,
    )


def _download(module: str, cache_dir: Path, env: Mapping[str, str]) -> dict[str, str]:
    """`go mod download -json module@version` (outside any module): paths of its go.mod, .info."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    return go_mod_download(module, cache_dir, env, need="GoMod")


# kwok does nothing without Stage definitions; its release ships them in the module. These
# bring Nodes up and keep their leases fresh, and take pods through ready/complete/delete.
KWOK_STAGE_DIRS = ("node/fast", "node/heartbeat-with-lease", "pod/fast")


def kwok_stages(version: str, cache_dir: Path) -> list[Path]:
    """The pinned kwok release's own stage files, copied once next to the cached binary."""
    target = cache_dir / "bin" / f"kwok-{version}" / "stages"
    if not (target / ".complete").exists():
        info = _download(f"{KWOK_MODULE}@{version}", cache_dir, dict(os.environ))
        source = Path(info["Dir"]) / "kustomize" / "stage"
        target.mkdir(parents=True, exist_ok=True)
        for sub in KWOK_STAGE_DIRS:
            for stage in sorted((source / sub).glob("*.yaml")):
                if stage.name != "kustomization.yaml":
                    shutil.copyfile(stage, target / f"{sub.replace('/', '-')}-{stage.name}")
        (target / ".complete").write_text(version)
    return sorted(target.glob("*.yaml"))
