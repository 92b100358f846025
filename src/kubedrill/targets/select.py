"""`--target lab|ssh|kind`: one seam that names the target cluster and opens it.

`target_name` reads only local files (the lab config, the inventory), so the allowlist can be
checked before kubedrill connects anywhere; `open_target` then yields the Cluster for the run
and tidies up what it brought up.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubedrill.cluster import Cluster
from kubedrill.errors import ConfigError, TargetError
from kubedrill.targets.lab import lab
from kubedrill.targets.lab.config import load_lab_config
from kubedrill.targets.ssh.cluster import ssh_cluster
from kubedrill.targets.ssh.inventory import load_inventory
from kubedrill.transport.ssh import POOL

TARGETS = ("lab", "ssh", "kind")
Progress = Callable[[str], None]


@dataclass(frozen=True)
class TargetOptions:
    target: str = "lab"
    lab_config: Path | None = None
    topology: str | None = None
    lab_keep: bool = False
    dry_run: bool = False
    inventory: Path | None = None
    accept_new_host_keys: bool = False
    kind_cluster: str = "kind"
    docker_host: str | None = None

    def validate(self) -> TargetOptions:
        if self.target not in TARGETS:
            raise ConfigError(f"unknown target {self.target!r}", f"use one of {', '.join(TARGETS)}")
        if self.target == "ssh" and self.inventory is None:
            raise ConfigError(
                "--target ssh needs --inventory PATH", "write an inventory (README: SSH targets)"
            )
        if self.target != "ssh" and self.inventory is not None:
            raise ConfigError(f"--inventory is for --target ssh, not {self.target}", "drop it")
        return self


def target_name(options: TargetOptions) -> str:
    """The cluster name the allowlist is checked against (e.g. ssh/prod-eu1, kind/kind)."""
    options.validate()
    if options.target == "ssh":
        assert options.inventory is not None
        return load_inventory(options.inventory).cluster_name
    if options.target == "kind":
        return f"kind/{options.kind_cluster}"
    return f"lab/{load_lab_config(options.lab_config, topology=options.topology).name}"


@contextlib.contextmanager
def open_target(options: TargetOptions, progress: Progress = lambda _m: None) -> Iterator[Cluster]:
    options.validate()
    if options.target == "ssh":
        with _ssh(options, progress) as cluster:
            yield cluster
    elif options.target == "kind":
        with _kind(options) as cluster:
            yield cluster
    else:
        with _lab(options, progress) as cluster:
            yield cluster


@contextlib.contextmanager
def _lab(options: TargetOptions, progress: Progress) -> Iterator[Cluster]:
    """The lab, brought up if it is not running and then taken down again at the end."""
    config = load_lab_config(options.lab_config, topology=options.topology)
    brought_up = lab.supervisor_pid(config.state_dir) is None
    if options.dry_run and brought_up:
        raise TargetError("--dry-run needs a running lab", "bring it up first: kubedrill lab up")
    cluster = lab.up(config, progress=progress)
    try:
        yield cluster
    finally:
        if brought_up and not options.lab_keep:
            lab.down(config, progress=lambda _m: None)


@contextlib.contextmanager
def _ssh(options: TargetOptions, progress: Progress) -> Iterator[Cluster]:
    assert options.inventory is not None
    inventory = load_inventory(options.inventory, accept_new_host_keys=options.accept_new_host_keys)
    try:
        yield ssh_cluster(inventory, progress)
    finally:
        POOL.close_all()


@contextlib.contextmanager
def _kind(options: TargetOptions) -> Iterator[Cluster]:
    """The kind target's module is optional; prefer its context manager (it removes the client
    keys it copied out of the nodes), else its plain constructor."""
    module: Any = None
    for name in ("kubedrill.targets.kind", "kubedrill.targets.kind.cluster"):
        with contextlib.suppress(ImportError):
            candidate = importlib.import_module(name)
            if hasattr(candidate, "kind_target") or hasattr(candidate, "kind_cluster"):
                module = candidate
                break
    if module is None:
        raise TargetError(
            "this kubedrill has no kind target (kubedrill.targets.kind is missing)",
            "install a kubedrill with kind support, or use --target lab or ssh",
        )
    if hasattr(module, "kind_target"):
        with module.kind_target(options.kind_cluster, docker_host=options.docker_host) as found:
            yield found
        return
    yield module.kind_cluster(options.kind_cluster, docker_host=options.docker_host)
