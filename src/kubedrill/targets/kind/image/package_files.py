"""Some Debian packages' files, with their dependencies, copied out of the cached root file system.

kube-proxy's image runs iptables, which is a dynamically linked program with plug-in modules;
the upstream image ships a Debian-based iptables for that reason. Here the same files come from
the node's own bookworm root file system (already cached, so nothing is downloaded): the
dependency closure is read from dpkg's status file, the file list from dpkg's `.list` files, and
the paths are mapped through the merged-/usr symlinks (/lib -> usr/lib) to where they are.
"""

from __future__ import annotations

import re
import tarfile
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath

STATUS = "var/lib/dpkg/status"
INFO = "var/lib/dpkg/info"
# The symlinks update-alternatives made for these programs (not in any package's file list).
ALTERNATIVES = re.compile(
    r"^(usr/sbin|etc/alternatives)/(ip6?tables|ip6?tables-(save|restore)|arptables|ebtables)"
    r"(-(save|restore))?$"
)


def parse_status(text: str) -> dict[str, list[list[str]]]:
    """Installed package -> its Pre-Depends and Depends, each a list of alternatives."""
    out: dict[str, list[list[str]]] = {}
    for stanza in text.split("\n\n"):
        fields: dict[str, str] = {}
        key = ""
        for line in stanza.splitlines():
            if line[:1] in (" ", "\t") and key:
                fields[key] += " " + line.strip()
                continue
            name, sep, value = line.partition(":")
            if sep:
                key = name.strip()
                fields[key] = value.strip()
        package = fields.get("Package")
        if not package or not fields.get("Status", "").endswith(" installed"):
            continue
        depends = ", ".join(v for v in (fields.get("Pre-Depends"), fields.get("Depends")) if v)
        groups = [group for group in depends.split(",") if group.strip()]
        out[package] = [[_bare(alt) for alt in group.split("|")] for group in groups]
    return out


def _bare(dependency: str) -> str:
    """'libc6 (>= 2.34)' -> 'libc6'; 'python3:any' -> 'python3'."""
    return dependency.strip().split(" ", 1)[0].split("(", 1)[0].split(":", 1)[0]


def closure(roots: Iterable[str], installed: Mapping[str, list[list[str]]]) -> list[str]:
    """Every installed package `roots` need, first installed alternative of each group."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        package = todo.pop()
        if package in seen:
            continue
        if package not in installed:
            raise KeyError(f"package {package!r} is not installed in the root file system")
        seen.add(package)
        for group in installed[package]:
            chosen = next((alt for alt in group if alt in installed), None)
            if chosen is not None and chosen not in seen:
                todo.append(chosen)
    return sorted(seen)


def canonical(path: str, top_links: Mapping[str, str]) -> str:
    """A dpkg path ('/lib/x86_64-linux-gnu/libc.so.6') as it is in the tar
    ('usr/lib/x86_64-linux-gnu/libc.so.6'), through the top-level directory symlinks."""
    rel = path.lstrip("/")
    first, _, rest = rel.partition("/")
    if first in top_links and rest:
        return f"{top_links[first]}/{rest}"
    return rel


def extract(tar_path: Path, packages: Iterable[str], destination: Path) -> list[str]:
    """Write the files and symlinks of `packages` and their dependencies under `destination`,
    plus the top-level merged-/usr symlinks and the alternatives links. Returns the packages."""
    with tarfile.open(tar_path) as tar:
        members = {m.name.removeprefix("./"): m for m in tar.getmembers()}
        installed = parse_status(_read(tar, members, STATUS))
        needed = closure(packages, installed)
        top_links = {
            name: str(PurePosixPath(m.linkname))
            for name, m in members.items()
            if "/" not in name and m.issym()
        }
        wanted: set[str] = set(top_links)
        for package in needed:
            listing = members.get(f"{INFO}/{package}.list") or members.get(
                f"{INFO}/{package}:amd64.list"
            )
            if listing is None:
                continue
            for line in _read(tar, members, listing.name.removeprefix("./")).splitlines():
                rel = canonical(line.strip(), top_links)
                member = members.get(rel)
                if member is not None and (member.isfile() or member.issym()):
                    wanted.add(rel)
        wanted |= {name for name in members if ALTERNATIVES.match(name)}
        chosen = [members[name] for name in sorted(wanted)]
        destination.mkdir(parents=True, exist_ok=True)
        tar.extractall(destination, members=chosen, filter="fully_trusted")
    return needed


def _read(tar: tarfile.TarFile, members: Mapping[str, tarfile.TarInfo], name: str) -> str:
    handle = tar.extractfile(members[name])
    if handle is None:
        raise KeyError(f"{name} is not a regular file in the root file system")
    return handle.read().decode()
