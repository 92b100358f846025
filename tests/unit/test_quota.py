"""The quota drill's logic: the fill's bounds, the alarm list, the quota, the runbook's order."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubedrill.disaster.quota import (
    MAX_DRILL_QUOTA,
    Alarm,
    MiB,
    Runbook,
    fill_plan,
    fill_until_nospace,
    fill_value,
    is_nospace,
    parse_alarms,
    quota_from_samples,
    quota_skip_reason,
)
from kubedrill.probes.etcd import EtcdClient, EtcdError

NOSPACE = "etcd-1: etcdserver: mvcc: database space exceeded"


class FakeEtcd:
    """Puts fill a quota; the gateway calls the runbook makes are recorded."""

    def __init__(self, room: int, *, fail_first: int = 0) -> None:
        self.room = room
        self.fail_first = fail_first
        self.puts: list[tuple[str, int]] = []
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.nodes = ["etcd-1", "etcd-2", "etcd-3"]
        self.alarmed = False

    def put(self, key: str, value: str, *, node: str | None = None, timeout: float = 1) -> int:
        if self.fail_first:
            self.fail_first -= 1
            raise EtcdError("etcd-1: leader changed")
        if self.alarmed or len(value) > self.room:
            self.alarmed = True
            raise EtcdError(NOSPACE)
        self.room -= len(value)
        self.puts.append((key, len(value)))
        return len(self.puts)

    def call(
        self, node: str, path: str, body: Mapping[str, Any], timeout: float | None = None
    ) -> dict[str, Any]:
        self.calls.append((node, path, dict(body)))
        if path == "/v3/maintenance/alarm" and body.get("action") == "GET":
            return {"alarms": [{"memberID": "42", "alarm": "NOSPACE"}] if self.alarmed else []}
        if path == "/v3/maintenance/alarm":
            self.alarmed = False
        if path == "/v3/maintenance/status":
            return {"header": {"member_id": "1", "revision": "77"}, "dbSize": str(16 * MiB)}
        return {}

    def status(self, node: str) -> Any:
        return EtcdClient.status(self, node)  # type: ignore[arg-type]


def test_fill_plan_sizes_values_to_the_quota_and_bounds_the_fill() -> None:
    plan = fill_plan(16 * MiB)
    assert plan.value_bytes == 256 * 1024
    assert plan.max_bytes == 64 * MiB and plan.max_puts == 256
    assert fill_plan(1 * MiB).value_bytes == 64 * 1024  # never smaller
    assert fill_plan(8 * 1024 * MiB).value_bytes == MiB  # never larger
    assert fill_plan(64 * MiB, max_request_bytes=512 * 1024).value_bytes < 512 * 1024


def test_fill_stops_by_itself_at_nospace() -> None:
    etcd = FakeEtcd(room=3 * MiB)
    result = fill_until_nospace(etcd, "/q/", fill_plan(16 * MiB))  # type: ignore[arg-type]
    assert result.full and result.stopped_by == "nospace"
    assert result.puts == 12 and result.bytes_written == 12 * 256 * 1024
    assert {key for key, _ in etcd.puts} == {"/q/0", "/q/1", "/q/2", "/q/3"}  # overwrites
    assert result.last_error is not None and is_nospace(result.last_error)


def test_fill_is_bounded_in_bytes_and_time() -> None:
    plan = fill_plan(16 * MiB)
    endless = FakeEtcd(room=10**12)
    by_bytes = fill_until_nospace(endless, "/q/", plan)  # type: ignore[arg-type]
    assert by_bytes.stopped_by == "max_bytes" and by_bytes.bytes_written == plan.max_bytes
    ticks = iter(range(0, 10**6, 50))
    by_time = fill_until_nospace(
        FakeEtcd(room=10**12),  # type: ignore[arg-type]
        "/q/",
        plan,
        clock=lambda: float(next(ticks)),
    )
    assert by_time.stopped_by == "deadline" and by_time.puts < plan.max_puts


def test_fill_retries_other_errors_then_gives_up() -> None:
    flaky = FakeEtcd(room=MiB, fail_first=2)
    assert fill_until_nospace(flaky, "/q/", fill_plan(16 * MiB)).full  # type: ignore[arg-type]
    broken = FakeEtcd(room=MiB, fail_first=10**6)
    result = fill_until_nospace(broken, "/q/", fill_plan(16 * MiB), max_errors=3)  # type: ignore[arg-type]
    assert result.stopped_by == "errors" and result.last_error == "etcd-1: leader changed"


def test_fill_values_have_the_size_and_differ() -> None:
    assert len(fill_value(7, 1000)) == 1000
    assert fill_value(1, 100) != fill_value(2, 100)


def test_alarm_list_parsing() -> None:
    assert parse_alarms({"header": {}}) == []
    assert parse_alarms({"alarms": [{"memberID": "9", "alarm": "NOSPACE"}, {"memberID": "8"}]}) == [
        Alarm("9", "NOSPACE")
    ]


def test_quota_from_metrics_and_the_skip_reason() -> None:
    samples = [
        {("etcd_server_quota_backend_bytes", ()): 16.0 * MiB, ("up", ()): 1.0},
        {("etcd_server_quota_backend_bytes", ()): 32.0 * MiB},
    ]
    assert quota_from_samples(samples) == 16 * MiB
    assert quota_from_samples([{}]) is None
    assert quota_skip_reason(16 * MiB) is None
    reason = quota_skip_reason(8 * 1024 * MiB)
    assert reason is not None and "8192 MiB" in reason and "quota-etcd.yaml" in reason
    assert quota_skip_reason(MAX_DRILL_QUOTA + 1) is not None
    assert "unknown" in (quota_skip_reason(None) or "")


def test_runbook_compacts_to_the_current_revision_defrags_every_member_then_disarms() -> None:
    etcd = FakeEtcd(room=0)
    etcd.alarmed = True
    ticks = iter(float(t) for t in range(1000))
    steps = Runbook(etcd, clock=lambda: next(ticks)).run()  # type: ignore[arg-type]
    assert [s.name for s in steps] == ["compact", "defragment", "disarm"]
    assert all(s.seconds > 0 for s in steps)
    acting = [(n, p, b) for n, p, b in etcd.calls if p != "/v3/maintenance/status"]
    acting = [c for c in acting if c[2].get("action") != "GET"]
    assert acting[0][1:] == ("/v3/kv/compaction", {"revision": 77, "physical": True})
    assert [n for n, p, _ in acting if p == "/v3/maintenance/defragment"] == etcd.nodes
    assert acting[-1][2] == {"action": "DEACTIVATE", "memberID": "42", "alarm": "NOSPACE"}
    assert not etcd.alarmed
