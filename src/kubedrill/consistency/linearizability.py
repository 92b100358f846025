"""Is a recorded history of puts, gets and compare-and-sets linearizable?

The search is porcupine's, run by the Go helper in tools/lincheck; this module converts the
history, runs the helper and turns its answer into a Verdict. The rules (the helper applies
them): a put or cas that failed or timed out may have been applied, so it may take effect at
any moment after its invocation, or never; a get that failed is dropped; an ok get of "" means
the key was absent. Keys are independent registers.
"""

from __future__ import annotations

import json
import math
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kubedrill.checks.verdict import Status, Verdict
from kubedrill.consistency.lincheck_build import ensure_lincheck
from kubedrill.errors import ConfigError
from kubedrill.workload.history import Operation

CHECK = "linearizability"
KINDS = ("put", "get", "cas")
OUTCOMES = ("ok", "fail", "unknown")
STATUS_OF_RESULT: dict[str, Status] = {"ok": "valid", "illegal": "invalid", "unknown": "unknown"}
# Beyond the search's own timeout: reading the history and writing the visualization.
HELPER_GRACE_SECONDS = 120.0


class HistoryError(ConfigError):
    """An operation the checker cannot interpret."""


def to_nanoseconds(seconds: float) -> int:
    return round(seconds * 1e9)


def helper_operation(index: int, op: Operation) -> dict[str, Any]:
    """One operation in the helper's JSON form; a bad field is a HistoryError naming it."""

    def bad(field: str, why: str) -> HistoryError:
        return HistoryError(
            f"operation {index} (client {op.client!r}, key {op.key!r}): {field} {why}",
            "record operations with kubedrill.workload clients, or fix the field",
        )

    if op.kind not in KINDS:
        raise bad("kind", f"{op.kind!r} is not one of {', '.join(KINDS)}")
    if op.outcome not in OUTCOMES:
        raise bad("outcome", f"{op.outcome!r} is not one of {', '.join(OUTCOMES)}")
    if not (math.isfinite(op.invoke) and math.isfinite(op.complete)):
        raise bad("invoke/complete", f"({op.invoke}, {op.complete}) are not finite seconds")
    if op.complete < op.invoke:
        raise bad("complete", f"{op.complete} is before invoke {op.invoke}")
    converted: dict[str, Any] = {
        "client_id": op.client,
        "kind": op.kind,
        "key": op.key,
        "value": op.value,
        "expected": op.expected,
        "invoke_ns": to_nanoseconds(op.invoke),
        "return_ns": to_nanoseconds(op.complete),
        "outcome": op.outcome,
    }
    if op.kind == "cas":
        converted["applied"] = op.applied
    return converted


# Answers that say a write was refused before it could apply: etcd checks the NOSPACE alarm
# (and the quota) before proposing a put or a txn, and again when applying it.
NOT_APPLIED = ("database space exceeded",)


def refused_everywhere(op: Operation) -> bool:
    """A failed put or cas that every member it was sent to refused with an answer that says
    it was not applied. Such a write changed nothing and returned nothing: leaving it out of
    the history is exact, where counting it as maybe applied (as any other failure) makes the
    search explode (a quota drill refuses dozens of writes: the check gave up after 10 s)."""
    if op.outcome != "fail" or op.kind not in ("put", "cas") or not op.error:
        return False
    return all(any(t in part for t in NOT_APPLIED) for part in op.error.split("; "))


def helper_history(ops: Sequence[Operation]) -> list[dict[str, Any]]:
    return [helper_operation(i, op) for i, op in enumerate(ops) if not refused_everywhere(op)]


def check_linearizable(
    ops: Sequence[Operation],
    *,
    timeout: float = 10.0,
    viz_path: Path | None = None,
    cache_dir: Path | None = None,
) -> Verdict:
    """Check `ops` for linearizability; `unknown` if the search takes longer than `timeout`
    seconds. `viz_path` gets porcupine's HTML visualization of the history."""
    if not (timeout > 0 and math.isfinite(timeout)):
        raise ConfigError(
            f"linearizability timeout {timeout!r} must be a positive number of seconds",
            "pass timeout=10.0 or another positive number",
        )
    history = helper_history(ops)
    if not history:
        return Verdict(check=CHECK, status="valid", detail="no operations", seconds=0.0)
    binary = ensure_lincheck(cache_dir)
    argv = [str(binary), f"-timeout={to_nanoseconds(timeout)}ns"]
    if viz_path is not None:
        viz_path.parent.mkdir(parents=True, exist_ok=True)
        argv.append(f"-viz={viz_path.resolve()}")
    started = time.monotonic()
    try:
        proc = subprocess.run(
            argv,
            input=json.dumps(history),
            capture_output=True,
            text=True,
            timeout=timeout + HELPER_GRACE_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return _checker_failed(
            f"the helper did not answer within {timeout + HELPER_GRACE_SECONDS:.0f} s", started
        )
    if proc.returncode != 0:
        return _checker_failed(
            f"the helper exited {proc.returncode}: {proc.stderr.strip()[-2000:]}", started
        )
    try:
        answer = json.loads(proc.stdout)
        status = STATUS_OF_RESULT[answer["result"]]
    except (ValueError, KeyError, TypeError) as exc:
        return _checker_failed(
            f"the helper's answer is unreadable ({exc}): {proc.stdout[:500]}", started
        )
    return Verdict(
        check=CHECK,
        status=status,
        detail=_detail(status, answer),
        figures=_figures(answer),
        seconds=round(time.monotonic() - started, 3),
    )


def _checker_failed(why: str, started: float) -> Verdict:
    # As in Jepsen: a checker that breaks decides nothing, and is never a pass.
    return Verdict(
        check=CHECK,
        status="unknown",
        detail=f"the linearizability checker failed: {why}",
        seconds=round(time.monotonic() - started, 3),
    )


def _detail(status: Status, answer: dict[str, Any]) -> str:
    if status == "valid":
        return (
            f"linearizable: {answer['ops']} operations on {answer['keys_checked']} keys "
            f"({answer['maybe_applied']} writes maybe applied, {answer['dropped_reads']} "
            "failed reads dropped)"
        )
    return str(answer.get("description", ""))


def _figures(answer: dict[str, Any]) -> dict[str, Any]:
    names = ("ops", "keys_checked", "maybe_applied", "dropped_reads", "key", "failing_keys")
    figures = {name: answer[name] for name in names if name in answer}
    figures["checker_seconds"] = round(float(answer.get("seconds", 0.0)), 3)
    if "visualization" in answer:
        figures["visualization"] = answer["visualization"]
    return figures
