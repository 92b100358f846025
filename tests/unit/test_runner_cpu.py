"""RunnerCpu: /proc stat parsing, thread categories, window arithmetic, and a burning thread
attributed to its category (attribution only: no timing figures, the machine is shared)."""

from __future__ import annotations

import threading
import time

from kubedrill.runner_cpu import (
    RunnerCpu,
    Snapshot,
    ThreadCpu,
    category_of,
    parse_stat,
    window_figures,
)
from kubedrill.timeline import Timeline

# A real /proc/<pid>/task/<tid>/stat line, with a command name that has spaces and ')'.
STAT = (
    "4242 (metrics (x) 1) S 1 4242 4242 0 -1 4194368 1573 0 0 0 "
    "150 27 3 4 20 0 12 0 98765 2000000 3000 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 "
    "17 1 0 0 0 0 0"
)


def test_parse_stat_counts_fields_after_the_last_paren() -> None:
    times = parse_stat(STAT)
    assert (times.utime, times.stime, times.cutime, times.cstime) == (150, 27, 3, 4)
    assert times.starttime == 98765
    assert times.ticks == 177


def test_parse_stat_of_this_process() -> None:
    with open("/proc/self/stat") as f:
        assert parse_stat(f.read()).starttime > 0


def test_thread_names_are_grouped() -> None:
    for name in ("metrics-recorder", "metrics_3", "etcd-probe_0", "watch-leader.elected",
                 "runner-cpu", "MainThread"):  # fmt: skip
        assert category_of(name) == "measuring", name
    for name in ("workload/etcd-watch", "workload/api-cas-1", "workload/writer-1"):
        assert category_of(name) == "workload", name
    for name in ("exec-control-1", "python"):
        assert category_of(name) == "other", name


def snap(at: float, threads: dict[tuple[int, int], ThreadCpu], process: int) -> Snapshot:
    return Snapshot(at, threads, process, 0, None)


def test_window_figures_per_category_and_ended_threads() -> None:
    a = ThreadCpu("metrics_1", "measuring", 10)
    b = ThreadCpu("workload/etcd-kv", "workload", 0)
    start = snap(0.0, {(1, 1): a, (2, 2): b}, 10)
    # 10 s later at 100 ticks/s: metrics used 50 ticks (5 %), a new workload thread 100
    # (10 %), b ended (kept with its last sample: 20 ticks, 2 %), and 30 ticks are the
    # process's that no thread sample accounts for (3 %).
    end = snap(
        10.0,
        {
            (1, 1): ThreadCpu("metrics_1", "measuring", 60),
            (2, 2): ThreadCpu("workload/etcd-kv", "workload", 20),
            (3, 9): ThreadCpu("workload/api-cas-1", "workload", 100),
        },
        10 + 50 + 20 + 100 + 30,
    )
    figures = window_figures(start, end, 100.0, top=5)
    pct = figures["percent_of_core"]
    assert pct["measuring"] == 5.0
    assert pct["workload"] == 12.0
    assert pct["other"] == 0.0
    assert pct["unattributed"] == 3.0
    assert pct["total"] == 20.0
    assert figures["measuring_within_budget"] is True
    assert figures["threads"][0] == {
        "name": "workload/api-cas-1",
        "category": "workload",
        "percent_of_core": 10.0,
    }
    pool = {"name": "metrics_*", "category": "measuring", "percent_of_core": 5.0}
    assert pool in figures["threads"]


def test_workload_rate_next_to_its_cost() -> None:
    start = Snapshot(0.0, {}, 0, 0, 100)
    end = Snapshot(4.0, {}, 0, 0, 300)
    figures = window_figures(start, end, 100.0)
    assert figures["workload_requests"] == 200
    assert figures["workload_requests_per_s"] == 50.0


def burn(stop: threading.Event) -> None:
    while not stop.is_set():
        sum(i * i for i in range(2000))


def test_a_burning_thread_is_attributed_to_its_category_even_after_it_ended() -> None:
    timeline = Timeline()
    requests = iter(range(0, 1000, 10))
    cpu = RunnerCpu(interval=0.05, timeline=timeline, workload_requests=lambda: next(requests))
    cpu.start()
    stop = threading.Event()
    burner = threading.Thread(target=burn, args=(stop,), name="workload/burner")
    cpu.mark("burn")
    timeline.mark("fault.injected")
    burner.start()
    deadline = time.monotonic() + 10
    # Until the sampler has seen the burner use CPU (a few ticks), however busy the machine.
    while time.monotonic() < deadline:
        time.sleep(0.05)
        threads = cpu.summary()["run"].get("threads", [])
        if any(t["name"] == "workload/burner" and t["percent_of_core"] > 0 for t in threads):
            break
    stop.set()
    burner.join()
    timeline.mark("fault.healing")
    cpu.mark("idle")
    time.sleep(0.2)
    cpu.stop()
    cpu.stop()  # idempotent

    summary = cpu.summary()
    run = summary["run"]
    burner_rows = [t for t in run["threads"] if t["name"] == "workload/burner"]
    assert burner_rows
    assert burner_rows[0]["category"] == "workload"
    assert burner_rows[0]["percent_of_core"] > 0
    assert run["percent_of_core"]["workload"] > 0
    phases = summary["phases"]
    assert {"burn", "idle", "before fault", "fault.held", "after fault"} <= set(phases)
    assert phases["burn"]["percent_of_core"]["workload"] > 0
    assert phases["burn"]["workload_requests"] > 0
    assert summary["samples"] > 0
    assert summary["fault_held"] == phases["fault.held"]


def test_summary_before_start() -> None:
    assert RunnerCpu().summary() == {"skipped": "not started"}
