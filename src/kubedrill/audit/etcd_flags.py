"""The etcd flags the seed recommends (its section 3.1 and the table in 3.2), read from every
member's real command line and judged against the seed's small- and large-cluster values.

| flag | etcd default | seed (small / large) |
| --heartbeat-interval | 100 ms | 100 / 200 ms |
| --election-timeout | 1000 ms | 1000 / 2000 ms |
| --quota-backend-bytes | 2 GiB | 4 / 8 GiB (the example: 8 GiB) |
| --snapshot-count | 100000 (3.5), 10000 (3.6) | 10000 / 5000 |
| --auto-compaction-retention | 0 (off) | 1h / 30m |

A value between the seed's two columns passes; a value near them warns; one far off fails
(a heartbeat above 500 ms or an election timeout above 5 s make a dead leader take that long to
replace; an election timeout under 5 heartbeats makes etcd itself refuse to start; a snapshot
count above 100000 keeps that many Raft entries in memory between snapshots).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from kubedrill.audit.finding import Judgement, Status, worst
from kubedrill.audit.flags import go_duration

GIB = 1024**3
FLAGS = (
    "heartbeat-interval",
    "election-timeout",
    "quota-backend-bytes",
    "snapshot-count",
    "auto-compaction-retention",
)
SEED = {
    "heartbeat-interval": "100",
    "election-timeout": "1000",
    "quota-backend-bytes": str(8 * GIB),
    "snapshot-count": "10000",
    "auto-compaction-retention": "1h",
}


@dataclass(frozen=True)
class FlagVerdict:
    flag: str
    value: str  # as found, or "<default>" (unset)
    status: Status
    why: str


def _int(flags: Mapping[str, str], name: str, default: int) -> tuple[int | None, str]:
    raw = flags.get(name)
    if raw is None:
        return default, f"unset (etcd default {default})"
    try:
        return int(raw), raw
    except ValueError:
        return None, raw


def snapshot_default(etcd_version: str | None) -> int:
    """etcd 3.6 lowered the default --snapshot-count from 100000 to 10000."""
    parts = (etcd_version or "").lstrip("v").split(".")
    try:
        major, minor = int(parts[0]), int(parts[1])
    except (ValueError, IndexError):
        return 100000  # unknown: assume the older, worse default
    return 10000 if (major, minor) >= (3, 6) else 100000


def band(
    flag: str, value: int, shown: str, ok: tuple[int, int], near: tuple[int, int], seed: str
) -> FlagVerdict:
    """pass inside `ok`, warn inside `near`, fail outside it."""
    if ok[0] <= value <= ok[1]:
        return FlagVerdict(flag, shown, "pass", f"seed: {seed}")
    if near[0] <= value <= near[1]:
        return FlagVerdict(flag, shown, "warn", f"seed: {seed}")
    return FlagVerdict(flag, shown, "fail", f"seed: {seed}; far outside it")


def judge_election(et: int, shown: str, hb: int | None) -> FlagVerdict:
    flag = "election-timeout"
    if hb and et < 5 * hb:
        return FlagVerdict(flag, shown, "fail", "under 5x the heartbeat: etcd refuses to start")
    found = band(flag, et, shown, (1000, 2000), (500, 5000), "1000-2000 ms")
    if found.status == "pass" and hb and et < 10 * hb:
        return FlagVerdict(flag, shown, "warn", "seed: 1000-2000 ms; etcd advises 10x heartbeat")
    return found


def judge_member(flags: Mapping[str, str], etcd_version: str | None = None) -> list[FlagVerdict]:
    """Every seed flag of one member's command line, judged."""
    out: list[FlagVerdict] = []
    hb, shown = _int(flags, "heartbeat-interval", 100)
    out.append(
        band("heartbeat-interval", hb, shown, (100, 200), (50, 500), "100-200 ms")
        if hb is not None
        else FlagVerdict("heartbeat-interval", shown, "fail", "not a number")
    )
    et, shown = _int(flags, "election-timeout", 1000)
    out.append(
        judge_election(et, shown, hb)
        if et is not None
        else FlagVerdict("election-timeout", shown, "fail", "not a number")
    )
    quota, shown = _int(flags, "quota-backend-bytes", 0)
    if quota is None:
        out.append(FlagVerdict("quota-backend-bytes", shown, "fail", "not a number"))
    else:
        effective = quota if quota > 0 else 2 * GIB  # 0: etcd's default, 2 GiB
        gib = f"{effective / GIB:g} GiB"
        ok = 4 * GIB <= effective <= 8 * GIB
        status: Status = "pass" if ok else "warn"
        out.append(FlagVerdict("quota-backend-bytes", shown, status, f"{gib}; seed: 4-8 GiB"))
    count, shown = _int(flags, "snapshot-count", snapshot_default(etcd_version))
    out.append(
        band("snapshot-count", count, shown, (5000, 10000), (1000, 100000), "5000-10000")
        if count is not None
        else FlagVerdict("snapshot-count", shown, "fail", "not a number")
    )
    out.append(judge_compaction(flags))
    return out


