"""The undo ledger, in a temporary directory, replaying harmless local commands."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from kubedrill.errors import LedgerError
from kubedrill.faults.base import FaultPlan
from kubedrill.ledger import Ledger, UndoRecord, pid_alive, run_steps
from kubedrill.polling import poll_until
from kubedrill.transport import TransportSpec
from kubedrill.transport.step import Step

LOCAL = TransportSpec("local", "kubedrill")


def step(*argv: str, ignore_errors: bool = False, timeout: float = 30.0) -> Step:
    return Step(LOCAL, tuple(argv), ignore_errors=ignore_errors, timeout=timeout)


def plan(*undo: Step, name: str = "kill etcd") -> FaultPlan:
    return FaultPlan(name, ("n1",), f"{name} on n1", inject=(), undo=tuple(undo))


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    assert not pid_alive(proc.pid)
    return proc.pid


def set_owner(ledger: Ledger, rec: UndoRecord, pid: int) -> None:
    path = ledger.directory / f"{rec.id}.json"
    raw: dict[str, Any] = json.loads(path.read_text())
    raw["owner_pid"] = pid
    path.write_text(json.dumps(raw))


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return Ledger(tmp_path / "ledger")


# --- Step serialisation -----------------------------------------------------------------------


def test_step_round_trip() -> None:
    netns = TransportSpec("netns", "n1", {"netns": "kd-lab-n1"})
    s = Step(netns, ("tc", "qdisc"), True, 5.0)
    raw = s.to_dict()
    assert raw == {
        "transport": {"kind": "netns", "node": "n1", "params": {"netns": "kd-lab-n1"}},
        "argv": ["tc", "qdisc"],
        "ignore_errors": True,
        "timeout": 5.0,
    }
    assert Step.from_dict(json.loads(json.dumps(raw))) == s
    assert s.render() == "[n1] tc qdisc"


def test_step_from_dict_defaults() -> None:
    s = Step.from_dict({"transport": {"kind": "local", "node": "x"}, "argv": ["true", 1]})
    assert s == Step(TransportSpec("local", "x"), ("true", "1"), False, 30.0)


# --- record / outstanding / remove ------------------------------------------------------------


def test_record_writes_readable_json(ledger: Ledger, tmp_path: Path) -> None:
    undo = (step("rm", "-f", str(tmp_path / "x")), step("true", ignore_errors=True, timeout=3))
    rec = ledger.record("lab/t", plan(*undo))
    path = ledger.directory / f"{rec.id}.json"
    assert path.is_file()
    assert list(ledger.directory.iterdir()) == [path]  # no temp file left behind
    raw = json.loads(path.read_text())
    assert raw["cluster"] == "lab/t"
    assert raw["fault"] == "kill etcd"
    assert raw["description"] == "kill etcd on n1"
    assert raw["owner_pid"] == os.getpid()
    assert raw["undo"] == [s.to_dict() for s in undo]
    assert rec.undo == undo
    assert UndoRecord.from_dict(raw) == rec


def test_outstanding_and_remove(ledger: Ledger) -> None:
    assert ledger.outstanding() == []  # directory does not exist yet
    first = ledger.record("lab/t", plan(step("true"), name="a"))
    second = ledger.record("lab/t", plan(step("true"), name="b"))
    assert first.id != second.id
    assert sorted(r.id for r in ledger.outstanding()) == sorted([first.id, second.id])
    assert [r.id for r in ledger.outstanding()] == sorted([first.id, second.id])

    ledger.remove(first)
    assert [r.id for r in ledger.outstanding()] == [second.id]
    assert ledger.directory.is_dir()
    ledger.remove(first)  # removing twice is harmless
    ledger.remove(second)
    assert ledger.outstanding() == []
    assert not ledger.directory.exists()  # an empty ledger leaves no directory behind


def test_outstanding_drops_stale_temp_files(ledger: Ledger) -> None:
    rec = ledger.record("lab/t", plan(step("true")))
    stale = ledger.directory / "20240101T000000-deadbeef.tmp"
    stale.write_text("{half a rec")
    os.utime(stale, (time.time() - 120, time.time() - 120))
    fresh = ledger.directory / "20240101T000001-cafebabe.tmp"  # another run writing right now
    fresh.write_text("{being written")
    assert [r.id for r in ledger.outstanding()] == [rec.id]
    assert not stale.exists()
    assert fresh.exists()


def test_record_failure_is_a_ledger_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(LedgerError, match="cannot write the undo record") as info:
        Ledger(blocker / "ledger").record("lab/t", plan(step("true")))
    assert "nothing was injected" in info.value.hint


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "[]",
        "null",
        '"a string"',
        "{}",
        '{"id": "x", "cluster": "c", "fault": "f", "description": "d", "owner_pid": "abc", '
        '"created_wall": 1.0, "undo": []}',
        '{"id": "x", "cluster": "c", "fault": "f", "description": "d", "owner_pid": 1, '
        '"created_wall": 1.0, "undo": 5}',
        '{"id": "x", "cluster": "c", "fault": "f", "description": "d", "owner_pid": 1, '
        '"created_wall": 1.0, "undo": [{"argv": ["true"]}]}',
        '{"id": "x", "cluster": "c", "fault": "f", "description": "d", "owner_pid": 1, '
        '"created_wall": 1.0, "undo": [{"transport": {"kind": "local", "node": "n", '
        '"params": [1]}, "argv": ["true"]}]}',
    ],
)
def test_corrupt_record_is_a_ledger_error(ledger: Ledger, content: str) -> None:
    ledger.record("lab/t", plan(step("true")))
    bad = ledger.directory / "zz-corrupt.json"
    bad.write_text(content)
    with pytest.raises(LedgerError, match="is corrupt") as info:
        ledger.outstanding()
    assert str(bad) in info.value.message
    assert "by hand" in info.value.hint


def test_non_utf8_record_is_a_ledger_error(ledger: Ledger) -> None:
    ledger.directory.mkdir(parents=True)
    (ledger.directory / "x.json").write_bytes(b"\xff\xfe{")
    with pytest.raises(LedgerError, match="is corrupt"):
        ledger.outstanding()


# --- heal -------------------------------------------------------------------------------------


def test_heal_replays_undo_and_removes_record(ledger: Ledger, tmp_path: Path) -> None:
    created = tmp_path / "created"
    removed = tmp_path / "removed"
    removed.write_text("x")
    rec = ledger.record("lab/t", plan(step("touch", str(created)), step("rm", "-f", str(removed))))
    logged: list[str] = []
    report = ledger.heal(rec, log=logged.append)
    assert report.ok
    assert report.failures == ()
    assert report.record == rec
    assert created.exists()
    assert not removed.exists()
    assert ledger.outstanding() == []
    assert logged == [f"[kubedrill] touch {created}", f"[kubedrill] rm -f {removed}"]

    again = ledger.heal(rec)  # replaying idempotent undo steps is safe
    assert again.ok


def test_heal_failure_keeps_record_and_runs_every_step(ledger: Ledger, tmp_path: Path) -> None:
    after = tmp_path / "after"
    rec = ledger.record(
        "lab/t",
        plan(
            step("sh", "-c", "echo oops >&2; exit 3"),
            step("false", ignore_errors=True),
            step("touch", str(after)),
        ),
    )
    report = ledger.heal(rec)
    assert not report.ok
    assert report.failures == ("[kubedrill] sh -c echo oops >&2; exit 3 exited 3: oops",)
    assert after.exists()  # heal does not stop at the first failure
    assert [r.id for r in ledger.outstanding()] == [rec.id]


def test_orphans_skip_live_other_owners(ledger: Ledger) -> None:
    mine = ledger.record("lab/t", plan(step("true"), name="mine"))
    live_other = ledger.record("lab/t", plan(step("true"), name="other"))
    dead = ledger.record("lab/t", plan(step("true"), name="dead"))
    set_owner(ledger, live_other, 1)
    set_owner(ledger, dead, dead_pid())
    assert sorted(r.fault for r in ledger.orphans()) == ["dead", "mine"]
    assert {r.id for r in ledger.outstanding()} == {mine.id, live_other.id, dead.id}


def test_heal_all_heals_only_orphans(ledger: Ledger, tmp_path: Path) -> None:
    healed = tmp_path / "healed"
    untouched = tmp_path / "untouched"
    orphan = ledger.record("lab/t", plan(step("touch", str(healed)), name="orphan"))
    owned = ledger.record("lab/t", plan(step("touch", str(untouched)), name="owned"))
    set_owner(ledger, orphan, dead_pid())
    set_owner(ledger, owned, 1)
    reports = ledger.heal_all()
    assert [(r.record.fault, r.ok) for r in reports] == [("orphan", True)]
    assert healed.exists()
    assert not untouched.exists()
    assert [r.id for r in ledger.outstanding()] == [owned.id]


def set_created(ledger: Ledger, rec: UndoRecord, wall: float) -> None:
    path = ledger.directory / f"{rec.id}.json"
    raw: dict[str, Any] = json.loads(path.read_text())
    raw["created_wall"] = wall
    path.write_text(json.dumps(raw))


def test_heal_all_heals_several_records_newest_first(ledger: Ledger, tmp_path: Path) -> None:
    """Several outstanding faults of a crashed run: each heals, the newest first (the order
    its nested faults would have healed in), whatever order their ids sort in."""
    log = tmp_path / "order"
    recs = {
        name: ledger.record("lab/t", plan(step("sh", "-c", f"echo {name} >> {log}"), name=name))
        for name in ("older", "newer", "newest")
    }
    for wall, name in enumerate(("older", "newer", "newest")):
        set_created(ledger, recs[name], 1000.0 + wall)
        set_owner(ledger, recs[name], dead_pid())
    reports = ledger.heal_all()
    assert [(r.record.fault, r.ok) for r in reports] == [
        ("newest", True),
        ("newer", True),
        ("older", True),
    ]
    assert log.read_text().split() == ["newest", "newer", "older"]
    assert ledger.outstanding() == []


def test_heal_all_a_failed_record_does_not_stop_the_others(ledger: Ledger, tmp_path: Path) -> None:
    healed = tmp_path / "healed"
    bad = ledger.record("lab/t", plan(step("false"), name="bad"))
    good = ledger.record("lab/t", plan(step("touch", str(healed)), name="good"))
    set_created(ledger, bad, 2000.0)  # the newest, so it is tried first
    set_created(ledger, good, 1000.0)
    for rec in (bad, good):
        set_owner(ledger, rec, dead_pid())
    reports = ledger.heal_all()
    assert [(r.record.fault, r.ok) for r in reports] == [("bad", False), ("good", True)]
    assert healed.exists()
    assert [r.id for r in ledger.outstanding()] == [bad.id]
    # Fixed by hand, a second `kubedrill heal` finds only the one left.
    assert [r.record.fault for r in ledger.heal_all()] == ["bad"]


def test_pid_alive() -> None:
    assert pid_alive(os.getpid())
    assert pid_alive(1)
    assert not pid_alive(dead_pid())


# --- run_steps --------------------------------------------------------------------------------


def test_run_steps_stops_on_first_error_by_default(tmp_path: Path) -> None:
    never = tmp_path / "never"
    failures = run_steps([step("true"), step("false"), step("touch", str(never))])
    assert failures == ["[kubedrill] false exited 1: "]
    assert not never.exists()


def test_run_steps_missing_program_and_timeout(tmp_path: Path) -> None:
    failures = run_steps(
        [step(str(tmp_path / "no-such-program")), step("sleep", "5", timeout=0.1)],
        stop_on_error=False,
    )
    assert len(failures) == 2
    assert failures[0].endswith(f"exited 127: not found: {tmp_path / 'no-such-program'}")
    assert failures[1] == "[kubedrill] sleep 5 exited 124: timed out after 0.1s"


def test_run_steps_unknown_transport_kind() -> None:
    odd = Step(TransportSpec("carrier-pigeon", "n1"), ("true",))
    with pytest.raises(LedgerError, match="no transport of kind 'carrier-pigeon'"):
        run_steps([odd])


def test_a_zombie_is_not_alive() -> None:
    proc = subprocess.Popen(["true"])
    _, exited = poll_until(
        lambda: Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z",
        bool,
        timeout=5,
        interval=0.01,
    )
    assert exited, "the child should be a zombie until reaped"
    assert not pid_alive(proc.pid)
    proc.wait()
