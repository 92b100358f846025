"""Disaster drills: what a team falls back on when the cluster itself is lost (issue #13)."""

from __future__ import annotations

import pytest

from kubedrill.disaster import backup
from kubedrill.drill import Drill
from kubedrill.probes import etcd_checks as check
from kubedrill.probes.etcd import EtcdClient

pytestmark = [pytest.mark.disaster]

ETCD_HEALTHY = "every etcd member answers and a quorum agrees on one leader"
MIN_ACKED_KEYS = 50  # about 5 s of the workload (etcd-kv writes a new key every 0.1 s)


def test_backup_verified(drill: Drill, etcd: EtcdClient) -> None:
    """Snapshot one member while the consistency workload writes, check the snapshot, restore
    it into a scratch member, and find there every write acknowledged at or before the
    snapshot's revision, with its value. Nothing is faulted: the lab keeps working."""
    reason = backup.EtcdTools.unavailable(drill.cluster)
    if reason is not None:
        pytest.skip(reason)
    drill.steady_state(ETCD_HEALTHY, lambda: check.all_healthy(etcd))
    if drill.dry_run:
        drill.walk.add(
            "backup",
            "etcdctl snapshot save from a follower while the workload writes",
            "etcdutl snapshot status -w json: hash, revision, total keys",
            "etcdutl snapshot restore into a scratch data dir",
            "scratch single-member etcd on 127.0.0.1 (stopped and removed on every way out)",
        )
        drill.expect(True, "every write acknowledged at or before the snapshot's revision "
                     "is restored with its value")  # fmt: skip
        return
    workload = drill.consistency
    drill.expect(workload is not None and workload.started, "the consistency workload runs")
    assert workload is not None
    tools = backup.EtcdTools.for_cluster(drill.cluster)
    drill.wait_for(
        "workload.writing",
        lambda: len(backup.required_writes(workload.etcd_ops(), 2**62)) >= MIN_ACKED_KEYS,
        timeout=30,
    )
    member = drill.choose(
        "a follower to snapshot",
        lambda: next(n for n in etcd.nodes if n != etcd.leader()),
    )
    with backup.scratch_dir() as work:
        snapshot = work / "snapshot.db"
        drill.timeline.mark("snapshot.saving", member=member)
        backup.save_snapshot(tools, drill.cluster.etcd, member, snapshot)
        drill.timeline.mark("snapshot.saved")
        status = backup.snapshot_status(tools, snapshot)
        drill.timeline.mark("snapshot.checked", **status.to_dict())
        drill.expect(status.revision > 0, "the snapshot has a revision", status)
        urls = backup.ScratchUrls.pick()
        drill.timeline.mark("restore.starting")
        backup.restore_snapshot(tools, snapshot, work / "restored", urls)
        drill.timeline.mark("restore.done")
        with backup.scratch_member(tools, work / "restored", urls) as scratch:
            drill.timeline.mark("restored.serving")
            restored = scratch.range_prefix_revisions(workload.prefix)
        size = snapshot.stat().st_size
    saved = drill.timeline.between("snapshot.saving", "snapshot.saved", "snapshot_save")
    restore = drill.timeline.between("restore.starting", "restore.done", "snapshot_restore")
    drill.within_budget("recovery", "restore.starting", "restored.serving", "restore_to_serving")
    drill.observe("snapshot_member", member)
    drill.observe("snapshot_size_bytes", size)
    drill.observe("snapshot_revision", status.revision)
    drill.observe("snapshot_hash", status.hash)
    drill.observe("snapshot_total_keys", status.total_keys)
    drill.observe("snapshot_save_s", round(saved.seconds, 3))
    drill.observe("snapshot_restore_s", round(restore.seconds, 3))
    with drill.verify():
        # Read the histories now: every write in flight at the snapshot has completed.
        drill.check_now(backup.RestoredWritesCheck(workload.etcd_ops(), restored, status.revision))
