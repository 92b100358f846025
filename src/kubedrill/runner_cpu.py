"""What the runner itself costs in CPU, per thread category, over a drill and over its phases.

The runner shares its (often 2-core) machine with the lab whose timing it measures, so its own
CPU is a figure of the drill: `measuring` (probes, pollers, watches, metrics scraping, this
sampler) must stay small while a fault is held; `workload` (the consistency workload's and the
drill's own clients) is reported next to its request rate; `other` is the main thread (which
also runs `wait_for` polls) and everything unnamed.

Linux only: per-thread utime+stime from /proc/self/task/<tid>/stat, sampled every `interval`
seconds by a thread of its own. A thread that ends is kept with its last sample; what it used
after that sample (and threads that lived less than an interval) shows as `unattributed`: the
process total from /proc/self/stat (which includes ended threads) minus every thread's share.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubedrill.timeline import Timeline

CATEGORIES = ("measuring", "workload", "other")
# The bound for the measuring machinery while a fault is held, in % of one core.
MEASURING_BUDGET_PCT = 5.0
SAMPLER_THREAD = "runner-cpu"

# Thread-name prefixes, first match wins. Workload clients' threads are named
# "workload/<client>" (workload/background.py, workload/etcd_watch.py): their client names
# ("etcd-watch", "writer-1") would otherwise collide with the drill's "watch-<event>" pollers.
MEASURING_PREFIXES = (
    SAMPLER_THREAD,
    # The drill body: while a fault is held it polls (wait_for, hold); that is measuring.
    "MainThread",
    "metrics",  # the recorder's thread and its scrape pool (probes/metrics.py)
    "etcd-probe",  # EtcdClient's fan-out pool (leader_view, hashkv, ...)
    "watch-",  # Drill.watch pollers
    "probe",
    "poll",
    "timeline",
)
WORKLOAD_PREFIXES = ("workload/",)

# ThreadPoolExecutor's workers are "<prefix>_<n>": one row per pool in the per-thread figures.
_POOL_WORKER = re.compile(r"_\d+$")
# Timeline marks that start a phase when RunnerCpu is given the drill's timeline.
FAULT_PHASES: Mapping[str, str] = {"fault.injected": "fault.held", "fault.healing": "after fault"}

ThreadKey = tuple[int, int]  # (tid, start time in ticks): a reused tid is another thread


def category_of(name: str) -> str:
    """`measuring`, `workload` or `other` for a thread name."""
    if name.startswith(WORKLOAD_PREFIXES):
        return "workload"
    if name.startswith(MEASURING_PREFIXES):
        return "measuring"
    return "other"


@dataclass(frozen=True)
class StatTimes:
    utime: int  # clock ticks
    stime: int
    cutime: int  # waited-for children (the process's stat only)
    cstime: int
    starttime: int

    @property
    def ticks(self) -> int:
        return self.utime + self.stime


def parse_stat(text: str) -> StatTimes:
    """Fields of a /proc/<pid>[/task/<tid>]/stat line. The command name (field 2) is in
    parentheses and may itself contain spaces and ')', so fields are counted after the last
    ')'."""
    rest = text[text.rindex(")") + 2 :].split()
    # rest[0] is field 3 (state): field n is rest[n - 3].
    return StatTimes(
        utime=int(rest[11]),
        stime=int(rest[12]),
        cutime=int(rest[13]),
        cstime=int(rest[14]),
        starttime=int(rest[19]),
    )


@dataclass(frozen=True)
class ThreadCpu:
    name: str
    category: str
    ticks: int  # cumulative utime+stime at the latest sample


@dataclass(frozen=True)
class Snapshot:
    at: float  # time.monotonic()
    threads: Mapping[ThreadKey, ThreadCpu]  # every thread seen so far, ended ones included
    process_ticks: int
    children_ticks: int
    workload_requests: int | None


def window_figures(
    start: Snapshot, end: Snapshot, ticks_per_s: float, *, top: int = 0
) -> dict[str, Any]:
    """% of one core per category between two snapshots (and per thread name if `top`)."""
    seconds = max(end.at - start.at, 1e-9)
    per_category = dict.fromkeys(CATEGORIES, 0)
    per_name: dict[tuple[str, str], int] = {}
    for key, thread in end.threads.items():
        before = start.threads.get(key)
        used = thread.ticks - (before.ticks if before else 0)
        per_category[thread.category] = per_category.get(thread.category, 0) + used
        name = (_POOL_WORKER.sub("_*", thread.name), thread.category)
        per_name[name] = per_name.get(name, 0) + used
    process = end.process_ticks - start.process_ticks

    def pct(ticks: int) -> float:
        return round(100.0 * ticks / ticks_per_s / seconds, 2)

    out: dict[str, Any] = {
        "seconds": round(seconds, 3),
        "percent_of_core": {
            **{c: pct(t) for c, t in per_category.items()},
            # Ended threads' use after their last sample; never below 0 (tick rounding).
            "unattributed": pct(max(0, process - sum(per_category.values()))),
            "total": pct(process),
        },
        "children_percent_of_core": pct(end.children_ticks - start.children_ticks),
    }
    out["measuring_within_budget"] = out["percent_of_core"]["measuring"] <= MEASURING_BUDGET_PCT
    if start.workload_requests is not None and end.workload_requests is not None:
        requests = end.workload_requests - start.workload_requests
        out["workload_requests"] = requests
        out["workload_requests_per_s"] = round(requests / seconds, 1)
    if top:
        ranked = sorted(per_name.items(), key=lambda item: -item[1])[:top]
        out["threads"] = [
            {"name": name, "category": category, "percent_of_core": pct(ticks)}
            for (name, category), ticks in ranked
            if ticks > 0
        ]
    return out


@dataclass
class RunnerCpu:
    """Samples this process's threads' CPU from start() to stop().

    `mark(phase)` starts a named phase that lasts until the next mark (or stop); `phase(name)`
    is a window of its own around a block. A name used twice adds up (two faults held). Pass
    `workload_requests` (e.g. the number of operations the workload recorded so far) to get
    its request rate next to its cost: it is called only at marks, start and stop.

    Given the drill's `timeline`, phases follow its marks (`phase_marks`: "fault.injected"
    starts "fault.held", "fault.healing" starts "after fault"; start() opens "before fault"),
    with no call from the drill: the sampler notices a mark at its next sample, so a
    boundary is up to `interval` late (call `mark` yourself where that matters).
    """

    interval: float = 0.5
    workload_requests: Callable[[], int] | None = None
    timeline: Timeline | None = None
    phase_marks: Mapping[str, str] = field(default_factory=lambda: dict(FAULT_PHASES))
    classify: Callable[[str], str] = category_of
    proc: Path = Path("/proc/self")
    name: str = "runner_cpu"

    def __post_init__(self) -> None:
        self._known: dict[ThreadKey, ThreadCpu] = {}
        self._samples = 0
        self.ticks_per_s = float(os.sysconf("SC_CLK_TCK"))
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=SAMPLER_THREAD, daemon=True)
        self._first: Snapshot | None = None
        self._last: Snapshot | None = None
        # The phase open on each track: "mark" (mark() calls) and "timeline" (its marks), apart
        # so that a timeline mark noticed late cannot cut into a phase the caller marked.
        self._open: dict[str, tuple[str, Snapshot]] = {}
        self._windows: list[tuple[str, Snapshot, Snapshot]] = []
        self._marks_seen = 0  # timeline marks already looked at

    # -- life cycle -----------------------------------------------------------------------------

    def start(self) -> None:
        self._first = self.snapshot()
        if self.timeline is not None:
            self._marks_seen = len(self.timeline.marks)
            with self._lock:
                self._open["timeline"] = ("before fault", self._first)
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling (idempotent); every phase still open ends here."""
        if self._first is None or self._last is not None:
            return
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self._follow_timeline()  # marks made since the sampler's last look
        self._last = self.snapshot()
        with self._lock:
            for track in list(self._open):
                self._close(track, self._last)

    def mark(self, phase: str, *, track: str = "mark") -> None:
        """Start phase `phase` now; the previous one of the track (if any) ends here."""
        now = self.snapshot()
        with self._lock:
            self._close(track, now)
            self._open[track] = (phase, now)

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """A window around a block, e.g. `with cpu.phase("fault.held"): ...`."""
        begin = self.snapshot()
        try:
            yield
        finally:
            end = self.snapshot()
            with self._lock:
                self._windows.append((name, begin, end))

    def _close(self, track: str, now: Snapshot) -> None:
        opened = self._open.pop(track, None)
        if opened is not None:
            self._windows.append((opened[0], opened[1], now))

    # -- sampling -------------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()
            self._follow_timeline()

    def _follow_timeline(self) -> None:
        if self.timeline is None:
            return
        marks = self.timeline.marks
        new, self._marks_seen = marks[self._marks_seen :], len(marks)
        for mark in new:
            phase = self.phase_marks.get(mark.event)
            if phase is not None:
                self.mark(phase, track="timeline")

    def sample(self) -> None:
        """Read every live thread's CPU into the table of known threads."""
        names = {t.native_id: t.name for t in threading.enumerate() if t.native_id is not None}
        task = f"{self.proc}/task"
        try:
            # os and str paths, not pathlib: this runs every interval for every thread, and
            # what the sampler costs is counted against the measuring machinery.
            tids = os.listdir(task)  # noqa: PTH208
        except OSError:
            return
        seen: dict[ThreadKey, ThreadCpu] = {}
        for entry in tids:
            try:
                times = parse_stat(_read(f"{task}/{entry}/stat"))
            except (OSError, ValueError, IndexError):
                continue  # ended between listdir and read
            tid = int(entry)
            key = (tid, times.starttime)
            known = self._known.get(key)
            name = names.get(tid)
            if name is None:
                # Not (or no longer, or not yet) a Python thread: keep what we knew.
                name = known.name if known else _comm(f"{task}/{entry}")
            category = known.category if known and known.name == name else self.classify(name)
            seen[key] = ThreadCpu(name, category, times.ticks)
        with self._lock:
            self._known.update(seen)
            self._samples += 1

    def snapshot(self) -> Snapshot:
        self.sample()
        try:
            process = parse_stat(_read(f"{self.proc}/stat"))
            ticks, children = process.ticks, process.cutime + process.cstime
        except (OSError, ValueError, IndexError):
            ticks, children = 0, 0
        requests = self._workload_requests()
        with self._lock:
            return Snapshot(time.monotonic(), dict(self._known), ticks, children, requests)

    def _workload_requests(self) -> int | None:
        if self.workload_requests is None:
            return None
        try:
            return self.workload_requests()
        except Exception:  # a figure for the report; never fail a drill over it
            return None

    # -- figures --------------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """% of one core per category over the run and per phase; per thread over the run."""
        if self._first is None:
            return {"skipped": "not started"}
        last = self._last or self.snapshot()
        with self._lock:
            windows = list(self._windows)
            samples = self._samples
        merged: dict[str, dict[str, Any]] = {}
        for name, begin, end in windows:
            figures = window_figures(begin, end, self.ticks_per_s)
            merged[name] = _merge(merged[name], figures) if name in merged else figures
        return {
            "interval_s": self.interval,
            "samples": samples,
            "measuring_budget_pct": MEASURING_BUDGET_PCT,
            "run": window_figures(self._first, last, self.ticks_per_s, top=12),
            "phases": merged,
            # What `kubedrill bench` reads (bench.held_cpu): the window the fault was held.
            "fault_held": merged.get(self.phase_marks.get("fault.injected", ""))
            or merged.get("fault.held"),
        }


def _read(path: str) -> str:
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, 4096).decode(errors="replace")
    finally:
        os.close(fd)


def _comm(task_dir: str) -> str:
    try:
        return _read(f"{task_dir}/comm").strip()
    except OSError:
        return "?"


def _merge(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """Two windows of the same name as one: percentages weighted by their durations."""
    sa, sb = float(a["seconds"]), float(b["seconds"])
    total = sa + sb or 1e-9

    def weighted(x: float, y: float) -> float:
        return round((x * sa + y * sb) / total, 2)

    pa, pb = a["percent_of_core"], b["percent_of_core"]
    pct = {k: weighted(pa[k], pb[k]) for k in pa}
    out: dict[str, Any] = {
        "seconds": round(total, 3),
        "percent_of_core": pct,
        "children_percent_of_core": weighted(
            a["children_percent_of_core"], b["children_percent_of_core"]
        ),
        "measuring_within_budget": pct["measuring"] <= MEASURING_BUDGET_PCT,
    }
    if "workload_requests" in a and "workload_requests" in b:
        out["workload_requests"] = a["workload_requests"] + b["workload_requests"]
        out["workload_requests_per_s"] = round(out["workload_requests"] / total, 1)
    return out
