"""A slow disk for one process: its writes throttled to a few IOPS (cgroup v1 blkio).

The member's process is moved into a blkio cgroup of its own whose
`blkio.throttle.write_iops_device` limits the writes it submits to the disk holding its data.
What etcd's WAL does on every save, `fdatasync`, writes the dirty pages back from the calling
thread, so it is throttled: at 2 IOPS an fdatasync takes 0.5-2 s, and etcd's own
`etcd_disk_wal_fsync_duration_seconds` sees it (unlike a gofail `sleep`, which sits outside the
timed call). Only that process is slowed; the disk and every other process are not.

Lab target only (the processes run beside the runner, under its kernel's cgroups). The undo
moves whatever is still in the cgroup back where the member was and removes the cgroup; a member
that was restarted meanwhile runs in its supervisor's cgroup already.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from kubedrill.errors import ConfigError, FaultError
from kubedrill.faults.base import FaultPlan
from kubedrill.faults.shape import Selector
from kubedrill.faults.victims import NEEDS_LEADER, resolve_victims
from kubedrill.transport.step import Step

if TYPE_CHECKING:
    from kubedrill.cluster import Cluster

BLKIO = Path("/sys/fs/cgroup/blkio")
THROTTLE_FILE = "blkio.throttle.write_iops_device"


def whole_disk(major: int, minor: int, sys_root: Path = Path("/sys")) -> tuple[int, int]:
    """The disk a (major, minor) device belongs to: a partition's parent (blkio throttles
    whole disks only); the device itself when it is a disk."""
    block = sys_root / "dev" / "block" / f"{major}:{minor}"
    if not (block / "partition").exists():
        return major, minor
    parent = block.resolve().parent / "dev"
    text = parent.read_text().strip()
    high, _, low = text.partition(":")
    return int(high), int(low)


def cgroup_of(pid: int, proc_root: Path = Path("/proc")) -> str:
    """The process's blkio cgroup path (cgroup v1), '/' when it is in the root."""
    for line in (proc_root / str(pid) / "cgroup").read_text().splitlines():
        _id, controllers, path = line.split(":", 2)
        if "blkio" in controllers.split(","):
            return path or "/"
    return "/"


def cgroup_name(lab: str, node: str, component: str) -> str:
    return f"kubedrill-{lab}-{node}-{component}"


def remove_lab_cgroups(lab: str, blkio: Path = BLKIO) -> list[str]:
    """Remove the throttle cgroups of lab `lab` (for `lab down`, once its processes are gone
    and the cgroups empty: an unhealed slow-disk fault leaves nothing behind either)."""
    removed = []
    for cgroup in sorted(blkio.glob(f"kubedrill-{lab}-*")) if blkio.is_dir() else []:
        try:
            cgroup.rmdir()
        except OSError:
            continue  # still has a process: `kubedrill heal` moves it out first
        removed.append(f"cgroup {cgroup}")
    return removed


def throttle_script(cgroup: Path, device: tuple[int, int], iops: int, pid: int) -> str:
    cg = shlex.quote(str(cgroup))
    return (
        f"mkdir -p {cg} && echo '{device[0]}:{device[1]} {iops}' > {cg}/{THROTTLE_FILE} "
        f"&& echo {pid} > {cg}/cgroup.procs"
    )


def unthrottle_script(cgroup: Path, back_to: Path) -> str:
    """Move every process left in `cgroup` to `back_to`, remove `cgroup`, check it is gone.
    Idempotent: nothing to do when the cgroup does not exist."""
    cg, home = shlex.quote(str(cgroup)), shlex.quote(str(back_to))
    return (
        f'if [ -d {cg} ]; then for p in $(cat {cg}/cgroup.procs); do echo "$p" > '
        f"{home}/cgroup.procs 2>/dev/null || true; done; rmdir {cg}; fi; test ! -d {cg}"
    )


@dataclass(frozen=True)
class ThrottleDiskWrites:
    """Throttle `component`'s disk writes to `write_iops` on the chosen node(s) until heal."""

    component: str = "etcd"
    victims: Selector = field(default_factory=Selector.leader)
    write_iops: int = 2
    blkio: Path = BLKIO

    def __post_init__(self) -> None:
        if not 1 <= self.write_iops <= 100000:
            raise ConfigError(
                f"write_iops {self.write_iops} is out of range", "use 1-100000 writes per second"
            )

    @property
    def name(self) -> str:
        return f"throttle {self.component} disk writes"

    def available(self, cluster: Cluster) -> str | None:
        from kubedrill.targets.lab.control import LabControl  # noqa: PLC0415 - lab-only fault

        if not isinstance(cluster.control, LabControl):
            return f"the {cluster.target} target's processes are not under the runner's cgroups"
        if not (self.blkio / THROTTLE_FILE).exists():
            return f"no cgroup v1 blkio throttling on this kernel ({self.blkio / THROTTLE_FILE})"
        if self.victims.kind in NEEDS_LEADER and self.component not in cluster.leader_locators:
            return f"{cluster.target} target cannot tell which {self.component} leads"
        return None

    def plan(self, cluster: Cluster) -> FaultPlan:
        from kubedrill.targets.lab.control import LabControl  # noqa: PLC0415 - lab-only fault

        control = cluster.control
        assert isinstance(control, LabControl)
        victims = resolve_victims(cluster, self.component, self.victims)
        st = control.state_dir.stat()
        device = whole_disk(os.major(st.st_dev), os.minor(st.st_dev))
        inject: list[Step] = []
        undo: list[Step] = []
        for name in victims.names:
            pid = control.pid(cluster.node(name), self.component)
            if pid is None or not Path(f"/proc/{pid}").exists():
                raise FaultError(
                    f"{self.component} is not running on {name}",
                    "wait for it to come back (kubedrill lab status) before this fault",
                )
            cgroup = self.blkio / cgroup_name(control.state_dir.name, name, self.component)
            home = self.blkio / cgroup_of(pid).lstrip("/")
            inject.append(
                Step(
                    cluster.observer,
                    ("sh", "-c", throttle_script(cgroup, device, self.write_iops, pid)),
                )
            )
            undo.append(Step(cluster.observer, ("sh", "-c", unthrottle_script(cgroup, home))))
        role = "leader " if victims.include_leader else ""
        return FaultPlan(
            name=self.name,
            victims=victims.names,
            description=f"throttle disk writes of {role}{self.component} on "
            f"{', '.join(victims.names)} to {self.write_iops} IOPS "
            f"(device {device[0]}:{device[1]})",
            inject=tuple(inject),
            undo=tuple(undo),
            claims=frozenset(f"blkio of {self.component} on {n}" for n in victims.names),
            data={
                "component": self.component,
                "write_iops": str(self.write_iops),
                "leader_before": victims.leader or "",
            },
        )
