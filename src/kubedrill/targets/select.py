"""`--target lab|ssh|kind`: one `Target` per kind of cluster, found in a plain registry.

A target names the cluster from local files only (the lab config, the inventory), so the
allowlist is checked before kubedrill connects anywhere; `open` then yields the Cluster for the
run and tidies up what it brought up. A fourth target is one more class in `REGISTRY`, with no
change to the plugin or the CLI.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from kubedrill.cluster import Cluster
from kubedrill.errors import ConfigError, TargetError
from kubedrill.targets.lab import lab
from kubedrill.targets.lab.config import load_lab_config
from kubedrill.targets.ssh.cluster import ssh_cluster
from kubedrill.targets.ssh.inventory import load_inventory
from kubedrill.transport.ssh import POOL

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
    # A read-only command (e.g. "kubedrill audit") that needs a running lab: it never brings
    # one up (a dry run neither).
    needs_running_lab: str | None = None

    def validate(self) -> TargetOptions:
        target = target_for(self.target)
        if self.inventory is not None and not target.takes_inventory:
            raise ConfigError(f"--inventory is for --target ssh, not {self.target}", "drop it")
        target.validate(self)
        return self


class Target(Protocol):
    kind: str
    takes_inventory: bool

    def validate(self, options: TargetOptions) -> None:
        """Raise ConfigError for options this target cannot use or lacks."""
        ...

    def cluster_name(self, options: TargetOptions) -> str:
        """e.g. lab/lab, ssh/prod-eu1, kind/drills: what the allowlist is checked against."""
        ...

    def open(
        self, options: TargetOptions, progress: Progress
    ) -> AbstractContextManager[Cluster]: ...


class LabTarget:
    """The lab, brought up if it is not running and taken down again at the end."""

    kind = "lab"
    takes_inventory = False

    def validate(self, options: TargetOptions) -> None:
        pass

    def cluster_name(self, options: TargetOptions) -> str:
        return f"lab/{load_lab_config(options.lab_config, topology=options.topology).name}"

    @contextlib.contextmanager
    def open(self, options: TargetOptions, progress: Progress) -> Iterator[Cluster]:
        config = load_lab_config(options.lab_config, topology=options.topology)
        brought_up = lab.supervisor_pid(config.state_dir) is None
        reader = options.needs_running_lab or ("--dry-run" if options.dry_run else None)
        if reader and brought_up:
            flag = f" --config {options.lab_config}" if options.lab_config else ""
            raise TargetError(
                f"{reader} needs a running lab ({config.name!r} is not up); nothing was done",
                f"bring it up first: kubedrill lab up{flag}",
            )
        cluster = lab.up(config, progress=progress)
        try:
            yield cluster
        finally:
            if brought_up and not options.lab_keep:
                lab.down(config, progress=lambda _m: None)


class SshTarget:
    """Your own nodes over SSH, described by an inventory."""

    kind = "ssh"
    takes_inventory = True

    def validate(self, options: TargetOptions) -> None:
        if options.inventory is None:
            raise ConfigError(
                "--target ssh needs --inventory PATH", "write an inventory (README: SSH targets)"
            )

    def cluster_name(self, options: TargetOptions) -> str:
        assert options.inventory is not None
        return load_inventory(options.inventory).cluster_name

    @contextlib.contextmanager
    def open(self, options: TargetOptions, progress: Progress) -> Iterator[Cluster]:
        assert options.inventory is not None
        inventory = load_inventory(
            options.inventory, accept_new_host_keys=options.accept_new_host_keys
        )
        try:
            yield ssh_cluster(inventory, progress)
        finally:
            POOL.close_all()


class KindTarget:
    """A running kind cluster, through the Docker API of Docker or podman."""

    kind = "kind"
    takes_inventory = False

    def validate(self, options: TargetOptions) -> None:
        pass

    def cluster_name(self, options: TargetOptions) -> str:
        return f"kind/{options.kind_cluster}"

    @contextlib.contextmanager
    def open(self, options: TargetOptions, progress: Progress) -> Iterator[Cluster]:
        # The docker SDK is imported only for this target: the others start faster.
        from kubedrill.targets.kind.cluster import kind_target  # noqa: PLC0415

        with kind_target(options.kind_cluster, docker_host=options.docker_host) as cluster:
            yield cluster


REGISTRY: tuple[Target, ...] = (LabTarget(), SshTarget(), KindTarget())
TARGETS = tuple(t.kind for t in REGISTRY)


def target_for(kind: str) -> Target:
    for target in REGISTRY:
        if target.kind == kind:
            return target
    raise ConfigError(f"unknown target {kind!r}", f"use one of {', '.join(TARGETS)}")


def target_name(options: TargetOptions) -> str:
    """The cluster name the allowlist is checked against (e.g. ssh/prod-eu1, kind/kind)."""
    options.validate()
    return target_for(options.target).cluster_name(options)


@contextlib.contextmanager
def open_target(options: TargetOptions, progress: Progress = lambda _m: None) -> Iterator[Cluster]:
    options.validate()
    with target_for(options.target).open(options, progress) as cluster:
        yield cluster
