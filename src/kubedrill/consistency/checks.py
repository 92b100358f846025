"""Checks over recorded histories and the cluster's final state. Pure functions: the state they
compare against is read by the caller, so every check is unit-testable with made-up histories."""

from __future__ import annotations

import bisect
import itertools
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from kubedrill.checks.verdict import Status, Verdict
from kubedrill.workload.etcd_watch import Resume, WatchEvent
from kubedrill.workload.history import Operation, longest_unavailability


def verdict(
    check: str,
    status: Status,
    detail: str,
    figures: dict[str, Any] | None = None,
    seconds: float = 0.0,
) -> Verdict:
    return Verdict(
        check=check, status=status, detail=detail, figures=figures or {}, seconds=seconds
    )


def is_applied_write(op: Operation) -> bool:
    """An acknowledged put, or an acknowledged compare-and-set whose compare held."""
    return op.ok and op.applied and op.kind in ("put", "cas")


def acknowledged_writes_present(
    check: str, ops: Sequence[Operation], stored: Mapping[str, str]
) -> Verdict:
    """Every put a client saw acknowledged is stored with the value it wrote."""
    started = time.perf_counter()
    acked = {op.key: op.value for op in ops if op.kind == "put" and op.ok}
    lost = sorted(k for k, v in acked.items() if stored.get(k) != v)
    maybe = [op for op in ops if op.kind == "put" and not op.ok]
    figures = {
        "acknowledged": len(acked),
        "lost": len(lost),
        "unacknowledged": len(maybe),
        "unacknowledged_but_applied": sum(1 for op in maybe if stored.get(op.key) == op.value),
    }
    seconds = time.perf_counter() - started
    if lost:
        shown = ", ".join(f"{k} (stored {stored.get(k)!r}, acked {acked[k]!r})" for k in lost[:5])
        return verdict(
            check, "invalid", f"{len(lost)} acknowledged writes lost: {shown}", figures, seconds
        )
    if not acked:
        return verdict(check, "unknown", "no write was acknowledged", figures, seconds)
    return verdict(
        check, "valid", f"all {len(acked)} acknowledged writes are stored", figures, seconds
    )


def revisions_never_backwards(
    check: str, ops: Sequence[Operation], *, per_key: bool = False
) -> Verdict:
    """An operation that began after another one completed must not see an older revision.

    etcd's responses carry the store's revision, and reads and writes are linearizable, so the
    revision never goes backwards in real time across all keys. The Kubernetes API returns an
    object's own resourceVersion (its last change), which only orders changes to that object:
    check those `per_key`.
    """
    started = time.perf_counter()
    if per_key:
        by_key: dict[str, list[Operation]] = {}
        for op in ops:
            by_key.setdefault(op.key, []).append(op)
        keys = sorted(by_key)
        parts = [revisions_never_backwards(check, by_key[k]) for k in keys]
        problems = [v.detail for v in parts if v.status == "invalid"]
        figures = {
            "operations": sum(int(v.figures.get("operations", 0)) for v in parts),
            "went_backwards": sum(int(v.figures.get("went_backwards", 0)) for v in parts),
            "keys": len(keys),
        }
        seconds = time.perf_counter() - started
        if problems:
            return verdict(check, "invalid", "; ".join(problems[:3]), figures, seconds)
        if not figures["operations"]:
            return verdict(check, "unknown", "no operation returned a revision", figures, seconds)
        return verdict(
            check,
            "valid",
            f"{figures['operations']} versions over {len(keys)} objects, none went backwards",
            figures,
            seconds,
        )
    seen = sorted((op for op in ops if op.ok and op.revision > 0), key=lambda o: o.complete)
    completes = [op.complete for op in seen]
    # running maximum of the revisions of operations completed so far, in completion order
    running: list[tuple[int, Operation]] = []
    best: tuple[int, Operation] | None = None
    for op in seen:
        if best is None or op.revision > best[0]:
            best = (op.revision, op)
        running.append(best)
    backwards: list[str] = []
    for op in seen:
        done_before = bisect.bisect_left(completes, op.invoke)
        if done_before == 0:
            continue
        highest, witness = running[done_before - 1]
        if op.revision < highest:
            backwards.append(
                f"{op.client} {op.kind} {op.key} at {op.invoke:.3f}s saw revision {op.revision} "
                f"after {witness.client} had seen {highest}"
            )
    figures = {"operations": len(seen), "went_backwards": len(backwards)}
    seconds = time.perf_counter() - started
    if backwards:
        return verdict(check, "invalid", "; ".join(backwards[:3]), figures, seconds)
    if not seen:
        return verdict(check, "unknown", "no operation returned a revision", figures, seconds)
    return verdict(check, "valid", f"{len(seen)} revisions, none went backwards", figures, seconds)


