"""etcd backend quota exhaustion (issue #13): fill etcd until the NOSPACE alarm, then the
recovery runbook of etcd's maintenance guide: compact to the current revision, defragment every
member, disarm the alarm.

The fill overwrites a few keys with large values, so what fills the backend is *history* (the
usual way a cluster gets there: auto-compaction off or too slow); compaction then frees it,
defragmentation gives it back to the file system, and the quota has room again. Filling
distinct live keys would leave nothing for the runbook to free.

Everything goes through etcd's JSON gateway (`EtcdClient.call`): no etcdctl, no certificates
to place, the same path on every target. The fill is bounded three ways (bytes written, puts,
wall time) and stops by itself at the first "database space exceeded" answer.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kubedrill.disaster.access_args import access_argv
from kubedrill.faults.base import FaultPlan
from kubedrill.probes.etcd import EtcdClient, EtcdError, b64, prefix_end
from kubedrill.probes.metrics import scraper_for
from kubedrill.transport.base import TransportSpec
from kubedrill.transport.step import Step

if TYPE_CHECKING:
    from kubedrill.cluster import Cluster

MiB = 1024**2
# The drill fills at most this much quota: a bigger one (the lab's default is 8 GiB) would
# take minutes of disk I/O on the machine that also times the drill. Labs for this drill set
# `lab.etcd.quota_backend_bytes` (fixtures/labs/quota-etcd.yaml: 16 MiB).
MAX_DRILL_QUOTA = 64 * MiB
NOSPACE_TEXT = "database space exceeded"  # etcdserver: mvcc: database space exceeded
QUOTA_METRIC = "etcd_server_quota_backend_bytes"
OWN_PREFIX = "/kubedrill/"  # the only keys a recovery deletes


@dataclass(frozen=True)
class FillPlan:
    """How to fill a quota: `keys` keys overwritten round-robin with `value_bytes` values,
    stopping at NOSPACE or after `max_bytes` written or `deadline_s` seconds."""

    quota_bytes: int
    value_bytes: int
    keys: int
    max_bytes: int
    deadline_s: float

    @property
    def max_puts(self) -> int:
        return max(1, self.max_bytes // self.value_bytes)


def fill_plan(quota_bytes: int, *, max_request_bytes: int = 1536 * 1024) -> FillPlan:
    """About 64 puts to reach the quota, each at most 1 MiB (and under etcd's request limit,
    1.5 MiB by default), at least 64 KiB. Up to 4x the quota written (bbolt pages and the
    freelist make the file grow faster than the values, never slower), within 2 minutes."""
    value = max(64 * 1024, min(MiB, quota_bytes // 64, max_request_bytes - 4096))
    return FillPlan(
        quota_bytes=quota_bytes,
        value_bytes=value,
        keys=4,
        max_bytes=4 * quota_bytes,
        deadline_s=120.0,
    )


def is_nospace(error: str) -> bool:
    return NOSPACE_TEXT in error


@dataclass(frozen=True)
class FillResult:
    puts: int
    bytes_written: int
    seconds: float
    stopped_by: str  # "nospace", "max_bytes", "deadline" or "errors"
    last_error: str | None = None

    @property
    def full(self) -> bool:
        return self.stopped_by == "nospace"


def fill_value(index: int, size: int) -> str:
    """A value of `size` bytes that differs per put (bbolt does not compress; the prefix only
    makes every revision distinct in a dump)."""
    head = f"fill-{index:08d}-"
    return head + "x" * (size - len(head))


def fill_until_nospace(
    etcd: EtcdClient,
    prefix: str,
    plan: FillPlan,
    *,
    clock: Callable[[], float] = time.monotonic,
    max_errors: int = 20,
) -> FillResult:
    """Overwrite `prefix`0..keys-1 with large values until a put is refused for space, or a
    bound is reached. Other errors (a slow member, a leader change) are retried up to
    `max_errors` times in a row."""
    started = clock()
    written = 0
    errors = 0
    last: str | None = None
    for index in range(plan.max_puts):
        if clock() - started > plan.deadline_s:
            return FillResult(index, written, clock() - started, "deadline", last)
        key = f"{prefix}{index % plan.keys}"
        try:
            etcd.put(key, fill_value(index, plan.value_bytes), timeout=10.0)
        except EtcdError as exc:
            last = str(exc)
            if is_nospace(last):
                return FillResult(index, written, clock() - started, "nospace", last)
            errors += 1
            if errors >= max_errors:
                return FillResult(index, written, clock() - started, "errors", last)
            continue
        errors = 0
        written += plan.value_bytes
    return FillResult(plan.max_puts, written, clock() - started, "max_bytes", last)


# -- alarms ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Alarm:
    member_id: str
    alarm: str  # NOSPACE, CORRUPT


def parse_alarms(data: Mapping[str, Any]) -> list[Alarm]:
    """The gateway's /v3/maintenance/alarm answer. etcd's JSON omits a zero enum, so an alarm
    with no `alarm` field is NONE (and not listed)."""
    return [
        Alarm(str(a.get("memberID", "")), str(a["alarm"]))
        for a in data.get("alarms") or []
        if a.get("alarm") not in (None, "NONE")
    ]


def alarms(etcd: EtcdClient, node: str | None = None) -> list[Alarm]:
    """`etcdctl alarm list`, through `node` or the first member that answers."""
    errors: list[str] = []
    for candidate in [node] if node else etcd.nodes:
        try:
            return parse_alarms(
                etcd.call(candidate, "/v3/maintenance/alarm", {"action": "GET", "alarm": "NONE"})
            )
        except EtcdError as exc:
            errors.append(str(exc))
    raise EtcdError("; ".join(errors))


def nospace_alarms(etcd: EtcdClient) -> str | None:
    """`NOSPACE on member <id>, ...` while a NOSPACE alarm is listed, else None."""
    found = nospace_raised(etcd)
    return ", ".join(f"{a.alarm} on member {a.member_id}" for a in found) if found else None


def nospace_raised(etcd: EtcdClient) -> list[Alarm] | None:
    """The NOSPACE alarms listed, or None while there is none."""
    found = [a for a in alarms(etcd) if a.alarm == "NOSPACE"]
    return found or None


# -- probes ----------------------------------------------------------------------------------


def write_refused(etcd: EtcdClient, key: str) -> str | None:
    """The error of a small put when it is refused for space, else None (accepted, or refused
    for another reason)."""
    try:
        etcd.put(key, "probe", timeout=2.0)
    except EtcdError as exc:
        return str(exc) if is_nospace(str(exc)) else None
    return None


def write_accepted(etcd: EtcdClient, key: str) -> int | None:
    """The revision of a small put, or None when it is refused."""
    try:
        return etcd.put(key, "probe", timeout=2.0)
    except EtcdError:
        return None


# -- the runbook -----------------------------------------------------------------------------


@dataclass
class RunbookStep:
    name: str
    seconds: float
    detail: str = ""


def timed_step(
    steps: list[RunbookStep], clock: Callable[[], float], name: str, action: Callable[[], str]
) -> RunbookStep:
    """Run `action` (it returns what it did), time it, and append the step to `steps`."""
    started = clock()
    detail = action()
    step = RunbookStep(name, clock() - started, detail)
    steps.append(step)
    return step


@dataclass
class Runbook:
    """`etcdctl compact <rev>`, `etcdctl defrag --cluster`, `etcdctl alarm disarm`, each timed."""

    etcd: EtcdClient
    clock: Callable[[], float] = time.monotonic
    steps: list[RunbookStep] = field(default_factory=list)

    def _timed(self, name: str, action: Callable[[], str]) -> RunbookStep:
        return timed_step(self.steps, self.clock, name, action)

    def compact(self) -> RunbookStep:
        """Compact to the current revision (physical: returns once every member's backend
        has dropped the old revisions, as `etcdctl compact --physical`)."""

        def run() -> str:
            revision = self.etcd.status(self._any_member()).revision
            self.etcd.call(
                self._any_member(),
                "/v3/kv/compaction",
                {"revision": revision, "physical": True},
                timeout=60.0,
            )
            return f"revision {revision}"

        return self._timed("compact", run)

    def defragment(self, nodes: Iterable[str] | None = None) -> RunbookStep:
        """Defragment each member in turn (a member does not serve while it defragments; one
        at a time keeps a quorum serving, as `etcdctl defrag` member by member)."""

        def run() -> str:
            sizes = []
            for node in nodes or self.etcd.nodes:
                before = self.db_size(node)
                self.etcd.call(node, "/v3/maintenance/defragment", {}, timeout=60.0)
                sizes.append(f"{node} {before / MiB:.1f} -> {self.db_size(node) / MiB:.1f} MiB")
            return ", ".join(sizes)

        return self._timed("defragment", run)

    def disarm(self) -> RunbookStep:
        """Deactivate every NOSPACE alarm (`etcdctl alarm disarm`)."""

        def run() -> str:
            members = []
            for alarm in alarms(self.etcd):
                if alarm.alarm != "NOSPACE":
                    continue
                self.etcd.call(
                    self._any_member(),
                    "/v3/maintenance/alarm",
                    {"action": "DEACTIVATE", "memberID": alarm.member_id, "alarm": "NOSPACE"},
                    timeout=10.0,
                )
                members.append(alarm.member_id)
            return f"{len(members)} alarm(s) disarmed"

        return self._timed("disarm", run)

    def plan(self) -> list[tuple[str, str, Callable[[], RunbookStep]]]:
        """The steps in order, each with what it does (for a drill's timeline and dry run)."""
        return [
            ("compact", "compact to the current revision", self.compact),
            ("defragment", "defragment every member, one at a time", self.defragment),
            ("disarm", "disarm every NOSPACE alarm", self.disarm),
        ]

    def run(self) -> list[RunbookStep]:
        for _name, _what, step in self.plan():
            step()
        return self.steps

    def db_size(self, node: str) -> int:
        """The member's backend file size (`dbSize` of its status)."""
        return int(self.etcd.call(node, "/v3/maintenance/status", {}).get("dbSize", 0))

    def _any_member(self) -> str:
        for node in self.etcd.nodes:
            try:
                self.etcd.status(node)
            except EtcdError:
                continue
            return node
        raise EtcdError("no etcd member answers")


def delete_prefix(etcd: EtcdClient, prefix: str) -> None:
    end = prefix_end(prefix)
    etcd.call(etcd.nodes[0], "/v3/kv/deleterange", {"key": b64(prefix), "range_end": b64(end)})


# -- the quota -------------------------------------------------------------------------------


def quota_from_samples(samples: Iterable[Mapping[tuple[str, Any], float]]) -> int | None:
    """The smallest `etcd_server_quota_backend_bytes` any member reports (None: none did)."""
    values = [
        value
        for member in samples
        for (name, _labels), value in member.items()
        if name == QUOTA_METRIC
    ]
    return int(min(values)) if values else None


def quota_skip_reason(quota: int | None, limit: int = MAX_DRILL_QUOTA) -> str | None:
    """Why a quota drill cannot run on this target, or None."""
    if quota is None:
        return f"no etcd member exposes {QUOTA_METRIC}: the quota is unknown"
    if quota > limit:
        return (
            f"etcd's backend quota is {quota / MiB:g} MiB, more than the {limit / MiB:g} MiB "
            "this drill fills; run it on a small-quota lab: "
            "--lab-config fixtures/labs/quota-etcd.yaml (make drill-disk)"
        )
    return None


def scrape_quota(cluster: Cluster) -> int | None:
    """Every etcd member's quota from its /metrics; the smallest."""
    scraper = scraper_for(cluster, node_conditions=False)
    try:
        results = scraper.scrape_all()
    finally:
        scraper.close()
    return quota_from_samples(r.samples for r in results if r.ok and r.target.job == "etcd")


def recover_step(cluster: Cluster, prefix: str) -> Step:
    """`kubedrill etcd recover-nospace` on the runner: the runbook if a NOSPACE alarm is still
    raised (it reads the revision and the alarms of the moment, so it is a command, not a
    list of fixed etcdctl lines), then the drill's keys deleted. Idempotent."""
    argv = (
        sys.executable,
        "-m",
        "kubedrill",
        "etcd",
        "recover-nospace",
        *access_argv(cluster.etcd),
        f"--delete-prefix={prefix}",
    )
    return Step(TransportSpec("local", "local"), argv, timeout=300.0)


@dataclass(frozen=True)
class ExhaustQuota:
    """The fault as the runner sees it: no command injects it (the drill fills etcd itself,
    through the gateway, and carries out the runbook itself, timed, while the fault is
    held); the undo is `recover_step`, which finds nothing to do after a drill that ran its
    runbook but repairs the cluster after one that failed or was killed (`kubedrill heal`).
    Marks the timeline (fault.injecting ... fault.healed) so the alert rules see it."""

    prefix: str = "/kubedrill/quota/"
    _quota: list[int] = field(default_factory=list)

    @property
    def name(self) -> str:
        return "exhaust etcd quota"

    def available(self, cluster: Cluster) -> str | None:
        quota = scrape_quota(cluster)
        reason = quota_skip_reason(quota)
        if reason is None and quota is not None:
            self._quota.append(quota)
        return reason

    @property
    def quota(self) -> int:
        return self._quota[-1]

    def plan(self, cluster: Cluster) -> FaultPlan:
        members = tuple(sorted(cluster.etcd.endpoints))
        return FaultPlan(
            name=self.name,
            victims=members,
            description="fill etcd past its backend quota with large overwrites "
            "(healed by the runbook: compact, defragment, disarm)",
            inject=(),
            undo=(recover_step(cluster, self.prefix),),
            data={"component": "etcd"},
        )


def recover(etcd: EtcdClient, prefix: str) -> str:
    """Best effort, for a drill's `finally`: the runbook if a NOSPACE alarm is still raised,
    then the drill's keys deleted. Never raises (it must not hide the drill's own failure);
    returns what it did or what failed."""
    done: list[str] = []
    try:
        if nospace_raised(etcd):
            steps = Runbook(etcd).run()
            done.append("runbook: " + ", ".join(s.name for s in steps))
        delete_prefix(etcd, prefix)
        done.append(f"deleted {prefix}")
    except EtcdError as exc:
        done.append(f"failed: {exc}")
    return "; ".join(done)
