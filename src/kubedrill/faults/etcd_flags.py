"""Restart every etcd member of the lab with other time flags (--heartbeat-interval,
--election-timeout): the lab's equivalent of an operator editing each member's manifest.

A "fault" only in form: it changes the cluster and must be undone, so it goes through the
runner (undo record first, undone on every way out, `kubedrill heal` after SIGKILL). Inject
writes each member's flag override (`targets/lab/overrides.py`) and ends each member with
SIGTERM; the supervisor starts it again with the override, as kubelet would after a manifest
edit. Undo removes the overrides it finds and restarts those members the same way, then checks
none is left. All members restart together: the drill waits for its steady state after.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kubedrill.errors import FaultError
from kubedrill.faults.base import FaultPlan
from kubedrill.targets.lab import layout
from kubedrill.targets.lab.control import LOCAL, LabControl
from kubedrill.targets.lab.overrides import override_path
from kubedrill.transport.step import Step

if TYPE_CHECKING:
    from kubedrill.cluster import Cluster


def restart_script(pid_file: str) -> str:
    """SIGTERM the member the pid file names, if it is an etcd (the pid may be stale)."""
    return (
        f"p=$(cat {pid_file} 2>/dev/null) && grep -qs etcd /proc/$p/cmdline && kill -TERM $p; true"
    )


@dataclass(frozen=True)
class EtcdTimeFlags:
    heartbeat_ms: int
    election_ms: int

    @property
    def name(self) -> str:
        return f"etcd flags {self.heartbeat_ms}/{self.election_ms} ms"

    def available(self, cluster: Cluster) -> str | None:
        if not isinstance(cluster.control, LabControl):
            return "restarting etcd with other flags is done on the lab only"
        return None

    def plan(self, cluster: Cluster) -> FaultPlan:
        if not isinstance(cluster.control, LabControl):
            raise FaultError("etcd flag overrides need the lab")
        if self.heartbeat_ms <= 0 or self.election_ms < 5 * self.heartbeat_ms:
            raise FaultError(
                f"--election-timeout {self.election_ms} must be at least 5x "
                f"--heartbeat-interval {self.heartbeat_ms}",
                "etcd refuses smaller ratios",
            )
        state = cluster.control.state_dir
        flags = {
            "--heartbeat-interval": str(self.heartbeat_ms),
            "--election-timeout": str(self.election_ms),
        }
        inject: list[Step] = []
        undo_script: list[str] = []
        members = [n.name for n in cluster.with_role("etcd")]
        paths: list[str] = []
        for member in members:
            key = layout.component_key(member, "etcd")
            path = str(override_path(state, key))
            paths.append(path)
            pid_file = str(layout.pid_file(state, member, "etcd"))
            if (override_path(state, key)).exists():
                raise FaultError(
                    f"{member}'s etcd already has a flag override ({path})",
                    "finish or heal what set it (kubedrill heal) first",
                )
            body = json.dumps({"flags": flags})
            write = (
                f"mkdir -p {shlex.quote(str(override_path(state, key).parent))} && "
                f"printf '%s' {shlex.quote(body)} > {path}.tmp && mv {path}.tmp {path} && "
                + restart_script(pid_file)
            )
            inject.append(Step(LOCAL, ("sh", "-c", write)))
            undo_script.append(
                f"if [ -f {path} ]; then rm -f {path}; {restart_script(pid_file)}; fi"
            )
        check = " && ".join(f"[ ! -e {p} ]" for p in paths)
        undo = Step(LOCAL, ("sh", "-c", "; ".join(undo_script) + f"; {check}"))
        return FaultPlan(
            self.name,
            tuple(members),
            f"restart etcd on {', '.join(members)} with --heartbeat-interval={self.heartbeat_ms} "
            f"--election-timeout={self.election_ms}",
            tuple(inject),
            (undo,),
            claims=frozenset(f"the etcd flag override on {m}" for m in members),
        )
