"""The backup drill's tool steps, against real etcd on 127.0.0.1 (no lab): a snapshot saved,
checked, restored and served by a scratch member whose keys are compared with a history -- and
the scratch member and its directory gone on every way out."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubedrill.cluster import EtcdAccess
from kubedrill.disaster import backup
from kubedrill.targets.lab.build import ensure_built, etcd_build
from kubedrill.targets.lab.config import LabConfig
from kubedrill.workload.history import Operation


@pytest.fixture(scope="module")
def tools() -> backup.EtcdTools:
    config = LabConfig()
    built = ensure_built(etcd_build(config.etcd.version), config.cache_dir, lambda _m: None)
    return backup.EtcdTools(built / "etcd", built / "etcdctl", built / "etcdutl")


def running_with(path: Path) -> list[int]:
    """Pids of processes whose command line names `path`."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if str(path).encode() in cmdline:
            found.append(int(proc.name))
    return found


def test_round_trip_then_a_lost_write_is_found(tools: backup.EtcdTools) -> None:
    with backup.scratch_dir() as work:
        source = backup.ScratchUrls.pick()
        ops: list[Operation] = []
        (work / "source").mkdir()
        # A member on an empty data dir starts a new one-member cluster: the "live" source.
        with backup.scratch_member(tools, work / "source", source) as live:
            for i in range(30):
                rev = live.put(f"/t/k{i}", f"v{i}")
                ops.append(Operation("w", "put", f"/t/k{i}", f"v{i}", 0.0, 0.0, "ok", rev))
            access = EtcdAccess({"source": source.client}, None)
            backup.save_snapshot(tools, access, "source", work / "snap.db")
            after = live.put("/t/after", "x")
            ops.append(Operation("w", "put", "/t/after", "x", 0.0, 0.0, "ok", after))
        status = backup.snapshot_status(tools, work / "snap.db")
        assert status.revision == ops[29].revision
        assert status.total_keys == 30
        target = backup.ScratchUrls.pick()
        backup.restore_snapshot(tools, work / "snap.db", work / "restored", target)
        with backup.scratch_member(tools, work / "restored", target) as scratch:
            restored = scratch.range_prefix_revisions("/t/")
        found = backup.restored_writes_verdict(ops, restored, status.revision)
        assert found.status == "valid", found.detail
        assert found.figures["keys_required"] == 30
        assert found.figures["acknowledged_after_snapshot"] == 1
        # A history claiming one more acknowledged write before the snapshot: not restored.
        claimed = Operation("w", "put", "/t/ghost", "g", 0.0, 0.0, "ok", status.revision)
        lost = backup.restored_writes_verdict([*ops, claimed], restored, status.revision)
        assert lost.status == "invalid"
        assert "/t/ghost missing" in lost.detail
    assert not work.exists()
    assert running_with(work) == []


def test_scratch_member_and_dir_gone_when_the_drill_fails(tools: backup.EtcdTools) -> None:
    with pytest.raises(RuntimeError), backup.scratch_dir() as work:
        urls = backup.ScratchUrls.pick()
        (work / "data").mkdir()
        with backup.scratch_member(tools, work / "data", urls):
            assert running_with(work / "data")
            raise RuntimeError("the drill failed here")
    assert not work.exists()
    assert running_with(work) == []
