"""Backup verified, the pure parts: reading `etcdutl snapshot status`, choosing the writes a
snapshot must hold, and judging a restore -- including restores that lost something."""

from __future__ import annotations

from typing import ClassVar

import pytest

from kubedrill.disaster import backup
from kubedrill.disaster.backup import (
    BackupError,
    parse_snapshot_status,
    required_writes,
    restored_writes_verdict,
)
from kubedrill.workload.history import Operation


def put(key: str, value: str, rev: int, outcome: str = "ok") -> Operation:
    return Operation("etcd-kv", "put", key, value, 0.0, 0.1, outcome, rev)


def cas(key: str, value: str, rev: int, *, applied: bool = True, outcome: str = "ok") -> Operation:
    return Operation(
        "etcd-cas-1", "cas", key, value, 0.0, 0.1, outcome, rev, expected="x", applied=applied
    )


class TestParseStatus:
    def test_etcdutl_3_6_json(self) -> None:
        text = (
            '{"hash":2337231381,"revision":1234,"totalKey":56,"totalSize":20480,'
            '"version":"3.6.0"}\n'
        )
        status = parse_snapshot_status(text)
        assert status == backup.SnapshotStatus(2337231381, 1234, 56, 20480, "3.6.0")

    def test_log_lines_before_the_object_are_skipped(self) -> None:
        text = (
            '{"level":"info","msg":"opened"}\n'
            '{"hash":1,"revision":9,"totalKey":2,"totalSize":4096,"version":"3.5.0"}\n'
        )
        assert parse_snapshot_status(text).revision == 9

    @pytest.mark.parametrize("text", ["", "not json", '{"level":"info"}', '{"revision":"x"}'])
    def test_no_status_is_an_error(self, text: str) -> None:
        with pytest.raises(BackupError):
            parse_snapshot_status(text)


class TestRequiredWrites:
    def test_only_acknowledged_applied_writes_at_or_before_the_revision(self) -> None:
        ops = [
            put("/k/1", "a", 10),
            put("/k/2", "b", 11),
            put("/k/3", "c", 12),  # after the snapshot
            put("/k/4", "d", 0, outcome="unknown"),  # timed out: may or may not be there
            put("/k/5", "e", 0, outcome="fail"),
            cas("/reg", "v1", 9),
            cas("/reg", "v2", 11, applied=False),  # compare failed: changed nothing
            Operation("etcd-cas-1", "get", "/reg", "v1", 0.0, 0.1, "ok", 11),
        ]
        required = required_writes(ops, 11)
        assert {k: op.value for k, op in required.items()} == {
            "/k/1": "a",
            "/k/2": "b",
            "/reg": "v1",
        }

    def test_the_last_write_of_a_key_counts(self) -> None:
        ops = [cas("/reg", "v2", 20), cas("/reg", "v1", 15), cas("/reg", "v3", 30)]
        assert required_writes(ops, 25)["/reg"].value == "v2"


class TestRestoredVerdict:
    OPS: ClassVar[list[Operation]] = [
        put("/k/1", "a", 10),
        put("/k/2", "b", 11),
        cas("/reg", "v1", 9),
        put("/k/3", "c", 14),
    ]

    def test_everything_restored_is_valid(self) -> None:
        restored = {"/k/1": ("a", 10), "/k/2": ("b", 11), "/reg": ("v1", 9)}
        found = restored_writes_verdict(self.OPS, restored, 12)
        assert found.status == "valid", found.detail
        assert found.figures["keys_required"] == 3
        assert found.figures["acknowledged_after_snapshot"] == 1

    def test_a_missing_acknowledged_write_is_invalid(self) -> None:
        restored = {"/k/1": ("a", 10), "/reg": ("v1", 9)}
        found = restored_writes_verdict(self.OPS, restored, 12)
        assert found.status == "invalid"
        assert "/k/2 missing" in found.detail
        assert found.figures["lost"] == 1

    def test_a_wrong_value_at_the_acked_revision_is_invalid(self) -> None:
        restored = {"/k/1": ("a", 10), "/k/2": ("B", 11), "/reg": ("v1", 9)}
        found = restored_writes_verdict(self.OPS, restored, 12)
        assert found.status == "invalid"
        assert "holds 'B'" in found.detail

    def test_an_older_version_is_a_lost_write(self) -> None:
        restored = {"/k/1": ("a", 10), "/k/2": ("b", 11), "/reg": ("init", 3)}
        found = restored_writes_verdict(self.OPS, restored, 12)
        assert found.status == "invalid"
        assert "/reg at revision 3" in found.detail

    def test_superseded_by_an_unacknowledged_write_is_valid(self) -> None:
        # A cas that timed out (unknown) may have applied at 12, before the snapshot.
        restored = {"/k/1": ("a", 10), "/k/2": ("b", 11), "/reg": ("v9", 12)}
        found = restored_writes_verdict(self.OPS, restored, 12)
        assert found.status == "valid", found.detail
        assert found.figures["superseded_by_unacknowledged"] == 1

    def test_a_change_after_the_snapshot_revision_is_invalid(self) -> None:
        restored = {"/k/1": ("a", 10), "/k/2": ("b", 11), "/reg": ("v1", 9), "/k/3": ("c", 14)}
        found = restored_writes_verdict(self.OPS, restored, 12)
        assert found.status == "invalid"
        assert "changed after the snapshot's revision 12" in found.detail

    def test_nothing_to_compare_is_unknown(self) -> None:
        found = restored_writes_verdict([put("/k/3", "c", 14)], {}, 12)
        assert found.status == "unknown"


def test_tool_environment_drops_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("grpc_proxy", "http://proxy.invalid:3128")
    env = backup.tool_environment()
    assert "HTTPS_PROXY" not in env and "grpc_proxy" not in env
