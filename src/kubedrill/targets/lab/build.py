"""Build pinned upstream binaries from Go modules and cache them outside any checkout.

A throwaway module requires the upstream module at the pinned version and builds its main
packages; `go install pkg@version` cannot, because etcd's and Kubernetes' go.mod files carry
replace directives. The cache key is the version, so a second `lab up` builds nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kubedrill.errors import MissingBinaryError

Progress = Callable[[str], None]


@dataclass(frozen=True)
class GoBuild:
    """One cached build: `binaries` maps output name -> Go main package."""

    key: str  # e.g. "etcd-v3.6.16": the cache directory's name
    requires: Mapping[str, str]  # module -> version
    binaries: Mapping[str, str]
    ldflags: str = ""
    replaces: Mapping[str, str] = field(default_factory=dict)
    expected_minutes: int = 2
    # Resolves what needs the upstream module itself (e.g. replaces read from its go.mod). It gets
    # the Go environment and runs only when a build is needed, so a cached build stays instant.
    prepare: Callable[[Mapping[str, str]], GoBuild] | None = None
    # Puts module sources into the build directory before anything is resolved (e.g. a copy
    # of etcd's server with failpoints enabled) and returns module -> directory (relative to
    # the build directory) for go.mod's replace directives. Runs only when a build is needed;
    # what it writes goes away with the build directory.
    sources: Callable[[Path, Mapping[str, str], Progress], Mapping[str, str]] | None = None


def etcd_build(version: str) -> GoBuild:
    """etcd, etcdctl and etcdutl at `version` (with failpoints: gofail.failpoint_build)."""
    return GoBuild(
        key=f"etcd-{version}",
        requires={
            "go.etcd.io/etcd/server/v3": version,
            "go.etcd.io/etcd/etcdctl/v3": version,
            "go.etcd.io/etcd/etcdutl/v3": version,
        },
        # etcdutl: etcd 3.6 moved `snapshot status` and `snapshot restore` out of etcdctl.
        binaries={
            "etcd": "go.etcd.io/etcd/server/v3",
            "etcdctl": "go.etcd.io/etcd/etcdctl/v3",
            "etcdutl": "go.etcd.io/etcd/etcdutl/v3",
        },
        ldflags=f"-X go.etcd.io/etcd/api/v3/version.GitSHA=kubedrill-{version}",
        expected_minutes=2,
    )


def cached_dir(cache_dir: Path, build: GoBuild) -> Path:
    return cache_dir / "bin" / build.key


def is_complete(directory: Path, names: Sequence[str]) -> bool:
    return (directory / ".complete").exists() and all(
        os.access(directory / n, os.X_OK) for n in names
    )


def find_binaries(bin_dir: Path, names: Sequence[str]) -> Path:
    """A user-supplied directory must hold every binary, executable."""
    missing = [n for n in names if not os.access(bin_dir / n, os.X_OK)]
    if missing:
        raise MissingBinaryError(
            f"{bin_dir} lacks executable {', '.join(missing)}",
            "put the binaries there, or drop bin_dir/KUBEDRILL_BIN_DIR to let kubedrill build them",
        )
    return bin_dir


def go_environment() -> dict[str, str]:
    """Static binaries, modules resolved from go.mod, and the machine's own Go: never a
    toolchain downloaded because a go.mod asks for a newer one."""
    return {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local"}


def require_go(what: str, hint: str) -> str:
    """Path of `go`, or a MissingBinaryError saying what needed it."""
    go = shutil.which("go")
    if go is None:
        raise MissingBinaryError(
            f"building {what} needs the Go toolchain, which is not on PATH",
            f"install Go (1.24 or newer), {hint}",
        )
    return go


def ensure_built(build: GoBuild, cache_dir: Path, progress: Progress) -> Path:
    target = cached_dir(cache_dir, build)
    if is_complete(target, list(build.binaries)):
        return target
    require_go(build.key, "or point lab.bin_dir / KUBEDRILL_BIN_DIR at prebuilt binaries")
    progress(
        f"building {build.key} from Go modules (first time about "
        f"{build.expected_minutes} min; cached in {target})"
    )
    started = time.monotonic()
    env = go_environment()
    if build.prepare is not None:
        build = build.prepare(env)
    work_root = cache_dir / "work"
    work_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"{build.key}-", dir=work_root) as tmp:
        work = Path(tmp)
        local = build.sources(work, env, progress) if build.sources is not None else {}
        _write_module(work, build, local)
        run_go(work, env, ["go", "get", *[f"{m}@{v}" for m, v in build.requires.items()]], progress)
        out = work / "out"
        out.mkdir()
        for name, package in build.binaries.items():
            progress(f"  compiling {name} ({package})")
            cmd = ["go", "build", "-trimpath", "-v", "-o", str(out / name)]
            if build.ldflags:
                cmd += ["-ldflags", build.ldflags]
            run_go(work, env, [*cmd, package], progress)
        staging = target.with_name(target.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(out, staging)
        (staging / ".complete").write_text(
            json.dumps(
                {
                    "requires": dict(build.requires),
                    "built_seconds": round(time.monotonic() - started, 1),
                }
            )
        )
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    shutil.rmtree(work_root, ignore_errors=True)
    progress(f"built {build.key} in {time.monotonic() - started:.0f} s")
    return target


def _write_module(work: Path, build: GoBuild, local: Mapping[str, str]) -> None:
    lines = ["module kubedrill.local/build", "", "go 1.24", ""]
    for module, target in build.replaces.items():
        lines.append(f"replace {module} => {module} {target}")
    for module, directory in local.items():
        lines.append(f"replace {module} => ./{directory}")
    (work / "go.mod").write_text("\n".join(lines) + "\n")


def go_mod_download(module: str, cwd: Path, env: Mapping[str, str], *, need: str) -> dict[str, str]:
    """`go mod download -json module@version` outside any module: its answer (`Dir`, `GoMod`,
    `Info` paths in the module cache), which must name `need`."""
    proc = subprocess.run(
        ["go", "mod", "download", "-json", module],
        cwd=cwd,
        env={**env, "GOFLAGS": "", "GOWORK": "off"},
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        info: dict[str, str] = json.loads(proc.stdout)
    except ValueError:
        info = {}
    if proc.returncode != 0 or "Error" in info or need not in info:
        reason = info.get("Error") or proc.stderr.strip() or proc.stdout.strip()
        raise MissingBinaryError(
            f"`go mod download {module}` failed: {reason}",
            "check that the Go module proxy is reachable and the pinned version exists",
        )
    return info


def run_go(work: Path, env: Mapping[str, str], cmd: list[str], progress: Progress) -> None:
    """Run go, echoing a line every 25 packages so a long cold build visibly moves."""
    proc = subprocess.Popen(
        cmd, cwd=work, env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    tail: list[str] = []
    for count, line in enumerate(proc.stdout, start=1):
        tail = [*tail[-30:], line.rstrip()]
        if count % 25 == 0:
            progress(f"    ... {count} packages ({line.strip()[:70]})")
    if proc.wait() != 0:
        raise MissingBinaryError(
            f"`{' '.join(cmd[:3])}` failed in {work}:\n" + "\n".join(tail[-15:]),
            "check that the Go module proxy is reachable and the pinned version exists",
        )
