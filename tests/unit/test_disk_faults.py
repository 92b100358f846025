"""Failpoint and slow-disk faults as plain data, and the disk drills' figures: no cluster."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from kubedrill.cluster import Cluster, ClusterFacts, EtcdAccess, Node
from kubedrill.disaster import disk
from kubedrill.errors import ConfigError
from kubedrill.faults import disk as slow
from kubedrill.faults import failpoint as fp
from kubedrill.faults.shape import Selector
from kubedrill.targets.lab.control import LabControl
from kubedrill.transport import TransportSpec
from kubedrill.workload.history import Operation

NAMES = ("etcd-1", "etcd-2", "etcd-3")


def cluster(*, failpoints: bool = True) -> Cluster:
    nodes = tuple(
        Node(n, frozenset({"etcd"}), f"10.0.0.{i}", TransportSpec("netns", n, {"netns": n}))
        for i, n in enumerate(NAMES, start=1)
    )
    urls = {n: f"http://10.0.0.{i}:22381" for i, n in enumerate(NAMES, 1)} if failpoints else {}
    return Cluster(
        name="lab/t",
        target="lab",
        nodes=nodes,
        etcd=EtcdAccess(
            {n: f"https://10.0.0.{i}:2379" for i, n in enumerate(NAMES, 1)},
            None,
            failpoint_urls=urls,
        ),
        control=LabControl(Path("/nonexistent")),
        observer=TransportSpec("local", "kubedrill"),
        leader_locators={"etcd": lambda: "etcd-2"},
        facts=ClusterFacts("lab", "etcd", 3),
    )


# -- failpoints ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "term", ["panic", "off", "sleep(1500)", "1*panic", "50%sleep(10)", "print"]
)
def test_good_terms(term: str) -> None:
    fp.check_failpoint("raftBeforeSave", term)


@pytest.mark.parametrize(
    ("name", "term", "message"),
    [
        ("raftBeforeSave", "sleep(1s)", "failpoint term 'sleep(1s)' for raftBeforeSave is invalid"),
        ("raftBeforeSave", "panic; rm -rf /", "is invalid"),
        ("raftBeforeSave", "", "is invalid"),
        ("raft/BeforeSave", "panic", "failpoint name 'raft/BeforeSave' is invalid"),
        ("", "panic", "failpoint name '' is invalid"),
    ],
)
def test_bad_input_is_one_clear_error_before_anything_is_planned(
    name: str, term: str, message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        fp.ArmFailpoint(name, term)
    assert message in info.value.message
    assert "\n" not in info.value.message


def test_terms_that_crash_and_sleep() -> None:
    assert fp.crashes("panic") and fp.crashes("1*panic")
    assert not fp.crashes("sleep(10)") and not fp.crashes("off")
    assert fp.sleep_ms("sleep(1500)") == 1500 and fp.sleep_ms("2*sleep(7)") == 7
    assert fp.sleep_ms("panic") is None


def test_the_plan_arms_the_leader_and_its_undo_disarms_it() -> None:
    plan = fp.ArmFailpoint("raftBeforeSave", "sleep(1500)").plan(cluster())
    assert plan.victims == ("etcd-2",)
    assert plan.inject[0].argv[-3:] == (
        "--data-raw",
        "sleep(1500)",
        "http://10.0.0.2:22381/raftBeforeSave",
    )
    assert plan.undo[0].argv[:2] == ("sh", "-c")
    assert "DELETE" in plan.undo[0].argv[2]
    assert plan.takes_down == frozenset()  # a sleep takes nothing down
    assert plan.claims == {"failpoint raftBeforeSave on etcd-2"}
    assert "leader etcd etcd-2" in plan.description


def test_a_panic_takes_its_member_down_for_the_quorum_guard() -> None:
    plan = fp.ArmFailpoint("defragBeforeCopy", "panic", Selector.named("etcd-3")).plan(cluster())
    assert plan.victims == ("etcd-3",)
    assert plan.takes_down == {("etcd-3", "etcd")}


def test_unavailable_without_failpoints_says_where_to_run() -> None:
    reason = fp.ArmFailpoint("raftBeforeSave", "panic").available(cluster(failpoints=False))
    assert reason is not None and "failpoints-etcd.yaml" in reason


def test_listing_parses_gofails_answer() -> None:
    listing = "raftAfterSave=\nraftBeforeSave=sleep(1500)\n\n"
    assert fp.parse_listing(listing) == {"raftAfterSave": "", "raftBeforeSave": "sleep(1500)"}


def test_disarm_script_fails_clearly_when_nothing_answers() -> None:
    """Against a closed local port: curl retries, then the script says what to check."""
    script = fp.disarm_script("http://127.0.0.1:9", "raftBeforeSave", wait_s=1)
    proc = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "no answer from http://127.0.0.1:9/raftBeforeSave within 1 s" in proc.stderr


# -- the slow disk ------------------------------------------------------------------------------


def test_whole_disk_of_a_partition_and_of_a_disk(tmp_path: Path) -> None:
    disk_dir = tmp_path / "devices" / "vda"
    part = disk_dir / "vda1"
    part.mkdir(parents=True)
    (disk_dir / "dev").write_text("254:0\n")
    (part / "dev").write_text("254:1\n")
    (part / "partition").write_text("1\n")
    block = tmp_path / "dev" / "block"
    block.mkdir(parents=True)
    (block / "254:1").symlink_to(part)
    (block / "254:0").symlink_to(disk_dir)
    assert slow.whole_disk(254, 1, tmp_path) == (254, 0)
    assert slow.whole_disk(254, 0, tmp_path) == (254, 0)


def test_cgroup_of_reads_the_blkio_line(tmp_path: Path) -> None:
    (tmp_path / "42").mkdir()
    (tmp_path / "42" / "cgroup").write_text("9:name=systemd:/x\n7:blkio:/kubedrill-a\n0::/\n")
    assert slow.cgroup_of(42, tmp_path) == "/kubedrill-a"


def test_throttle_scripts_move_the_process_in_and_everything_back_out() -> None:
    cg = Path("/sys/fs/cgroup/blkio/kubedrill-fpoint-etcd-1-etcd")
    inject = slow.throttle_script(cg, (254, 0), 2, 123)
    assert "echo '254:0 2' > /sys/fs/cgroup/blkio/kubedrill-fpoint-etcd-1-etcd/" in inject
    assert inject.endswith(
        "echo 123 > /sys/fs/cgroup/blkio/kubedrill-fpoint-etcd-1-etcd/cgroup.procs"
    )
    undo = slow.unthrottle_script(cg, Path("/sys/fs/cgroup/blkio"))
    assert "rmdir" in undo and undo.endswith(f"test ! -d {cg}")


def test_unthrottle_is_idempotent_on_a_missing_cgroup(tmp_path: Path) -> None:
    script = slow.unthrottle_script(tmp_path / "gone", tmp_path)
    assert subprocess.run(["sh", "-c", script], check=False).returncode == 0


def test_write_iops_out_of_range_is_refused() -> None:
    with pytest.raises(ConfigError):
        slow.ThrottleDiskWrites(write_iops=0)


def test_throttle_is_unavailable_off_the_lab_or_without_blkio(tmp_path: Path) -> None:
    fault = slow.ThrottleDiskWrites(blkio=tmp_path)
    assert "no cgroup v1 blkio" in (fault.available(cluster()) or "")


# -- figures ------------------------------------------------------------------------------------


def put(invoke: float, took: float, ok: bool = True) -> Operation:
    return Operation("w", "put", "k", "v", invoke, invoke + took, "ok" if ok else "fail")


def test_percentile_is_nearest_rank() -> None:
    assert disk.percentile([], 0.5) is None
    assert disk.percentile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert disk.percentile([1.0] * 99 + [100.0], 0.99) == 1.0
    assert disk.percentile([1.0, 2.0, 3.0], 0.99) == 3.0


def test_latency_window_counts_puts_invoked_inside_it() -> None:
    ops = [put(0.0, 0.005), put(1.0, 0.007), put(5.0, 1.5), put(6.0, 0.0, ok=False), put(9.0, 0.01)]
    before = disk.latency_window("before", ops, 0.0, 4.0)
    during = disk.latency_window("during", ops, 4.0, 8.0)
    assert (before.puts, before.failed, before.p50_ms, before.max_ms) == (2, 0, 5.0, 7.0)
    assert (during.puts, during.failed, during.p99_ms) == (1, 1, 1500.0)


def test_latency_window_overlapping_counts_a_put_in_flight_when_it_began() -> None:
    # Invoked before the stall, answered 7 s later (etcd's request timeout at a leader change).
    ops = [put(0.0, 0.005), put(3.9, 7.0), put(11.0, 0.004)]
    strict = disk.latency_window("before", ops, 0.0, 4.0)
    assert (strict.puts, strict.max_ms) == (1, 5.0)  # the stuck put is no baseline
    during = disk.latency_window("during", ops, 4.0, 10.0, overlapping=True)
    assert (during.puts, during.max_ms) == (1, 7000.0)
    assert disk.latency_window("during", ops, 4.0, 10.0).puts == 0
    assert disk.acknowledged_between(ops, 4.0, 10.0) == 0  # the stuck put answered at 10.9
    assert disk.acknowledged_between(ops, 4.0, 11.0) == 1


def test_lease_figures_see_an_expired_lease_and_the_longest_gap() -> None:
    def ka(at: float, ttl: str, ok: bool = True) -> Operation:
        return Operation("l", "keepalive", "1", ttl, at, at + 0.01, "ok" if ok else "fail")

    alive = disk.lease_figures([ka(0, "3"), ka(1, "3"), ka(2, "", ok=False), ka(4, "3")], 2)
    assert not alive.expired and alive.longest_gap_s == 3.0 and alive.answered == 3
    gone = disk.lease_figures([ka(0, "3"), ka(5, "0")], -1)
    assert gone.expired and gone.expired_seen


def test_bucket_quantile_matches_prometheus() -> None:
    inf = float("inf")
    assert disk.bucket_quantile(0.99, {0.001: 0.0, 0.002: 0.0}) is None
    assert disk.bucket_quantile(0.5, {1.0: 50.0, 2.0: 100.0, inf: 100.0}) == 1.0
    assert disk.bucket_quantile(0.99, {1.0: 0.0, 2.0: 100.0, inf: 100.0}) == pytest.approx(1.99)
    assert disk.bucket_quantile(0.99, {1.0: 0.0, inf: 10.0}) == 1.0  # highest finite bound


def test_histogram_delta_between_two_scrapes() -> None:
    name = "etcd_disk_wal_fsync_duration_seconds"

    def samples(fast: float, slow_: float) -> disk.Samples:
        return {
            (f"{name}_bucket", (("le", "0.008"),)): fast,
            (f"{name}_bucket", (("le", "2.048"),)): fast + slow_,
            (f"{name}_bucket", (("le", "+Inf"),)): fast + slow_,
            (f"{name}_count", ()): fast + slow_,
            (f"{name}_sum", ()): fast * 0.001 + slow_ * 1.5,
            ("process_start_time_seconds", ()): 7.0,
        }

    delta = disk.histogram_delta(name, samples(100, 0), samples(100, 4))
    assert delta.count == 4 and delta.mean_s == pytest.approx(1.5)
    assert delta.p99_s is not None and delta.p99_s > 1.0
    assert disk.start_time(samples(1, 1)) == 7.0
    assert disk.histogram_delta(name, samples(1, 1), samples(1, 1)).p99_s is None


def test_lab_down_removes_only_that_labs_empty_cgroups(tmp_path: Path) -> None:
    (tmp_path / "kubedrill-fpoint-etcd-1-etcd").mkdir()
    (tmp_path / "kubedrill-other-etcd-1-etcd").mkdir()
    assert slow.remove_lab_cgroups("fpoint", tmp_path) == [
        f"cgroup {tmp_path / 'kubedrill-fpoint-etcd-1-etcd'}"
    ]
    assert [p.name for p in tmp_path.iterdir()] == ["kubedrill-other-etcd-1-etcd"]
    assert slow.remove_lab_cgroups("fpoint", tmp_path / "absent") == []


def test_process_gone_only_when_the_port_refuses() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert not disk.process_gone(f"http://127.0.0.1:{port}/metrics")
    assert disk.process_gone(f"http://127.0.0.1:{port}/metrics")
