"""Parsing the cluster's own records and comparing them with polled figures (pure logic)."""

from __future__ import annotations

import json

import pytest

from kubedrill.server_record.compare import compare
from kubedrill.server_record.etcd_log import elections_in
from kubedrill.server_record.lb_log import kindlb_state_changes, state_changes
from kubedrill.server_record.record import ServerRecord, parse_time
from kubedrill.timeline import Measurement, Timeline

ZAP = {
    "level": "info",
    "ts": "2026-12-01T17:40:01.250000Z",
    "logger": "raft",
    "msg": "8e9e05c52164694d became leader at term 7",
}


def test_election_lines_from_every_target_format() -> None:
    raw = json.dumps(ZAP)
    text = "\n".join(
        [
            raw,  # the lab's log file, crictl logs
            f"Dec 01 17:40:01 node-1 etcd[811]: {raw}",  # journald
            json.dumps(ZAP | {"msg": "8e9e05c52164694d became candidate at term 7"}),
            "not json: 1 became leader at term 9",
        ]
    )
    found = elections_in(text, "etcd-1")
    assert [(e.member_id, e.term) for e in found] == [("8e9e05c52164694d", 7)] * 2
    assert found[0].wall == pytest.approx(parse_time("2026-12-01T17:40:01.25Z") or 0)


def test_haproxy_iso_state_change_lines() -> None:
    text = (
        "2026-12-01T17:37:29.858061+00:00 Server kube-apiserver/control-1 is DOWN, reason: "
        "Layer4 connection problem\n"
        "[WARNING]  (21497) : Server kube-apiserver/control-1 is DOWN, reason: x\n"
        "2026-12-01T17:37:31.000001+00:00 Server kube-apiserver/control-1 is UP, reason: ok\n"
    )
    changes = state_changes(text)
    assert [(s, st) for _, s, st in changes] == [("control-1", "DOWN"), ("control-1", "UP")]
    assert changes[1][0] - changes[0][0] == pytest.approx(1.14194, abs=1e-5)


def _timeline(inject_at: float) -> Timeline:
    now = [0.0]
    timeline = Timeline(clock=lambda: now[0], wall=lambda: 1000.0)
    now[0] = inject_at
    timeline.mark("fault.injecting")
    return timeline


def test_a_poll_late_by_less_than_its_interval_agrees() -> None:
    timeline = _timeline(2.0)
    measured = Measurement("leader_election", "fault.injecting", "leader.elected", 1.08)
    row = compare(measured, timeline, ServerRecord(1003.0, "etcd log"), 0.1, "etcd")
    assert row["server_s"] == 1.0 and row["difference_s"] == pytest.approx(0.08)
    assert row["agrees"] is True and row["judged_on"] == "polled"


@pytest.mark.parametrize("polled", [1.5, 0.9])
def test_a_poll_too_late_or_earlier_than_the_record_disagrees(polled: float) -> None:
    measured = Measurement("leader_election", "fault.injecting", "leader.elected", polled)
    row = compare(measured, _timeline(2.0), ServerRecord(1003.0, "etcd log"), 0.1, "etcd")
    assert row["agrees"] is False


def test_a_remote_clock_widens_the_agreement_by_its_uncertainty() -> None:
    measured = Measurement("leader_election", "fault.injecting", "leader.elected", 1.25)
    record = ServerRecord(1003.0, "etcd log", clock_uncertainty_s=0.2)
    assert compare(measured, _timeline(2.0), record, 0.1, "etcd")["agrees"] is True


def test_no_record_says_what_was_looked_for() -> None:
    measured = Measurement("leader_election", "fault.injecting", "leader.elected", 1.0)
    row = compare(measured, _timeline(2.0), None, 0.1, "etcd's 'became leader' log line")
    assert row["agrees"] is None and "became leader" in row["source"]


def test_kind_load_balancer_health_transitions() -> None:
    text = (
        "2026-12-01T17:40:01.250Z health kube-apiservers 10.213.40.12:6443: healthy -> "
        "/failed_active_hc (network failure: dial tcp: connection refused)\n"
        "2026-12-01T17:40:02.000Z health kube-apiservers 10.213.40.12:6443: /failed_active_hc "
        "-> /failed_active_hc/active_hc_timeout (check failed: timeout)\n"
        "2026-12-01T17:40:09.500Z health kube-apiservers 10.213.40.12:6443: /failed_active_hc "
        "-> healthy (check passed)\n"
    )
    changes = kindlb_state_changes(text, {"10.213.40.12": "kubedrill-control-plane2"})
    assert [(n, s) for _, n, s in changes] == [
        ("kubedrill-control-plane2", "DOWN"),
        ("kubedrill-control-plane2", "UP"),
    ]
    assert changes[1][0] - changes[0][0] == pytest.approx(8.25)


def test_the_check_hands_each_finder_what_the_probe_returned() -> None:
    """A Lease record needs the new holder the probe saw; a figure with no record is
    `unknown`, one later than its record by more than the interval is `invalid`."""
    from typing import Any, cast

    from kubedrill.checks.base import CheckContext
    from kubedrill.checks.server_record import Expected, ServerRecordCheck
    from kubedrill.cluster import Cluster
    from kubedrill.server_record.compare import RecordContext, Recorded

    seen: list[object] = []

    def find(ctx: RecordContext, value: object) -> ServerRecord | None:
        seen.append(value)
        return ServerRecord(ctx.since_wall + 1.0, "the record")

    timeline = _timeline(2.0)
    measured = Measurement("lease_takeover", "fault.injecting", "lease.taken_over", 1.5)
    check = ServerRecordCheck(
        cast(Cluster, None),
        lambda: [measured],
        {"lease.taken_over": Expected(Recorded(find, "a Lease"), lambda: "holder-1", 0.1)},
    )
    observed: dict[str, Any] = {}
    verdict = check.run(CheckContext("d", timeline, observed.__setitem__))
    assert seen == ["holder-1"]
    assert verdict is not None and verdict.status == "invalid"  # 0.5 s late, interval 0.1
    assert observed["server_records"][0]["difference_s"] == pytest.approx(0.5)
