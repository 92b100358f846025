"""Clock sync: each node's clock against the runner's. The lab's hosts (network namespaces)
and kind's nodes (containers) run on the runner's own kernel clock: one clock, nothing to
measure. Over SSH the offset is measured (`date +%s.%N`, the shortest of 3 round trips wins,
kubedrill.server_record.clock).

Judged: an offset surely over 1 s fails (etcd's own peer probe warns of clock drift past 1 s,
and Lease expiry is judged on each node's clock); one possibly over 100 ms warns.
"""

from __future__ import annotations

from collections.abc import Mapping

from kubedrill.audit.finding import Judgement
from kubedrill.server_record.clock import Offset

FAIL_S = 1.0
WARN_S = 0.1


def judge_offsets(offsets: Mapping[str, Offset | None]) -> Judgement:
    if not offsets:
        return Judgement("skip", "no nodes to measure")
    unknown = sorted(n for n, o in offsets.items() if o is None)
    known = {n: o for n, o in offsets.items() if o is not None}
    details = tuple(
        f"{n}: {o.seconds * 1000:+.1f} ms (+/- {o.uncertainty * 1000:.1f} ms)"
        for n, o in sorted(known.items())
    ) + tuple(f"{n}: not measurable" for n in unknown)
    surely_off = sorted(n for n, o in known.items() if abs(o.seconds) - o.uncertainty > FAIL_S)
    maybe_off = sorted(n for n, o in known.items() if abs(o.seconds) + o.uncertainty > WARN_S)
    largest = max(known.items(), key=lambda kv: abs(kv[1].seconds), default=None)
    summary = (
        f"largest offset {largest[0]} {largest[1].seconds * 1000:+.1f} ms "
        f"(+/- {largest[1].uncertainty * 1000:.1f} ms) over {len(known)} nodes"
        if largest
        else "no offset measured"
    )
    fix = "run NTP (chrony or systemd-timesyncd) on every node against the same servers"
    if surely_off:
        return Judgement(
            "fail", f"off by more than {FAIL_S:g} s: {', '.join(surely_off)}; {summary}", fix,
            details,
        )  # fmt: skip
    if unknown:
        return Judgement("warn", f"cannot measure {', '.join(unknown)}; {summary}", fix, details)
    if maybe_off:
        return Judgement(
            "warn", f"off by more than {WARN_S * 1000:.0f} ms: {', '.join(maybe_off)}; {summary}",
            fix, details,
        )  # fmt: skip
    return Judgement("pass", summary, "", details)


def shared_clock(target: str, nodes: int) -> Judgement:
    what = "network namespaces" if target == "lab" else "containers"
    return Judgement(
        "pass",
        f"the {nodes} {target} nodes are {what} on the runner's own kernel: one clock, "
        "offset 0 by construction",
    )
