"""The consistency checks can fail: each is fed a history with the violation it exists for."""

from __future__ import annotations

from kubedrill.checks.verdict import Verdict
from kubedrill.consistency import checks
from kubedrill.consistency.workload import linearizable
from kubedrill.workload.etcd_watch import Resume, WatchEvent
from kubedrill.workload.history import Operation


def put(
    client: str, key: str, value: str, t0: float, t1: float, rev: int, outcome: str = "ok"
) -> Operation:
    return Operation(client, "put", key, value, t0, t1, outcome, rev if outcome == "ok" else 0)


def get(client: str, key: str, value: str, t0: float, t1: float, rev: int) -> Operation:
    return Operation(client, "get", key, value, t0, t1, "ok", rev)


def event(key: str, value: str, rev: int, at: float = 0.0) -> WatchEvent:
    return WatchEvent(key, value, rev, "PUT", at, "m1")


OPENED = [Resume(0.0, "m1", 10, "opened")]


class TestAcknowledgedWrites:
    def test_all_stored_is_valid(self) -> None:
        ops = [put("a", "k1", "1", 0, 1, 11), put("a", "k2", "2", 1, 2, 12)]
        v = checks.acknowledged_writes_present("acked", ops, {"k1": "1", "k2": "2"})
        assert v.status == "valid"
        assert v.figures["acknowledged"] == 2

    def test_lost_acknowledged_write_is_invalid(self) -> None:
        ops = [put("a", "k1", "1", 0, 1, 11), put("a", "k2", "2", 1, 2, 12)]
        v = checks.acknowledged_writes_present("acked", ops, {"k1": "1"})
        assert v.status == "invalid"
        assert "k2" in v.detail
        assert v.figures["lost"] == 1

    def test_changed_value_is_invalid(self) -> None:
        v = checks.acknowledged_writes_present("acked", [put("a", "k", "1", 0, 1, 5)], {"k": "x"})
        assert v.status == "invalid"

    def test_failed_write_may_or_may_not_be_stored(self) -> None:
        ops = [put("a", "k1", "1", 0, 1, 11), put("a", "k2", "2", 1, 2, 0, outcome="unknown")]
        assert checks.acknowledged_writes_present("a", ops, {"k1": "1"}).status == "valid"
        both = checks.acknowledged_writes_present("a", ops, {"k1": "1", "k2": "2"})
        assert both.status == "valid"
        assert both.figures["unacknowledged_but_applied"] == 1

    def test_nothing_acknowledged_is_unknown(self) -> None:
        ops = [put("a", "k1", "1", 0, 1, 0, outcome="fail")]
        assert checks.acknowledged_writes_present("a", ops, {}).status == "unknown"


class TestRevisions:
    def test_increasing_is_valid(self) -> None:
        ops = [put("a", "k", "1", 0, 1, 10), get("b", "k", "1", 1.5, 2, 10)]
        assert checks.revisions_never_backwards("rev", ops).status == "valid"

    def test_stale_revision_after_a_completed_write_is_invalid(self) -> None:
        ops = [put("a", "k", "1", 0, 1, 10), get("b", "j", "0", 1.5, 2, 9)]
        v = checks.revisions_never_backwards("rev", ops)
        assert v.status == "invalid"
        assert "revision 9" in v.detail

    def test_concurrent_operations_may_see_either(self) -> None:
        # b began before a completed: it may be ordered first.
        ops = [put("a", "k", "1", 0, 2, 10), get("b", "k", "0", 1, 3, 9)]
        assert checks.revisions_never_backwards("rev", ops).status == "valid"

    def test_per_key_ignores_other_objects(self) -> None:
        # Kubernetes returns an object's own resourceVersion: lower than another object's.
        ops = [put("a", "cm-1", "1", 0, 1, 10), get("b", "reg", "x", 1.5, 2, 7)]
        assert checks.revisions_never_backwards("rv", ops, per_key=True).status == "valid"
        bad = [put("a", "reg", "1", 0, 1, 10), get("b", "reg", "0", 1.5, 2, 7)]
        assert checks.revisions_never_backwards("rv", bad, per_key=True).status == "invalid"


class TestWatch:
    def acked(self) -> list[Operation]:
        return [put("w", "k1", "1", 0, 1, 10), put("w", "k2", "2", 1, 2, 11)]

    def stored(self) -> dict[str, tuple[str, int]]:
        return {"k1": ("1", 10), "k2": ("2", 11)}

    def check(
        self,
        events: list[WatchEvent],
        resumes: list[Resume] = OPENED,
        stored: dict[str, tuple[str, int]] | None = None,
    ) -> Verdict:
        return checks.watch_complete(
            "watch", events, resumes, [], start_revision=10,
            stored=self.stored() if stored is None else stored, acknowledged=self.acked(),
        )  # fmt: skip

    def test_complete_watch_is_valid(self) -> None:
        events = [event("k1", "1", 10), event("k2", "2", 11)]
        v = self.check(events)
        assert v.status == "valid", v.detail

    def test_gap_is_invalid(self) -> None:
        events = [event("k2", "2", 11)]
        v = self.check(events)
        assert v.status == "invalid"
        assert "never delivered" in v.detail

    def test_duplicate_after_a_bad_resume_is_invalid(self) -> None:
        events = [event("k1", "1", 10), event("k1", "1", 10), event("k2", "2", 11)]
        resumes = [*OPENED, Resume(1.0, "m2", 10, "ReadTimeout")]
        v = self.check(events, resumes)
        assert v.status == "invalid"
        assert "twice" in v.detail

    def test_out_of_order_is_invalid(self) -> None:
        events = [event("k2", "2", 11), event("k1", "1", 10)]
        v = self.check(events)
        assert v.status == "invalid"
        assert "order" in v.detail

    def test_correct_resume_is_valid(self) -> None:
        events = [event("k1", "1", 10), event("k2", "2", 11)]
        resumes = [*OPENED, Resume(1.0, "m2", 11, "ReadTimeout")]
        v = self.check(events, resumes)
        assert v.status == "valid"
        assert v.figures["resumes"] == 1

    def test_watch_that_never_caught_up_is_unknown(self) -> None:
        events = [event("k1", "1", 10)]
        v = self.check(events, stored={"k1": ("1", 10)})
        assert v.status == "unknown"


def test_unavailability_per_client() -> None:
    ops = [
        put("a", "k1", "1", 0.0, 0.1, 1),
        put("a", "k2", "2", 1.0, 2.0, 0, outcome="fail"),
        put("a", "k3", "3", 2.0, 3.0, 0, outcome="unknown"),
        put("a", "k4", "4", 4.0, 4.1, 2),
        put("b", "j", "1", 0.0, 0.1, 3),
    ]
    figures = checks.unavailability_by_client(ops)
    assert figures["a"] == {
        "operations": 4,
        "failed": 1,
        "unknown": 1,
        "longest_unavailable_s": 3.0,
    }
    assert figures["b"]["longest_unavailable_s"] == 0.0


def test_invalid_linearizability_comes_with_porcupine_evidence() -> None:
    # A stale read: the put completed before the get began, yet the get saw the key absent.
    ops = [put("a", "k", "1", 0.0, 1.0, 5), get("b", "k", "", 2.0, 3.0, 5)]
    evidence: dict[str, str] = {}
    v = linearizable("register", ops, evidence)
    assert v.status == "invalid"
    assert v.check == "register"
    assert "register (porcupine)" in evidence
    assert "<html" in evidence["register (porcupine)"].lower()
    fine: dict[str, str] = {}
    assert linearizable("register", ops[:1], fine).status == "valid"
    assert not fine
