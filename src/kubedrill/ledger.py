"""Durable undo records: written and fsynced before a fault is injected, removed after heal.

`kubedrill heal` replays what is left after a crash or SIGKILL. Records are plain JSON so a
person can read (and, in an emergency, run) the undo commands by hand.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubedrill.errors import LedgerError
from kubedrill.faults.base import FaultPlan
from kubedrill.transport import transport_for
from kubedrill.transport.step import Step

DEFAULT_LEDGER_DIR = Path(os.environ.get("KUBEDRILL_LEDGER_DIR", "/var/lib/kubedrill/ledger"))


@dataclass(frozen=True)
class UndoRecord:
    id: str
    cluster: str
    fault: str
    description: str
    owner_pid: int
    created_wall: float
    undo: tuple[Step, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "cluster": self.cluster,
            "fault": self.fault,
            "description": self.description,
            "owner_pid": self.owner_pid,
            "created_wall": self.created_wall,
            "undo": [s.to_dict() for s in self.undo],
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> UndoRecord:
        return cls(
            id=str(raw["id"]),
            cluster=str(raw["cluster"]),
            fault=str(raw["fault"]),
            description=str(raw["description"]),
            owner_pid=int(raw["owner_pid"]),
            created_wall=float(raw["created_wall"]),
            undo=tuple(Step.from_dict(s) for s in raw["undo"]),
        )


@dataclass(frozen=True)
class HealReport:
    record: UndoRecord
    failures: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.failures


def fsync_dir(path: Path) -> None:
    """Make a rename or unlink in `path` durable (its entry, not just the file)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def pid_alive(pid: int) -> bool:
    """True for a running process; a zombie (exited, not yet reaped) counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


class Ledger:
    def __init__(self, directory: Path = DEFAULT_LEDGER_DIR) -> None:
        self.directory = directory

    def record(self, cluster: str, plan: FaultPlan) -> UndoRecord:
        rec = UndoRecord(
            id=f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}",
            cluster=cluster,
            fault=plan.name,
            description=plan.description,
            owner_pid=os.getpid(),
            created_wall=time.time(),
            undo=plan.undo,
        )
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            final = self.directory / f"{rec.id}.json"
            tmp = final.with_suffix(".tmp")
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(rec.to_dict(), fh, indent=2)
                fh.flush()
                os.fsync(fh.fileno())
            tmp.rename(final)
            fsync_dir(self.directory)
        except OSError as exc:
            raise LedgerError(
                f"cannot write the undo record in {self.directory}: {exc}",
                "nothing was injected; make the directory writable or set KUBEDRILL_LEDGER_DIR",
            ) from exc
        return rec

    def remove(self, rec: UndoRecord) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.directory / f"{rec.id}.json").unlink()
            fsync_dir(self.directory)
        self._remove_dir_if_empty()

    def _remove_dir_if_empty(self) -> None:
        with contextlib.suppress(OSError):
            self.directory.rmdir()

    def outstanding(self) -> list[UndoRecord]:
        if not self.directory.is_dir():
            return []
        records = []
        for path in sorted(self.directory.glob("*.json")):
            try:
                records.append(UndoRecord.from_dict(json.loads(path.read_text(encoding="utf-8"))))
            except (ValueError, KeyError, TypeError) as exc:
                raise LedgerError(
                    f"undo record {path} is corrupt: {exc}",
                    "read it and undo by hand what it describes, then delete the file",
                ) from exc
        # A crash between writing the temp file and renaming leaves *.tmp: no fault was injected
        # yet (records are written before injection), so it is safe to drop.
        for stale in self.directory.glob("*.tmp"):
            if time.time() - stale.stat().st_mtime > 60:  # not one being written right now
                stale.unlink(missing_ok=True)
        return records

    def orphans(self) -> list[UndoRecord]:
        """Records whose owning process is gone: nobody else will heal them."""
        return [
            r
            for r in self.outstanding()
            if r.owner_pid == os.getpid() or not pid_alive(r.owner_pid)
        ]

    def heal(self, rec: UndoRecord, *, log: Callable[[str], None] = lambda _m: None) -> HealReport:
        failures = run_steps(rec.undo, log=log, stop_on_error=False)
        if not failures:
            self.remove(rec)
        return HealReport(rec, tuple(failures))

    def heal_all(self, *, log: Callable[[str], None] = lambda _m: None) -> list[HealReport]:
        """Heal every orphan, newest first, each on its own: a failed one is reported and kept
        while the others still heal. Each record undoes only its own fault, so any order is
        correct; newest first is the order the crashed run's nested `with` blocks would have
        healed in, so a heal after a SIGKILL replays what a clean exit would have done."""
        newest_first = sorted(self.orphans(), key=lambda r: (r.created_wall, r.id), reverse=True)
        return [self.heal(rec, log=log) for rec in newest_first]


def run_steps(
    steps: tuple[Step, ...] | list[Step],
    *,
    log: Callable[[str], None] = lambda _m: None,
    stop_on_error: bool = True,
) -> list[str]:
    """Run steps in order; returns the failures (empty when all went well)."""
    failures: list[str] = []
    for step in steps:
        log(step.render())
        result = transport_for(step.transport).run(list(step.argv), timeout=step.timeout)
        if result.ok or step.ignore_errors:
            continue
        detail = (result.stderr.strip() or result.stdout.strip())[:500]
        failures.append(f"{step.render()} exited {result.exit_code}: {detail}")
        if stop_on_error:
            break
    return failures
