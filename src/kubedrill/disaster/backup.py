"""Backup verified: an etcd snapshot taken while the cluster works, checked, restored into a
scratch member, and compared with what clients saw acknowledged.

The pure parts (reading `etcdutl snapshot status -w json`, choosing which acknowledged writes
the snapshot must hold, judging the restored keys) are plain functions, unit-tested with
made-up histories. The rest runs the pinned etcd tools on the runner: `etcdctl snapshot save`
against one lab member (over the lab's TLS, never through a proxy), `etcdutl snapshot status`
and `snapshot restore` on local files, and a single-member etcd on 127.0.0.1 serving the
restored data dir. That scratch member is stopped and its directory removed on every way out
(and, should the runner itself die, the kernel kills the member with it).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubedrill.checks.base import CheckContext
from kubedrill.checks.verdict import Verdict
from kubedrill.cluster import Cluster, EtcdAccess
from kubedrill.consistency.checks import is_applied_write, verdict
from kubedrill.errors import KubedrillError, MissingBinaryError
from kubedrill.polling import poll_until
from kubedrill.probes.etcd import EtcdClient, EtcdError
from kubedrill.workload.history import Operation

CHECK = "backup: acknowledged writes up to the snapshot's revision restored"
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "grpc_proxy", "no_proxy")


class BackupError(KubedrillError):
    """A backup step failed (save, status, restore, or the scratch member)."""


# -- pure parts ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SnapshotStatus:
    """What `etcdutl snapshot status` reports of a snapshot file."""

    hash: int
    revision: int
    total_keys: int
    total_size: int
    version: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "hash": self.hash,
            "revision": self.revision,
            "total_keys": self.total_keys,
            "total_size": self.total_size,
            "version": self.version,
        }


def parse_snapshot_status(text: str) -> SnapshotStatus:
    """`etcdutl snapshot status -w json`: one JSON object,
    {"hash":..,"revision":..,"totalKey":..,"totalSize":..,"version":".."} (etcd 3.5 and 3.6;
    etcd's log lines, if any, come before it on their own lines)."""
    lines = [line for line in text.splitlines() if line.strip()]
    for line in reversed(lines):
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict) and "revision" in data:
            break
    else:
        raise BackupError(
            f"`etcdutl snapshot status -w json` printed no status object: {text.strip()[:200]!r}",
            "run it by hand on the snapshot file to see why",
        )
    try:
        return SnapshotStatus(
            hash=int(data["hash"]),
            revision=int(data["revision"]),
            total_keys=int(data.get("totalKey") or 0),
            total_size=int(data.get("totalSize") or 0),
            version=str(data.get("version", "")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise BackupError(
            f"unexpected snapshot status {data!r}: {type(exc).__name__}: {exc}",
            "the etcdutl version may print a different status format",
        ) from exc


def required_writes(ops: Sequence[Operation], revision: int) -> dict[str, Operation]:
    """The writes a snapshot at `revision` must hold: of each key's acknowledged, applied
    writes (puts, and compare-and-sets whose compare held) at or before `revision`, the last
    one. Writes without a revision (none was returned) cannot be placed and are left out."""
    latest: dict[str, Operation] = {}
    for op in ops:
        if not is_applied_write(op) or not 0 < op.revision <= revision:
            continue
        if op.key not in latest or op.revision > latest[op.key].revision:
            latest[op.key] = op
    return latest


def restored_writes_verdict(
    ops: Sequence[Operation],
    restored: Mapping[str, tuple[str, int]],
    revision: int,
    *,
    check: str = CHECK,
) -> Verdict:
    """Judge the restored keys (key -> (value, mod revision), read from the scratch member)
    against the history, for a snapshot at `revision`.

    A required write (see `required_writes`) at revision r must be in the restored store:
    its key at mod revision r with the value written, or at a later mod revision that is
    still <= `revision` (a later write the client never saw acknowledged -- timed out, say --
    superseded it; counted, not an error). A key missing, older than r, or at r with another
    value is a lost write. Any restored key changed after `revision` means the snapshot is not
    the point-in-time copy it claims to be."""
    started = time.perf_counter()
    required = required_writes(ops, revision)
    lost: list[str] = []
    superseded = 0
    for key, op in sorted(required.items(), key=lambda kv: kv[1].revision):
        found = restored.get(key)
        if found is None:
            lost.append(f"{key} missing (acked {op.value!r} at revision {op.revision})")
        elif found[1] < op.revision:
            lost.append(
                f"{key} at revision {found[1]}, older than the acked write at {op.revision}"
            )
        elif found[1] == op.revision and found[0] != op.value:
            lost.append(f"{key} at revision {op.revision} holds {found[0]!r}, acked {op.value!r}")
        elif found[1] > op.revision:
            superseded += 1
    newer = sorted(k for k, (_, mod) in restored.items() if mod > revision)
    acked_after = sum(1 for op in ops if is_applied_write(op) and op.revision > revision)
    figures = {
        "snapshot_revision": revision,
        "keys_required": len(required),
        "keys_restored": len(restored),
        "lost": len(lost),
        "superseded_by_unacknowledged": superseded,
        "acknowledged_after_snapshot": acked_after,
        "restored_newer_than_snapshot": len(newer),
    }
    seconds = time.perf_counter() - started
    problems: list[str] = []
    if lost:
        problems.append(f"{len(lost)} acknowledged writes not restored: " + "; ".join(lost[:5]))
    if newer:
        problems.append(
            f"{len(newer)} restored keys changed after the snapshot's revision {revision}: "
            + ", ".join(newer[:5])
        )
    if problems:
        return verdict(check, "invalid", " | ".join(problems), figures, seconds)
    if not required:
        return verdict(
            check,
            "unknown",
            f"no acknowledged write at or before revision {revision} to look for",
            figures,
            seconds,
        )
    return verdict(
        check,
        "valid",
        f"all {len(required)} keys acknowledged at or before revision {revision} restored "
        f"with their values",
        figures,
        seconds,
    )


# -- the tools -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class EtcdTools:
    etcd: Path
    etcdctl: Path
    etcdutl: Path

    @classmethod
    def unavailable(cls, cluster: Cluster) -> str | None:
        """Why this target cannot carry a backup drill (the drill is skipped), or None."""
        extra = cluster.facts.extra
        if "etcdctl" in extra and "etcdutl" in extra:
            return None
        return (
            f"{cluster.name} names no etcdctl/etcdutl on the runner: backup drills run on the "
            "lab for now"
        )

    @classmethod
    def for_cluster(cls, cluster: Cluster) -> EtcdTools:
        """The lab records its etcd tools' paths (ClusterFacts.extra); etcd sits next to them."""
        extra = cluster.facts.extra
        if "etcdctl" not in extra or "etcdutl" not in extra:
            raise MissingBinaryError(
                f"{cluster.name} names no etcdctl/etcdutl on the runner",
                "backup drills run on the lab, with its built etcd tools (kubedrill build); "
                "a lab.bin_dir must hold etcdutl too",
            )
        ctl, utl = Path(extra["etcdctl"]), Path(extra["etcdutl"])
        tools = cls(etcd=ctl.parent / "etcd", etcdctl=ctl, etcdutl=utl)
        missing = [str(p) for p in (tools.etcd, ctl, utl) if not os.access(p, os.X_OK)]
        if missing:
            raise MissingBinaryError(
                f"not executable: {', '.join(missing)}",
                "rebuild the etcd tools: kubedrill build --topology etcd",
            )
        return tools


def tool_environment() -> dict[str, str]:
    """The runner's environment without proxy variables: gRPC honours them, and lab traffic
    must go straight to the lab's own addresses."""
    return {k: v for k, v in os.environ.items() if k.lower() not in PROXY_VARIABLES}


def _run(cmd: Sequence[str], what: str, timeout: float) -> str:
    try:
        done = subprocess.run(
            list(cmd),
            env=tool_environment(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise BackupError(f"{what} took more than {timeout:g} s", f"command: {cmd[0]}") from exc
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-8:])
        raise BackupError(f"{what} failed (exit {done.returncode}):\n{tail}", f"command: {cmd[0]}")
    return done.stdout


def save_snapshot(
    tools: EtcdTools, access: EtcdAccess, node: str, path: Path, *, timeout: float = 60.0
) -> None:
    """`etcdctl snapshot save` from one member, with the lab's client certificate."""
    cmd = [str(tools.etcdctl), f"--endpoints={access.endpoints[node]}", "--dial-timeout=5s"]
    if access.tls is not None:
        cmd += [
            f"--cacert={access.tls.ca}",
            f"--cert={access.tls.cert}",
            f"--key={access.tls.key}",
        ]
    _run([*cmd, "snapshot", "save", str(path)], f"etcdctl snapshot save from {node}", timeout)


def snapshot_status(tools: EtcdTools, path: Path) -> SnapshotStatus:
    out = _run(
        [str(tools.etcdutl), "snapshot", "status", "-w", "json", str(path)],
        "etcdutl snapshot status",
        30.0,
    )
    return parse_snapshot_status(out)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class ScratchUrls:
    client: str
    peer: str

    @classmethod
    def pick(cls) -> ScratchUrls:
        return cls(f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}")


SCRATCH_NAME = "kubedrill-restore"


def restore_snapshot(
    tools: EtcdTools, snapshot: Path, data_dir: Path, urls: ScratchUrls, *, timeout: float = 120.0
) -> None:
    """`etcdutl snapshot restore` into `data_dir`, as a new single-member cluster."""
    _run(
        [
            str(tools.etcdutl),
            "snapshot",
            "restore",
            str(snapshot),
            f"--data-dir={data_dir}",
            f"--name={SCRATCH_NAME}",
            f"--initial-cluster={SCRATCH_NAME}={urls.peer}",
            f"--initial-advertise-peer-urls={urls.peer}",
            "--initial-cluster-token=kubedrill-restore",
        ],
        "etcdutl snapshot restore",
        timeout,
    )


def die_with_runner(cmd: list[str]) -> list[str]:
    """`cmd` under util-linux's `setpriv --pdeathsig KILL` when it is there: should the runner
    be SIGKILLed (no `finally` runs), the kernel kills the scratch member with it. (A
    preexec_fn would do the same without setpriv, but is unsafe in a process with threads,
    and the workload's clients are threads.)"""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--", *cmd] if setpriv else cmd


@contextlib.contextmanager
def scratch_member(
    tools: EtcdTools, data_dir: Path, urls: ScratchUrls, *, timeout: float = 30.0
) -> Iterator[EtcdClient]:
    """A single-member etcd on 127.0.0.1 serving `data_dir`; yields a client once it answers.
    Stopped (SIGTERM, then SIGKILL after 10 s) on every way out."""
    log_path = data_dir.parent / "scratch-etcd.log"
    cmd = [
        str(tools.etcd),
        f"--name={SCRATCH_NAME}",
        f"--data-dir={data_dir}",
        f"--listen-client-urls={urls.client}",
        f"--advertise-client-urls={urls.client}",
        f"--listen-peer-urls={urls.peer}",
        f"--initial-advertise-peer-urls={urls.peer}",
        f"--initial-cluster={SCRATCH_NAME}={urls.peer}",
        "--initial-cluster-token=kubedrill-restore",
    ]
    client: EtcdClient | None = None
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            die_with_runner(cmd),
            env=tool_environment(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        client = EtcdClient(EtcdAccess({"scratch": urls.client}, None), timeout=1.0)

        def answers() -> bool:
            if proc.poll() is not None:
                return True  # exited: stop waiting, reported below
            try:
                client.status("scratch")
            except EtcdError:
                return False
            return True

        _, ok = poll_until(answers, bool, timeout=timeout, interval=0.1)
        if not ok or proc.poll() is not None:
            tail = log_path.read_text(errors="replace").splitlines()[-8:]
            state = f"exited {proc.returncode}" if proc.poll() is not None else "no answer"
            raise BackupError(
                f"scratch etcd on the restored data dir: {state} within {timeout:g} s:\n"
                + "\n".join(tail),
                "the restored data dir may be unusable",
            )
        yield client
    finally:
        if client is not None:
            client.close()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextlib.contextmanager
def scratch_dir() -> Iterator[Path]:
    """A private directory for the snapshot and the restored data; removed on every way out."""
    path = Path(tempfile.mkdtemp(prefix="kubedrill-backup-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@dataclass
class RestoredWritesCheck:
    """`restored_writes_verdict` as a drill check (Drill.check_now), with its figures
    reported next to the drill's."""

    ops: Sequence[Operation]
    restored: Mapping[str, tuple[str, int]]
    revision: int
    name: str = CHECK

    def run(self, ctx: CheckContext) -> Verdict:
        found = restored_writes_verdict(self.ops, self.restored, self.revision, check=self.name)
        ctx.observe("backup_keys_compared", found.figures["keys_required"])
        ctx.observe("backup_keys_restored", found.figures["keys_restored"])
        return found
