"""A recent etcd backup that restores (the seed's "daily etcd backup" and "backup
verification"): the snapshot file given with `--backup`, its age, `etcdutl snapshot status`,
and a restore into a scratch single-member etcd on 127.0.0.1 (kubedrill.disaster.backup, the
same steps as the backup drill) that must serve the snapshot's revision. All of it runs on the
runner, on a copy; the cluster is not touched."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from kubedrill.audit.finding import Judgement
from kubedrill.cluster import Cluster
from kubedrill.disaster import backup
from kubedrill.errors import KubedrillError
from kubedrill.probes.etcd import EtcdError, b64

MAX_AGE_S = 24 * 3600  # the seed backs up daily


@dataclass(frozen=True)
class Restored:
    snapshot_revision: int
    snapshot_keys: int
    snapshot_size: int
    restored_revision: int
    restored_keys: int  # live keys the scratch member serves


def judge_backup(path: Path, age_s: float, restored: Restored | None, error: str) -> Judgement:
    age_h = age_s / 3600
    where = f"{path} ({age_h:.1f} h old)"
    if restored is None:
        return Judgement(
            "fail",
            f"{where}: {error}",
            "take a new snapshot (etcdctl snapshot save) and check it restores",
        )
    figures = (
        f"revision {restored.snapshot_revision}, {restored.snapshot_size} bytes; restored into "
        f"a scratch member serving revision {restored.restored_revision} with "
        f"{restored.restored_keys} keys"
    )
    if restored.restored_revision < restored.snapshot_revision:
        return Judgement(
            "fail",
            f"{where}: {figures}: the restore lost revisions",
            "take a new snapshot; this one does not restore what it claims to hold",
        )
    if age_s > MAX_AGE_S:
        return Judgement(
            "warn",
            f"{where}: older than {MAX_AGE_S // 3600} h; {figures}",
            "back etcd up at least daily (the seed's checklist) and audit the newest snapshot",
        )
    return Judgement("pass", f"{where}: {figures}")


def tools_for(cluster: Cluster) -> backup.EtcdTools:
    """The lab's own etcd tools, else etcd/etcdctl/etcdutl on the runner's PATH."""
    if backup.EtcdTools.unavailable(cluster) is None:
        return backup.EtcdTools.for_cluster(cluster)
    found = {n: shutil.which(n) for n in ("etcd", "etcdctl", "etcdutl")}
    missing = [n for n, p in found.items() if p is None]
    if missing:
        raise backup.BackupError(
            f"{', '.join(missing)} not found on this machine: the snapshot cannot be checked",
            "install etcd's tools (kubedrill build --topology etcd builds them) or put them "
            "on PATH",
        )
    return backup.EtcdTools(Path(found["etcd"] or ""), Path(found["etcdctl"] or ""),
                            Path(found["etcdutl"] or ""))  # fmt: skip


def restore_check(tools: backup.EtcdTools, snapshot: Path) -> Restored:
    """status, restore into a private temp dir, serve it on 127.0.0.1, read revision and key
    count; the scratch member and the directory are gone on every way out."""
    with backup.scratch_dir() as work:
        copy = work / "snapshot.db"
        shutil.copyfile(snapshot, copy)  # etcdutl reads it; the user's file stays as it was
        status = backup.snapshot_status(tools, copy)
        urls = backup.ScratchUrls.pick()
        backup.restore_snapshot(tools, copy, work / "restored", urls)
        with backup.scratch_member(tools, work / "restored", urls) as scratch:
            revision = scratch.status("scratch").revision
            counted = scratch.call(
                "scratch",
                "/v3/kv/range",
                {"key": b64("\0"), "range_end": b64("\0"), "count_only": True},
                timeout=10.0,
            )
    return Restored(
        status.revision,
        status.total_keys,
        status.total_size,
        revision,
        int(counted.get("count") or 0),
    )


def check_backup(cluster: Cluster, path: Path | None) -> Judgement:
    if path is None:
        return Judgement(
            "warn",
            "no backup given (--backup PATH): whether a recent snapshot restores is unknown",
            "pass the newest etcd snapshot with --backup so the audit restores it",
        )
    age = time.time() - path.stat().st_mtime
    try:
        restored = restore_check(tools_for(cluster), path)
    except (KubedrillError, EtcdError, OSError) as exc:
        return judge_backup(path, age, None, str(exc).splitlines()[0][:300])
    return judge_backup(path, age, restored, "")
