"""Bring a lab etcd member back after its disk was lost, from whatever state the member
replacement was left in: the undo of `LoseMemberDisk`, replayed by `kubedrill heal` after a
SIGKILL at any point of the drill, and a command a person can run:

    kubedrill etcd replace-member --state-dir DIR --host HOST --old-id ID --aside DIR

It reads the membership (through the other members) and the member's data dir, picks a route
(`replacement.repair_route`: put the old data back if the member was never removed and nothing
ran raft over it, else add, start or wait for the new member), falls back to the whole runbook
when that route does not end with a caught-up member, and ends by checking the fault is gone:
the expected member count, the member voting and caught up, every member's HashKV the same.
Then the override is cleared and the lost disk discarded. Idempotent: on a replaced, caught-up
member it only checks.

Exit 0: repaired. 1: the repair failed (what a person must do is printed). 2: bad arguments,
nothing changed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from kubedrill.disaster.membership import CaughtUp, caught_up_or_gap, list_members
from kubedrill.disaster.replacement import Replacement, repair_route
from kubedrill.errors import ConfigError, KubedrillError
from kubedrill.polling import poll_until
from kubedrill.probes import etcd_checks
from kubedrill.probes.etcd import EtcdClient
from kubedrill.targets.lab import lab
from kubedrill.targets.lab.member_disk import MemberDisk

GENTLE_S = 20.0  # a restart from its own data, or a join, catches up within seconds
REPLACE_S = 60.0


class RepairError(KubedrillError):
    exit_code = 1


def wait_caught_up(
    etcd: EtcdClient, disk: MemberDisk, expected: int, timeout: float
) -> tuple[CaughtUp | None, str]:
    found, ok = poll_until(
        lambda: caught_up_or_gap(etcd, disk.host, disk.peer_url, expected),
        lambda r: r[0] is not None,
        timeout=timeout,
        interval=0.2,
    )
    return found if ok else (None, found[1])


def replace(runbook: Replacement, log: Callable[[str], None]) -> None:
    runbook.disk.stop()
    for _name, _what, step in runbook.plan():
        log(f"  {step().detail}")


def repair(
    disk: MemberDisk,
    etcd: EtcdClient,
    old_id: str,
    aside: Path,
    expected: int,
    log: Callable[[str], None] = print,
) -> CaughtUp:
    runbook = Replacement(etcd, disk)
    entry = runbook.entry()
    route = repair_route(entry, old_id, aside.exists(), disk.has_wal(), disk.raft_since_wipe())
    log(f"{disk.host}: {route} (member {entry.hex_id if entry else 'none'}, old {int(old_id):x})")
    if route == "put back":
        disk.stop()
        disk.clear_override()
        disk.put_back(aside)
        disk.release()
    elif route == "restart":
        disk.clear_override()
        disk.release()
    elif route == "add":
        disk.stop()
        log(f"  {runbook.add().detail}")
        log(f"  {runbook.start().detail}")
    elif route == "start" and not disk.has_wal():
        assert entry is not None
        disk.stop()
        runbook.added, runbook.members = entry, list_members(etcd, runbook.others)
        log(f"  {runbook.start().detail}")
    else:  # "wait", or "start" on a member that has begun joining: let it go on
        disk.release()
    done, gap = (None, "") if route == "replace" else wait_caught_up(etcd, disk, expected, GENTLE_S)
    if done is None:
        log(f"{disk.host}: {f'not caught up ({gap}); ' if gap else ''}the whole runbook")
        replace(runbook, log)
        done, gap = wait_caught_up(etcd, disk, expected, REPLACE_S)
        if done is None:
            raise RepairError(
                f"{disk.host} did not catch up within {REPLACE_S:g} s after the runbook: {gap}",
                f"see {disk.log_path()} and `kubedrill lab status`",
            )
    log(f"{disk.host}: {done}")
    disagreement, agreed = poll_until(
        lambda: etcd_checks.hashkv_disagreement(etcd), lambda d: d is None, timeout=15, interval=0.5
    )
    if not agreed:
        raise RepairError(f"{disk.host} caught up but the members' data differ: {disagreement}")
    log(f"every member has the same HashKV; {runbook.finish()}")
    return done


def repair_lab_member(
    state_dir: Path, host: str, old_id: str, aside: Path, log: Callable[[str], None] = print
) -> CaughtUp:
    """`kubedrill etcd replace-member`: check the arguments (ConfigError, nothing changed, on
    anything but this lab's member and one of its aside dirs), then `repair`."""
    if not old_id.isdigit():
        raise ConfigError(f"--old-id {old_id!r} is not a decimal member ID (nothing changed)")
    try:
        disk = MemberDisk.of(state_dir, host)
        aside = disk.checked_aside(aside)
    except ConfigError as exc:
        raise ConfigError(f"{exc.message} (nothing changed)") from exc
    if lab.supervisor_pid(state_dir) is None:
        raise RepairError(
            f"the supervisor of the lab in {state_dir} is not running",
            "bring the lab up (kubedrill lab up --name <lab>), then run `kubedrill heal` again",
        )
    cluster = lab.load_cluster(state_dir)
    etcd = EtcdClient(cluster.etcd, timeout=1.0)
    try:
        return repair(disk, etcd, old_id, aside, len(cluster.etcd.endpoints), log)
    finally:
        etcd.close()
