"""The node image's base: a Debian root file system made here with debootstrap, cached as a tar.

No container registry is reachable from this machine, so the base cannot be pulled: it is
bootstrapped (`--variant=minbase`) from the Debian mirror this machine's apt already uses, the
node's packages are installed in a chroot with the machine's updates and security sources, and
documentation, man pages and apt lists are dropped. The tar is keyed by the suite, the package
list and RECIPE, so a warm image build never runs debootstrap again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

from kubedrill.targets.kind.image import apt_sources
from kubedrill.targets.kind.image.run import ImageBuildError, Progress, run

# Bump when the steps below change what ends up in the tar.
RECIPE = "1"

CHROOT_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "DEBIAN_FRONTEND": "noninteractive",
    "LANG": "C.UTF-8",
    "HOME": "/root",
}

# dpkg leaves these out of every package installed after debootstrap (copyright files stay).
NODOC = """\
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
"""

# Removed after installing: what debootstrap itself installed before NODOC existed, and caches.
TRIM = (
    "usr/share/man",
    "usr/share/info",
    "usr/share/lintian",
    "var/lib/apt/lists",
    "var/cache/apt",
    "var/cache/debconf/config.dat-old",
    "var/cache/debconf/templates.dat-old",
    "var/lib/dpkg/status-old",
    "var/log",
)


def rootfs_key(suite: str, packages: Sequence[str]) -> str:
    """Cache key of the tar: suite, sorted package list and the recipe version."""
    blob = json.dumps({"suite": suite, "packages": sorted(set(packages)), "recipe": RECIPE})
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def rootfs_tar(cache_dir: Path, suite: str, packages: Sequence[str]) -> Path:
    return cache_dir / "kind" / f"rootfs-{suite}-{rootfs_key(suite, packages)}.tar"


def ensure_rootfs(cache_dir: Path, suite: str, packages: Sequence[str], progress: Progress) -> Path:
    """The cached tar of the root file system, made first if missing."""
    tar = rootfs_tar(cache_dir, suite, packages)
    if tar.is_file():
        return tar
    for tool in ("debootstrap", "chroot", "tar"):
        if shutil.which(tool) is None:
            raise ImageBuildError(
                f"building the kind node image's root file system needs {tool}",
                "apt-get install debootstrap (as root)",
            )
    if os.geteuid() != 0:
        raise ImageBuildError("debootstrap needs root", "run `kubedrill kind image build` as root")
    sources = apt_sources.machine_sources()
    mirror = apt_sources.mirror_for(suite, sources)
    work = cache_dir / "kind" / "work" / tar.stem
    remove_tree(work)
    work.mkdir(parents=True)
    started = time.monotonic()
    try:
        progress(
            f"  debootstrap --variant=minbase {suite} (mirror from this machine's apt sources)"
        )
        run(
            ["debootstrap", "--variant=minbase", suite, str(work), mirror],
            nice=True,
            hint="check that this machine's Debian mirror is reachable (apt-get update)",
        )
        elapsed = time.monotonic() - started
        progress(f"  debootstrap done in {elapsed:.0f} s; installing {len(packages)} packages")
        _install(work, suite, sources, packages)
        _trim(work)
        progress("  packing the root file system")
        partial = tar.with_suffix(".tar.partial")
        run(["tar", "--numeric-owner", "--xattrs", "--sort=name", "-C", str(work), "-cf",
             str(partial), "."], nice=True)  # fmt: skip
        partial.rename(tar)
    finally:
        remove_tree(work)
    progress(f"  root file system ready in {time.monotonic() - started:.0f} s: {tar}")
    return tar


def _install(
    root: Path,
    suite: str,
    sources: Sequence[apt_sources.AptSource],
    packages: Sequence[str],
) -> None:
    etc = root / "etc"
    (etc / "apt" / "sources.list").write_text(apt_sources.chroot_sources_list(suite, sources))
    for extra in (etc / "apt" / "sources.list.d").glob("*"):
        extra.unlink()
    (etc / "dpkg" / "dpkg.cfg.d" / "01-kubedrill-nodoc").write_text(NODOC)
    # No service may start inside the chroot (containerd, ssh, dbus): policy-rc.d says no.
    policy = root / "usr" / "sbin" / "policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    resolv = etc / "resolv.conf"
    resolv.unlink(missing_ok=True)
    shutil.copyfile("/etc/resolv.conf", resolv)
    proc = root / "proc"
    run(["mount", "-t", "proc", "proc", str(proc)])
    try:
        chroot = ["chroot", str(root)]
        run([*chroot, "apt-get", "update", "-qq"], env=CHROOT_ENV, nice=True)
        run([*chroot, "apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
            env=CHROOT_ENV, nice=True)  # fmt: skip
        run([*chroot, "apt-get", "clean"], env=CHROOT_ENV)
        # openssh-server is there for whoever wants it, but a node must not run sshd with host
        # keys baked into an image every node shares: disabled, keys removed, made on start.
        if (etc / "ssh").is_dir():
            run([*chroot, "systemctl", "disable", "ssh.service", "ssh.socket"], env=CHROOT_ENV,
                check=False)  # fmt: skip
            for key in (etc / "ssh").glob("ssh_host_*"):
                key.unlink()
    finally:
        run(["umount", "-l", str(proc)], check=False)
    policy.unlink()
    resolv.unlink()
    resolv.write_text("")
    # Each node gets its own machine id on first boot (the entrypoint).
    (etc / "machine-id").write_text("")
    (root / "var" / "lib" / "dbus" / "machine-id").unlink(missing_ok=True)


def _trim(root: Path) -> None:
    for rel in TRIM:
        path = root / rel
        if path.is_dir() and not path.is_symlink():
            for child in path.iterdir():
                _delete(child)
        elif path.exists() or path.is_symlink():
            path.unlink()
    docs = root / "usr" / "share" / "doc"
    for package in docs.iterdir() if docs.is_dir() else ():
        if package.is_dir() and not package.is_symlink():
            for item in package.iterdir():
                if item.name != "copyright":
                    _delete(item)
    locale = root / "usr" / "share" / "locale"
    for item in locale.iterdir() if locale.is_dir() else ():
        if item.name != "locale.alias":
            _delete(item)


def _delete(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def remove_tree(path: Path) -> None:
    """rm -rf that first unmounts anything left mounted below `path` by a crashed run, and never
    crosses into another file system."""
    if not path.exists():
        return
    resolved = str(path.resolve())
    mounts = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4]
        if point == resolved or point.startswith(resolved + "/"):
            mounts.append(point)
    for point in sorted(mounts, key=len, reverse=True):
        run(["umount", "-l", point], check=False)
    run(["rm", "-rf", "--one-file-system", str(path)])
