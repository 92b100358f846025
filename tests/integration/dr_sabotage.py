"""A pytest plugin for the negative DR test: the restore silently uses an *older* backup than
the one the drill took and checked (as when a runbook picks the wrong file). Every snapshot
save first saves an older copy, then waits while the workload writes on; the restore is
handed that older copy. Writes acknowledged between the two are lost from *before* the
snapshot the drill judges by: the drill must fail and name them.

Loaded with `-p tests.integration.dr_sabotage`; the system under test stays real (etcd,
etcdutl, the lab); only which file the restore reads is changed."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from kubedrill.disaster import backup, lab_restore

_save = backup.save_snapshot
_restore_all = lab_restore.LabRestore.restore_all


def older(path: Path) -> Path:
    return path.with_name(path.name + ".older")


def save_twice(tools: Any, access: Any, node: str, path: Path, **kw: Any) -> None:
    _save(tools, access, node, older(path), **kw)
    time.sleep(1.5)  # the workload acknowledges ~15 writes meanwhile
    _save(tools, access, node, path, **kw)


def restore_the_older(self: lab_restore.LabRestore, run: str, snapshot: Path, **kw: Any) -> str:
    return _restore_all(self, run, older(snapshot) if older(snapshot).exists() else snapshot, **kw)


backup.save_snapshot = save_twice
lab_restore.LabRestore.restore_all = restore_the_older  # type: ignore[method-assign]