def watch_complete(
    check: str,
    events: Sequence[WatchEvent],
    resumes: Sequence[Resume],
    errors: Sequence[str],
    *,
    start_revision: int,
    stored: Mapping[str, tuple[str, int]],
    acknowledged: Sequence[Operation],
) -> Verdict:
    """The watch saw every change under its prefix exactly once, in revision order.

    `stored` is the prefix's final state (key -> (value, mod_revision)): each key last modified
    at or after `start_revision` must have been delivered with that revision and value, as must
    every acknowledged write. Resumes are fine as long as they lost and repeated nothing.
    """
    started = time.perf_counter()
    seen = Counter((ev.key, ev.mod_revision) for ev in events)
    duplicates = sorted(k for k, n in seen.items() if n > 1)
    out_of_order = [
        (a.mod_revision, b.mod_revision)
        for a, b in itertools.pairwise(events)
        if b.mod_revision < a.mod_revision
    ]
    delivered = {(ev.key, ev.mod_revision): ev.value for ev in events}
    watched_to = max((ev.mod_revision for ev in events), default=start_revision - 1)
    expected = {
        (key, rev): value
        for key, (value, rev) in stored.items()
        if start_revision <= rev <= watched_to
    }
    expected.update(
        {
            (op.key, op.revision): op.value
            for op in acknowledged
            if is_applied_write(op) and start_revision <= op.revision <= watched_to
        }
    )
    missing = sorted(k for k, v in expected.items() if delivered.get(k) != v)
    behind = [op for op in acknowledged if is_applied_write(op) and op.revision > watched_to]
    compacted = [e for e in errors if "compact" in e]
    figures = {
        "events": len(events),
        "resumes": max(0, len(resumes) - 1),
        "duplicates": len(duplicates),
        "out_of_order": len(out_of_order),
        "missing": len(missing),
        "watched_to_revision": watched_to,
    }
    seconds = time.perf_counter() - started
    if duplicates or out_of_order or missing:
        parts = []
        if missing:
            parts.append(f"{len(missing)} changes never delivered, e.g. {missing[:3]}")
        if duplicates:
            parts.append(f"{len(duplicates)} delivered twice, e.g. {duplicates[:3]}")
        if out_of_order:
            parts.append(f"{len(out_of_order)} out of revision order, e.g. {out_of_order[:3]}")
        return verdict(check, "invalid", "; ".join(parts), figures, seconds)
    if compacted:
        return verdict(
            check, "unknown", f"the watch could not resume: {compacted[0]}", figures, seconds
        )
    if behind:
        return verdict(
            check,
            "unknown",
            f"the watch never caught up: {len(behind)} acknowledged writes after revision "
            f"{watched_to} not delivered yet",
            figures,
            seconds,
        )
    if not events:
        return verdict(check, "unknown", "the watch delivered nothing", figures, seconds)
    resumed = figures["resumes"]
    return verdict(
        check,
        "valid",
        f"{len(events)} changes delivered once each, in order"
        + (f", across {resumed} resumes" if resumed else ""),
        figures,
        seconds,
    )


def unavailability_by_client(ops: Sequence[Operation]) -> dict[str, dict[str, float | int]]:
    """Per client: operations, failures, and the longest run of failed operations (seconds)."""
    out: dict[str, dict[str, float | int]] = {}
    for client in sorted({op.client for op in ops}):
        mine = [op for op in ops if op.client == client]
        window = longest_unavailability(mine)
        out[client] = {
            "operations": len(mine),
            "failed": sum(op.outcome == "fail" for op in mine),
            "unknown": sum(op.outcome == "unknown" for op in mine),
            "longest_unavailable_s": round(window.seconds, 3) if window else 0.0,
        }
    return out
