"""Disaster recovery (issue #13): a majority of etcd members lost with their data, the cluster
restored from the last snapshot. The fault (`LoseEtcdMajority`), and the pure judgement of
what the restore kept and lost (RPO, from the workload's own history, not estimated).

What a restore must keep and may lose, for a snapshot at revision R:
- every write acknowledged at or before R is there (`backup.restored_writes_verdict`: a
  restore that silently lost one of those is a broken backup, and fails the drill);
- every write acknowledged after R is gone: that is the RPO, listed write by write. One of
  them still present would mean the "snapshot" was not a point-in-time copy.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubedrill.checks.verdict import Verdict
from kubedrill.consistency.checks import is_applied_write, verdict
from kubedrill.faults.base import FaultPlan
from kubedrill.faults.shape import quorum
from kubedrill.targets.lab import layout
from kubedrill.transport.base import TransportSpec
from kubedrill.transport.step import Step
from kubedrill.workload.history import Operation

if TYPE_CHECKING:
    from kubedrill.cluster import Cluster

LOCAL = TransportSpec("local", "kubedrill")


# -- what the restore lost -----------------------------------------------------------------------


@dataclass(frozen=True)
class LostWrite:
    """An acknowledged write the restore did not bring back."""

    client: str
    key: str
    value: str
    revision: int
    acked_at: float  # offset on the drill's timeline

    def to_dict(self) -> dict[str, Any]:
        return {
            "client": self.client,
            "key": self.key,
            "value": self.value,
            "revision": self.revision,
            "acked_at_s": round(self.acked_at, 3),
        }


@dataclass(frozen=True)
class RestoreLoss:
    snapshot_revision: int
    lost: tuple[LostWrite, ...]
    # Writes acknowledged after the snapshot that are nevertheless there: impossible for a
    # point-in-time snapshot, so each is reported.
    kept_after: tuple[str, ...] = ()

    @property
    def window_s(self) -> float:
        """From the first to the last lost acknowledgement (0 with one or none)."""
        if len(self.lost) < 2:
            return 0.0
        return self.lost[-1].acked_at - self.lost[0].acked_at


def acked_after(ops: Sequence[Operation], revision: int) -> int:
    """How many acknowledged, applied writes came after `revision`."""
    return sum(1 for op in ops if is_applied_write(op) and op.revision > revision)


def writes_lost_by_restore(
    ops: Sequence[Operation],
    stored: Mapping[str, tuple[str, int]],
    revision: int,
) -> RestoreLoss:
    """The acknowledged, applied writes after `revision`, in revision order: lost when the
    store does not hold that key at that revision with that value (`stored`: key -> (value,
    mod revision), read from the restored cluster). Writes with no revision (none was
    returned) cannot be placed and are left out, as everywhere."""
    after = sorted(
        (op for op in ops if is_applied_write(op) and op.revision > revision),
        key=lambda op: op.revision,
    )
    lost = []
    kept = []
    for op in after:
        if stored.get(op.key) == (op.value, op.revision):
            kept.append(f"{op.key}@{op.revision}")
        else:
            lost.append(LostWrite(op.client, op.key, op.value, op.revision, op.complete))
    return RestoreLoss(revision, tuple(lost), tuple(kept))


def loss_verdict(check: str, loss: RestoreLoss) -> Verdict:
    """Valid when exactly the writes after the snapshot are gone (the expected loss, listed);
    invalid when one of them is still there."""
    started = time.perf_counter()
    figures = {
        "snapshot_revision": loss.snapshot_revision,
        "lost_after_snapshot": len(loss.lost),
        "kept_after_snapshot": len(loss.kept_after),
    }
    seconds = time.perf_counter() - started
    if loss.kept_after:
        return verdict(
            check,
            "invalid",
            f"{len(loss.kept_after)} writes acknowledged after the snapshot's revision "
            f"{loss.snapshot_revision} survived the restore: {', '.join(loss.kept_after[:5])}",
            figures,
            seconds,
        )
    shown = ", ".join(f"{w.key}@{w.revision}" for w in loss.lost[:5])
    more = f" (+{len(loss.lost) - 5} more)" if len(loss.lost) > 5 else ""
    detail = (
        f"{len(loss.lost)} writes acknowledged after revision {loss.snapshot_revision} "
        f"lost, as expected: {shown}{more}"
        if loss.lost
        else f"no write was acknowledged after revision {loss.snapshot_revision}"
    )
    return verdict(check, "valid", detail, figures, seconds)


def api_objects_verdict(
    check: str, created: Sequence[Operation], stored: Mapping[str, str], revision: int
) -> tuple[Verdict, list[str]]:
    """ConfigMaps the workload saw created: those at a resourceVersion up to `revision` (an
    apiserver's resourceVersion is etcd's revision) must be served with their value; those
    after it are the restore's loss, returned by name."""
    started = time.perf_counter()
    acked = [op for op in created if op.kind == "put" and op.ok and op.revision > 0]
    before = [op for op in acked if op.revision <= revision]
    after = [op for op in acked if op.revision > revision]
    missing = [op.key for op in before if stored.get(op.key) != op.value]
    survived = [op.key for op in after if op.key in stored]
    lost = sorted(op.key for op in after if op.key not in stored)
    figures = {"kept": len(before) - len(missing), "lost_after_snapshot": len(lost)}
    seconds = time.perf_counter() - started
    if missing or survived:
        parts = []
        if missing:
            parts.append(f"{len(missing)} created up to the snapshot not served: {missing[:5]}")
        if survived:
            parts.append(f"{len(survived)} created after the snapshot still served: {survived[:5]}")
        return verdict(check, "invalid", "; ".join(parts), figures, seconds), lost
    if not before:
        return verdict(
            check, "unknown", "no ConfigMap created before the snapshot", figures, seconds
        ), lost
    return (
        verdict(
            check,
            "valid",
            f"all {len(before)} ConfigMaps created up to revision {revision} served; "
            f"{len(lost)} created after it lost, as expected",
            figures,
            seconds,
        ),
        lost,
    )


