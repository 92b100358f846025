"""The linearizability check, run through the real porcupine helper (built once, cached)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from kubedrill.consistency import Verdict, check_linearizable
from kubedrill.consistency.lincheck_build import SOURCE_DIR, build_key, ensure_lincheck
from kubedrill.consistency.linearizability import HistoryError, helper_history, to_nanoseconds
from kubedrill.errors import ConfigError, MissingBinaryError
from kubedrill.workload.history import Operation


@pytest.fixture(scope="session")
def lincheck() -> Path:
    try:
        return ensure_lincheck()
    except MissingBinaryError:
        if shutil.which("go") is None:
            pytest.skip("the lincheck helper is not built and Go is not installed to build it")
        raise


def put(
    client: str, value: str, invoke: float, complete: float, outcome: str = "ok", key: str = "r"
) -> Operation:
    return Operation(client, "put", key, value, invoke, complete, outcome)


def get(
    client: str, value: str, invoke: float, complete: float, outcome: str = "ok", key: str = "r"
) -> Operation:
    return Operation(client, "get", key, value, invoke, complete, outcome)


def cas(
    client: str,
    expected: str,
    new: str,
    invoke: float,
    complete: float,
    *,
    applied: bool = True,
    outcome: str = "ok",
) -> Operation:
    return Operation(
        client, "cas", "r", new, invoke, complete, outcome, expected=expected, applied=applied
    )


def check(ops: list[Operation], lincheck: Path) -> Verdict:
    assert lincheck.exists()
    return check_linearizable(ops)


# --- pure conversion -----------------------------------------------------------------------


def test_conversion_to_helper_json() -> None:
    converted = helper_history(
        [put("w1", "1", 0.5, 1.25), cas("c", "1", "2", 2.0, 2.000000001, applied=False)]
    )
    assert converted == [
        {
            "client_id": "w1",
            "kind": "put",
            "key": "r",
            "value": "1",
            "expected": "",
            "invoke_ns": 500_000_000,
            "return_ns": 1_250_000_000,
            "outcome": "ok",
        },
        {
            "client_id": "c",
            "kind": "cas",
            "key": "r",
            "value": "2",
            "expected": "1",
            "invoke_ns": 2_000_000_000,
            "return_ns": 2_000_000_001,
            "outcome": "ok",
            "applied": False,
        },
    ]


def test_nanoseconds_round_not_truncate() -> None:
    assert to_nanoseconds(0.3) == 300_000_000  # 0.3 * 1e9 is 299999999.99999994
    assert to_nanoseconds(123.456789012) == 123_456_789_012


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        (Operation("c", "delete", "k", "", 0, 1, "ok"), "kind 'delete'"),
        (Operation("c", "put", "k", "", 0, 1, "timeout"), "outcome 'timeout'"),
        (Operation("c", "put", "k", "", 2, 1, "ok"), "complete 1 is before invoke 2"),
        (Operation("c", "put", "k", "", float("nan"), 1, "ok"), "are not finite"),
    ],
)
def test_bad_operation_is_named(bad: Operation, named: str) -> None:
    with pytest.raises(HistoryError, match=re.escape(named)) as info:
        helper_history([put("w", "1", 0, 1), bad])
    assert "operation 1 (client 'c', key 'k')" in str(info.value)


def test_timeout_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="timeout 0"):
        check_linearizable([put("w", "1", 0, 1)], timeout=0)


def test_empty_history_is_valid_without_the_helper() -> None:
    verdict = check_linearizable([])
    assert (verdict.status, verdict.detail) == ("valid", "no operations")


def test_verdict_to_dict() -> None:
    verdict = Verdict(check="x", status="unknown", detail="d", figures={"ops": 1}, seconds=0.5)
    assert verdict.to_dict() == {
        "check": "x",
        "status": "unknown",
        "detail": "d",
        "figures": {"ops": 1},
        "seconds": 0.5,
    }
    assert not verdict.valid


def test_build_key_follows_the_source() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "lincheck"
        shutil.copytree(SOURCE_DIR, copy)
        before = build_key(copy)
        assert before == build_key(SOURCE_DIR)
        main = copy / "main.go"
        main.write_text(main.read_text() + "\n// changed\n")
        assert build_key(copy) != before
        (copy / "go.sum").unlink()
        with pytest.raises(MissingBinaryError, match=r"lacks go\.sum"):
            build_key(copy)


def test_missing_go_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    with tempfile.TemporaryDirectory() as cache, pytest.raises(MissingBinaryError) as info:
        ensure_lincheck(Path(cache))
    assert "needs the Go toolchain" in info.value.message
    assert "install Go" in info.value.hint


def test_missing_source_is_a_clear_error() -> None:
    with tempfile.TemporaryDirectory() as tmp, pytest.raises(MissingBinaryError) as info:
        ensure_lincheck(Path(tmp), source=Path(tmp) / "tools" / "lincheck")
    assert "lacks go.mod, go.sum, main.go" in info.value.message
    assert "reinstall kubedrill" in info.value.hint


# --- the real checker ----------------------------------------------------------------------


def test_concurrent_history_is_valid(lincheck: Path) -> None:
    ops = [
        put("w1", "1", 0.0, 1.0),
        put("w2", "2", 0.5, 1.5),  # concurrent with w1's put and with r1's read
        get("r1", "1", 1.1, 1.3),  # the put of "2" may not have taken effect yet
        get("r2", "2", 2.0, 2.1),
        put("w1", "3", 3.0, 4.0),
        get("r1", "2", 3.1, 3.2),  # concurrent with the put of "3"
        get("r2", "3", 4.5, 4.6),
    ]
    verdict = check(ops, lincheck)
    assert verdict.status == "valid", verdict.detail
    assert verdict.figures["ops"] == 7
    assert verdict.figures["keys_checked"] == 1


def test_stale_read_is_invalid(lincheck: Path) -> None:
    ops = [
        put("w", "1", 0.0, 1.0),
        put("w", "2", 2.0, 3.0),
        get("r1", "2", 3.5, 3.6),
        get("r2", "1", 4.0, 4.1),  # the value went back in time
    ]
    verdict = check(ops, lincheck)
    assert verdict.status == "invalid"
    assert verdict.figures["key"] == "r"
    assert 'get() -> "1" by r2' in verdict.detail


def test_lost_acknowledged_write_is_invalid(lincheck: Path) -> None:
    ops = [
        put("w", "1", 0.0, 1.0),
        put("w", "2", 2.0, 3.0),  # acknowledged ...
        get("r", "1", 5.0, 5.1),  # ... but never seen, with no concurrent write
        get("r", "1", 6.0, 6.1),
    ]
    verdict = check(ops, lincheck)
    assert verdict.status == "invalid"
    assert '2 of its 4 operations linearize (value then "2")' in verdict.detail


@pytest.mark.parametrize("outcome", ["fail", "unknown"])
def test_maybe_applied_put_may_be_read_later(lincheck: Path, outcome: str) -> None:
    ops = [put("w", "1", 0.0, 1.0), put("w", "2", 2.0, 3.0, outcome), get("r", "2", 10.0, 10.1)]
    verdict = check(ops, lincheck)
    assert verdict.status == "valid", verdict.detail
    assert verdict.figures["maybe_applied"] == 1


@pytest.mark.parametrize("outcome", ["fail", "unknown"])
def test_maybe_applied_put_never_read(lincheck: Path, outcome: str) -> None:
    ops = [put("w", "1", 0.0, 1.0), put("w", "2", 2.0, 3.0, outcome), get("r", "1", 10.0, 10.1)]
    assert check(ops, lincheck).status == "valid"


def test_maybe_applied_put_once_seen_stays(lincheck: Path) -> None:
    ops = [
        put("w", "1", 0.0, 1.0),
        put("w", "2", 2.0, 3.0, "unknown"),
        get("r", "2", 10.0, 10.1),
        get("r", "1", 11.0, 11.1),  # it cannot have been applied and then un-applied
    ]
    assert check(ops, lincheck).status == "invalid"


def test_failed_reads_are_dropped(lincheck: Path) -> None:
    ops = [put("w", "1", 0.0, 1.0), get("r", "never written", 2.0, 3.0, "fail")]
    verdict = check(ops, lincheck)
    assert verdict.status == "valid"
    assert verdict.figures["dropped_reads"] == 1
    answered = [ops[0], get("r", "never written", 2.0, 3.0)]
    assert check(answered, lincheck).status == "invalid"


def test_read_of_absent_key_is_empty(lincheck: Path) -> None:
    assert check([get("r", "", 0, 1), put("w", "1", 2, 3)], lincheck).status == "valid"
    assert check([put("w", "1", 0, 1), get("r", "", 2, 3)], lincheck).status == "invalid"


def test_cas_semantics(lincheck: Path) -> None:
    start = [put("init", "a", 0.0, 1.0)]
    right = [
        cas("c1", "a", "b", 2.0, 3.0),  # compare holds: written
        cas("c2", "a", "c", 4.0, 5.0, applied=False),  # compare fails: nothing written
        get("r", "b", 6.0, 7.0),
    ]
    assert check(start + right, lincheck).status == "valid"
    applied_wrongly = [cas("c1", "x", "b", 2.0, 3.0)]  # the value was "a", not "x"
    assert check(start + applied_wrongly, lincheck).status == "invalid"
    failed_wrongly = [cas("c1", "a", "b", 2.0, 3.0, applied=False)]  # the value was "a"
    assert check(start + failed_wrongly, lincheck).status == "invalid"
    not_written = [cas("c1", "a", "b", 2.0, 3.0, applied=False), get("r", "b", 4.0, 5.0)]
    assert check(start + not_written, lincheck).status == "invalid"


@pytest.mark.parametrize("read", ["a", "b"])
def test_unknown_cas_may_or_may_not_apply(lincheck: Path, read: str) -> None:
    ops = [
        put("init", "a", 0.0, 1.0),
        cas("c", "a", "b", 2.0, 3.0, outcome="unknown"),
        get("r", read, 4.0, 5.0),
    ]
    assert check(ops, lincheck).status == "valid"


def test_keys_are_checked_apart_and_the_smallest_failure_named(lincheck: Path) -> None:
    ops = [
        put("w", "1", 0.0, 1.0, key="fine"),
        get("r", "1", 2.0, 3.0, key="fine"),
        # "big" fails with 4 operations, "small" with 2: the report names "small".
        put("w", "1", 0.0, 1.0, key="big"),
        put("w", "2", 1.5, 1.8, key="big"),
        get("r", "2", 2.0, 3.0, key="big"),
        get("r", "1", 4.0, 5.0, key="big"),
        put("w", "1", 0.0, 1.0, key="small"),
        get("r", "0", 2.0, 3.0, key="small"),
    ]
    verdict = check(ops, lincheck)
    assert verdict.status == "invalid"
    assert verdict.figures["keys_checked"] == 3
    assert verdict.figures["failing_keys"] == 2
    assert verdict.figures["key"] == "small"
    assert verdict.detail.startswith('key "small"')
    fine = [op for op in ops if op.key == "fine"]
    assert check(fine, lincheck).status == "valid"


def test_search_too_large_for_the_timeout_is_unknown(lincheck: Path) -> None:
    # 40 overlapping puts and a read of a value none wrote: refuting it means trying every
    # subset of the puts (2^40), far beyond 50 ms.
    ops = [put(f"w{i}", str(i), 0.0, 10.0) for i in range(40)]
    ops.append(get("r", "never written", 0.0, 10.0))
    assert lincheck.exists()
    verdict = check_linearizable(ops, timeout=0.05)
    assert verdict.status == "unknown"
    assert "did not finish within 50ms" in verdict.detail


def test_visualization_is_written(lincheck: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        viz = Path(tmp) / "sub" / "history.html"
        ops = [put("w", "1", 0.0, 1.0), get("r", "1", 2.0, 3.0)]
        verdict = check_linearizable(ops, viz_path=viz)
        assert verdict.figures["visualization"] == str(viz)
        html = viz.read_text()
        assert "<html" in html
        assert "client r" in html  # our operation metadata is in the page's data


def test_helper_rejects_bad_input_with_a_clear_error(lincheck: Path) -> None:
    ok_cas_without_applied: dict[str, object] = {"client_id": "c", "kind": "cas", "key": "k"}
    ok_cas_without_applied |= {"value": "v", "expected": "e", "invoke_ns": 0, "return_ns": 1}
    ok_cas_without_applied["outcome"] = "ok"
    bad = [ok_cas_without_applied]
    proc = subprocess.run([str(lincheck)], input=json.dumps(bad), capture_output=True, text=True)
    assert proc.returncode == 2
    assert 'an ok cas must say in "applied"' in proc.stderr
    proc = subprocess.run([str(lincheck)], input="{", capture_output=True, text=True)
    assert proc.returncode == 2
    assert "not a JSON list of operations" in proc.stderr


def test_build_is_cached_by_source(lincheck: Path) -> None:
    messages: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "src"
        shutil.copytree(SOURCE_DIR, source)
        built = ensure_lincheck(Path(tmp) / "cache", messages.append, source)
        assert built == Path(tmp) / "cache" / "bin" / build_key(source) / "lincheck"
        assert ensure_lincheck(Path(tmp) / "cache", messages.append, source) == built
        assert [m.split()[0] for m in messages] == ["building", "built"]  # once
        assert sorted(p.name for p in built.parent.parent.iterdir()) == [built.parent.name]


def test_writes_refused_for_space_everywhere_are_left_out() -> None:
    """A put every member refused with NOSPACE was not applied: it is not in the history. One
    refused for another reason on any attempt may have applied: it stays (maybe applied)."""
    nospace = "etcdserver: mvcc: database space exceeded"
    refused = Operation(
        "w", "put", "r", "2", 1, 2, "fail", error=f"etcd-1: {nospace}; etcd-2: {nospace}"
    )
    mixed = Operation(
        "w", "put", "r", "3", 3, 4, "fail", error=f"etcd-1: leader changed; etcd-2: {nospace}"
    )
    timed_out = Operation("w", "put", "r", "4", 5, 6, "unknown", error=f"etcd-1: {nospace}")
    history = helper_history([put("w", "1", 0, 1), refused, mixed, timed_out])
    assert [op["value"] for op in history] == ["1", "3", "4"]
