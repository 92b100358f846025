"""etcd with gofail failpoints compiled in: the sources step of `build.etcd_build(failpoints=True)`.

etcd marks its crash and stall points with `// gofail: var <name> struct{}` comments, which
are no-ops until `gofail enable` rewrites them into calls of go.etcd.io/gofail/runtime (what
etcd's own build does when FAILPOINTS is set, for its robustness tests). The module cache is
read-only, so the server module at the pinned version is copied into the build directory,
enabled there, and the build's go.mod replaces the module with that copy. etcdctl and etcdutl
are built against the same copy (their failpoints stay inert: nothing arms them).

At run time a member arms and disarms failpoints over HTTP when started with
`GOFAIL_HTTP=<address>:<port>` (`PUT /<name>` with a term such as `sleep(1000)`, `panic`,
`off`); the lab sets it to the member's own address (lab.etcd.failpoints).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from kubedrill.errors import MissingBinaryError
from kubedrill.targets.lab.build import GoBuild, Progress, etcd_build, go_mod_download, run_go

MODULE = "go.etcd.io/gofail"
VERSION = "v0.2.0"  # the gofail etcd 3.6 builds its failpoint binaries with (tools/mod)
SERVER_MODULE = "go.etcd.io/etcd/server/v3"
KEY_SUFFIX = "-failpoints"
MARK = "// gofail:"
# What enable rewrites; a label (`// gofail: labelX:`) is kept as a comment by design.
DECLARATION = "// gofail: var "
SERVER_COPY = "etcd-server"


def failpoint_build(version: str) -> GoBuild:
    """etcd, etcdctl and etcdutl at `version` built from a copy of etcd's server module whose
    failpoints are enabled, cached under a key of its own (etcd-<version>-failpoints): the
    normal build stays what every other lab runs."""
    normal = etcd_build(version)
    return replace(
        normal,
        key=f"{normal.key}{KEY_SUFFIX}",
        requires={**normal.requires, MODULE: VERSION},
        ldflags=f"-X go.etcd.io/etcd/api/v3/version.GitSHA=kubedrill-{version}{KEY_SUFFIX}",
        expected_minutes=2,
        sources=lambda work, env, progress: enable_sources(
            work, env, progress, server_version=version
        ),
    )


def etcd_build_for(version: str, *, failpoints: bool) -> GoBuild:
    return failpoint_build(version) if failpoints else etcd_build(version)


def failpoint_dirs(root: Path, mark: str = MARK) -> list[str]:
    """Package directories under `root` (relative, sorted) whose non-test Go files carry a
    gofail comment (`mark`): what `gofail enable` is given."""
    found = {
        path.parent.relative_to(root).as_posix()
        for path in root.rglob("*.go")
        if not path.name.endswith("_test.go") and mark in path.read_text(errors="replace")
    }
    return sorted(found)


def writable_copy(source: Path, target: Path) -> None:
    """Copy a module out of the (read-only) module cache so that it can be rewritten."""
    shutil.copytree(source, target, copy_function=shutil.copyfile)
    for directory, _subdirs, _files in os.walk(target):
        Path(directory).chmod(0o755)


def download_dir(module: str, work: Path, env: Mapping[str, str]) -> Path:
    """`go mod download -json module@version`: the module's directory in the module cache."""
    return Path(go_mod_download(module, work, env, need="Dir")["Dir"])


def enable_sources(
    work: Path, env: Mapping[str, str], progress: Progress, *, server_version: str
) -> dict[str, str]:
    """Copy etcd's server module into `work`, enable its failpoints, and return the replace
    directive's target (module -> directory relative to `work`)."""
    source = download_dir(f"{SERVER_MODULE}@{server_version}", work, env)
    copy = work / SERVER_COPY
    writable_copy(source, copy)
    tool_env = {**env, "GOFLAGS": "", "GOWORK": "off", "GOBIN": str(work / "bin")}
    progress(f"  installing gofail {VERSION}")
    run_go(work, tool_env, ["go", "install", f"{MODULE}@{VERSION}"], progress)
    dirs = failpoint_dirs(copy)
    if not dirs:
        raise MissingBinaryError(
            f"{SERVER_MODULE}@{server_version} has no `{MARK}` comments",
            "this etcd release has no failpoints to enable; pin another version",
        )
    progress(f"  gofail enable: {len(dirs)} packages of {SERVER_MODULE}@{server_version}")
    run_go(copy, tool_env, [str(work / "bin" / "gofail"), "enable", *dirs], progress)
    run_go(copy, tool_env, ["go", "mod", "edit", f"-require={MODULE}@{VERSION}"], progress)
    left = failpoint_dirs(copy, DECLARATION)
    if left:
        raise MissingBinaryError(
            f"gofail enable left `{DECLARATION}...` comments in {', '.join(left)}",
            f"gofail {VERSION} may not match this etcd release; pin the gofail etcd uses",
        )
    return {SERVER_MODULE: SERVER_COPY}