# -- the fault -----------------------------------------------------------------------------------


def lab_state_dir(cluster: Cluster) -> Path | None:
    """The lab's state directory, or None on other targets (DR restores member data dirs on
    the runner: the lab only, for now)."""
    from kubedrill.targets.lab.control import LabControl  # noqa: PLC0415

    control = cluster.control
    return control.state_dir if isinstance(control, LabControl) else None


def unavailable(cluster: Cluster) -> str | None:
    if lab_state_dir(cluster) is None:
        return (
            f"{cluster.name}: disaster recovery restores every member's data dir on the "
            "runner; it runs on the lab (kind and SSH: not yet)"
        )
    if "etcdutl" not in cluster.facts.extra:
        return f"{cluster.name} names no etcdutl: rebuild the lab's tools (kubedrill build)"
    return None


def new_run_id() -> str:
    return f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class LoseEtcdMajority:
    """A majority of etcd members die and their disks with them: each victim is held down,
    SIGKILLed, and its data dir moved into the lab's `dr/<run>/lost/`. The undo is the whole
    restore from `snapshot` (`kubedrill etcd restore-lab`), or, once the drill has restored,
    only the clean-up: so a heal after a SIGKILL anywhere leaves a working cluster."""

    run: str
    snapshot: Path
    leader: str | None = None  # lost first: the worst case, and an election cannot save it

    @property
    def name(self) -> str:
        return "lose etcd majority with data"

    def available(self, cluster: Cluster) -> str | None:
        return unavailable(cluster)

    def victims(self, cluster: Cluster) -> tuple[str, ...]:
        members = sorted(cluster.etcd.endpoints)
        ordered = ([self.leader] if self.leader in members else []) + [
            m for m in members if m != self.leader
        ]
        return tuple(ordered[: quorum(len(members))])

    def plan(self, cluster: Cluster) -> FaultPlan:
        state_dir = lab_state_dir(cluster)
        assert state_dir is not None, "available() is checked first"
        victims = self.victims(cluster)
        lost = state_dir / "dr" / self.run / "lost"
        inject: list[Step] = []
        for node in victims:
            hold = layout.hold_file(state_dir, node, "etcd")
            pid_file = layout.pid_file(state_dir, node, "etcd")
            data = state_dir / "data" / node / "etcd"
            inject += [
                Step(LOCAL, ("touch", str(hold))),
                Step(
                    LOCAL,
                    (
                        "sh",
                        "-c",
                        f'pid=$(cat {pid_file} 2>/dev/null) && kill -KILL "$pid" 2>/dev/null; '
                        f'[ -z "$pid" ] || timeout 10 tail -s 0.05 --pid="$pid" -f /dev/null; '
                        f"mkdir -p {lost} && mv {data} {lost / node}",
                    ),
                    timeout=20,
                ),
            ]
        undo = Step(
            LOCAL,
            (
                sys.executable,
                "-m",
                "kubedrill",
                "etcd",
                "restore-lab",
                f"--state-dir={state_dir}",
                f"--run={self.run}",
                f"--snapshot={self.snapshot}",
            ),
            timeout=600,
        )
        return FaultPlan(
            name=self.name,
            victims=victims,
            description=f"lose etcd on {', '.join(victims)} with their data dirs "
            f"(undo: restore every member from {self.snapshot.name})",
            inject=tuple(inject),
            undo=(undo,),
            takes_down=frozenset((v, "etcd") for v in victims),
            data={"component": "etcd", "run": self.run},
            claims=frozenset(f"etcd on {v}" for v in victims),
        )