def judge_compaction(flags: Mapping[str, str]) -> FlagVerdict:
    name = "auto-compaction-retention"
    raw = flags.get(name)
    mode = flags.get("auto-compaction-mode", "periodic")
    note = "kube-apiserver compacts every 5 min itself (--etcd-compaction-interval)"
    if raw is None or raw.strip() in ("", "0"):
        shown = "unset (etcd default 0: off)" if raw is None else raw
        return FlagVerdict(name, shown, "warn", f"seed: 1h / 30m; off here ({note})")
    if mode == "revision":
        return FlagVerdict(name, f"{raw} (revision mode)", "warn", "seed: periodic, 1h / 30m")
    # In periodic mode a bare number is hours.
    seconds = float(raw) * 3600 if raw.replace(".", "", 1).isdigit() else go_duration(raw)
    if seconds is None:
        return FlagVerdict(name, raw, "fail", "not a duration")
    if 1800 <= seconds <= 3600:
        return FlagVerdict(name, raw, "pass", "seed: 30m-1h")
    return FlagVerdict(name, raw, "warn", "seed: 30m-1h")


def judge_members(
    members: Mapping[str, Mapping[str, str]],
    sources: Mapping[str, str],
    unreadable: Sequence[str] = (),
    etcd_version: str | None = None,
) -> Judgement:
    """Every member's flags (node -> flags), where they were read (node -> source)."""
    if not members:
        return Judgement(
            "warn",
            "no etcd member's command line could be read" + _unreadable(unreadable),
            "make the members' command lines readable to kubedrill (static pod manifest, "
            "/proc, the inventory's host manager)",
        )
    verdicts = {node: judge_member(flags, etcd_version) for node, flags in members.items()}
    statuses = [v.status for vs in verdicts.values() for v in vs]
    if unreadable:
        statuses.append("warn")
    status = worst(statuses)
    details: list[str] = []
    for flag in FLAGS:
        by_value: dict[tuple[str, Status, str], list[str]] = {}
        for node, vs in sorted(verdicts.items()):
            v = next(x for x in vs if x.flag == flag)
            by_value.setdefault((v.value, v.status, v.why), []).append(node)
        for (value, st, why), nodes in by_value.items():
            details.append(f"{st.upper():4s} --{flag}={value} on {', '.join(nodes)} ({why})")
    details += [f"from {node}: {src}" for node, src in sorted(sources.items())]
    off = [d for d in details if d.startswith(("FAIL", "WARN"))]
    if status == "pass":
        first = {v.flag: v.value for v in verdicts[min(members)]}
        evidence = f"{len(members)} members: " + " ".join(f"--{f}={first[f]}" for f in FLAGS)
        return Judgement("pass", evidence, "", tuple(details))
    bad_flags = sorted(
        {v.flag for vs in verdicts.values() for v in vs if v.status == status}, key=FLAGS.index
    )
    evidence = "; ".join(o[5:] for o in off[:3]) + (
        f" (+{len(off) - 3} more)" if len(off) > 3 else ""
    )
    evidence += _unreadable(unreadable)
    fix = (
        "set "
        + ", ".join(f"--{f}={SEED[f]}" for f in bad_flags)
        + " on every member (the seed's section 3), one member at a time"
        if bad_flags
        else "make every member's command line readable"
    )
    return Judgement(status, evidence, fix, tuple(details))


def _unreadable(nodes: Sequence[str]) -> str:
    return f"; command line unreadable on {', '.join(nodes)}" if nodes else ""
