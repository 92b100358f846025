"""The node image's tag: the Kubernetes version plus a hash of everything the image is made of.

An image is rebuilt only when an input changes: the pinned versions, the suite and package list,
the build recipe, and every file of the package data (content and executable bit). The tag is
computed without building anything, so a warm `node_image()` is one `podman image exists`.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

REPOSITORY = "localhost/kubedrill/node"


def data_files(root: Path) -> list[tuple[str, bool, bytes]]:
    """(relative path, executable?, content) of every file under `root`, sorted by path;
    editor and Python caches are not inputs."""
    out: list[tuple[str, bool, bytes]] = []
    for path in sorted(root.rglob("*")):
        if not path.is_file() or "__pycache__" in path.parts or path.name.endswith((".pyc", "~")):
            continue
        out.append((path.relative_to(root).as_posix(), os.access(path, os.X_OK), path.read_bytes()))
    return out


def inputs_hash(
    versions: Mapping[str, str],
    suite: str,
    packages: Iterable[str],
    files: Iterable[tuple[str, bool, bytes]],
    recipe: str,
) -> str:
    """A short, stable hash of the image's inputs (order of `packages` does not matter)."""
    digest = hashlib.sha256()
    head = {
        "versions": dict(sorted(versions.items())),
        "suite": suite,
        "packages": sorted(set(packages)),
        "recipe": recipe,
    }
    digest.update(json.dumps(head, sort_keys=True).encode())
    for rel, executable, content in files:
        digest.update(b"\0file\0" + rel.encode() + (b"\0x\0" if executable else b"\0-\0"))
        digest.update(hashlib.sha256(content).digest())
    return digest.hexdigest()[:12]


def image_tag(kubernetes_version: str, digest: str) -> str:
    return f"{REPOSITORY}:{kubernetes_version}-{digest}"
