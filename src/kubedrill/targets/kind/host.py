"""The host settings a multi-node kind cluster needs, set on `kind up` and put back on `kind down`.

* `fs.inotify.max_user_instances`: every node runs systemd, containerd and kubelet, each with
  inotify instances; the usual 128 runs out with a few nodes (kind's known-issues page asks for
  512). Raised only when lower, back to its old value when the last kubedrill kind cluster goes.
* `/lib/modules`: kind bind-mounts it into every node; podman refuses a missing source. Created
  when missing, removed again (if still empty) with the last cluster.
* Settings others change while a cluster runs: netavark turns IP forwarding on for a new
  network, and a kubelet in a privileged node writes kernel.panic, kernel.panic_on_oops and
  vm.overcommit_memory VM-wide. Their values before the first cluster are recorded and put back
  with the last one (forwarding only when no other container is running, which may need it).
  Every other sysctl is compared with a snapshot from before, and a difference is reported.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from kubedrill.targets.kind.state import STATE_DIR, HostRecord, host_record

PROC_SYS = Path("/proc/sys")
RAISED = {"fs.inotify.max_user_instances": 512}
RESTORED = ("kernel.panic", "kernel.panic_on_oops", "vm.overcommit_memory")
FORWARDING = ("net.ipv4.ip_forward", "net.ipv4.conf.all.forwarding", "net.ipv6.conf.all.forwarding")
KIND_DIRS = (Path("/lib/modules"),)
# Values that move on their own (counters, random ids): not settings, never compared.
COUNTERS = frozenset({
    "fs.dentry-state", "fs.file-nr", "fs.inode-nr", "fs.inode-state", "fs.aio-nr",
    "kernel.ns_last_pid", "kernel.random.uuid", "kernel.random.entropy_avail", "kernel.pty.nr",
    "net.netfilter.nf_conntrack_count",
})  # fmt: skip
COUNTER_PREFIXES = ("fs.quota.",)

Progress = Callable[[str], None]


def read_sysctl(key: str, root: Path = PROC_SYS) -> str:
    return " ".join((root / key.replace(".", "/")).read_text().split())


def write_sysctl(key: str, value: str, root: Path = PROC_SYS) -> None:
    (root / key.replace(".", "/")).write_text(value + "\n")


def is_counter(key: str) -> bool:
    return key in COUNTERS or key.startswith(COUNTER_PREFIXES)


def sysctl_snapshot(root: Path = PROC_SYS) -> dict[str, str]:
    """Every readable setting under /proc/sys (what `sysctl -a` prints), counters left out."""
    out: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        key = ".".join(path.relative_to(root).parts)
        if is_counter(key):
            continue
        with contextlib.suppress(OSError, UnicodeDecodeError):
            if path.is_file():
                out[key] = " ".join(path.read_text().split())
    return out


def snapshot_diff(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Keys whose value changed or that appeared or went, as `key: old -> new` lines."""
    lines = []
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if old != new:
            lines.append(f"{key}: {old if old is not None else '(absent)'} -> "
                         f"{new if new is not None else '(absent)'}")  # fmt: skip
    return lines


def hold(
    cluster: str,
    progress: Progress,
    *,
    state_dir: Path = STATE_DIR,
    root: Path = PROC_SYS,
    dirs: Sequence[Path] = KIND_DIRS,
) -> None:
    """Make the host ready for `cluster` and record what was changed (idempotent)."""
    with host_record(state_dir) as record:
        if not record.holders:
            record.snapshot = sysctl_snapshot(root)
            record.sysctl_before = {
                k: record.snapshot[k] for k in (*RAISED, *RESTORED, *FORWARDING)
                if k in record.snapshot
            }  # fmt: skip
        for key, wanted in RAISED.items():
            current = int(read_sysctl(key, root))
            if current < wanted:
                write_sysctl(key, str(wanted), root)
                record.sysctl_set[key] = str(wanted)
                progress(f"{key}: {current} -> {wanted} (until the last kind cluster is down)")
        for directory in dirs:
            if not directory.exists():
                directory.mkdir(parents=True)
                record.created_dirs.append(str(directory))
                progress(f"created {directory} (kind mounts it into every node)")
        if cluster not in record.holders:
            record.holders.append(cluster)


def release(
    cluster: str,
    progress: Progress,
    *,
    others_running: Callable[[], bool],
    state_dir: Path = STATE_DIR,
    root: Path = PROC_SYS,
) -> list[str]:
    """Drop `cluster`'s hold; with the last one, put the host back. Returns the sysctl keys that
    still differ from before the first `kind up` (empty: the host is as it was)."""
    with host_record(state_dir) as record:
        if cluster in record.holders:
            record.holders.remove(cluster)
        if record.holders:
            progress(f"host settings kept for {', '.join(record.holders)}")
            return []
        _restore(record, progress, others_running, root)
        for directory in map(Path, reversed(record.created_dirs)):
            with contextlib.suppress(FileNotFoundError):
                if any(directory.iterdir()):
                    progress(f"left {directory}: something was put in it meanwhile")
                else:
                    directory.rmdir()
                    progress(f"removed {directory}")
        if not record.snapshot:
            return []
        return snapshot_diff(record.snapshot, sysctl_snapshot(root))


def _restore(
    record: HostRecord, progress: Progress, others_running: Callable[[], bool], root: Path
) -> None:
    keys: Iterable[str] = (*RAISED, *RESTORED)
    if others_running():
        progress("IP forwarding left as it is: other containers are running")
    else:
        keys = (*keys, *FORWARDING)
    for key in keys:
        before = record.sysctl_before.get(key)
        if before is None:
            continue
        with contextlib.suppress(FileNotFoundError):
            current = read_sysctl(key, root)
            if current != before:
                write_sysctl(key, before, root)
                progress(f"{key}: {current} -> {before} (as before kind up)")
