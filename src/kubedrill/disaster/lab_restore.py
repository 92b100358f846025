"""Disaster recovery on the lab: every etcd member restored from one snapshot, the control
plane stopped around it, as etcd's recovery guide and Kubernetes' "restoring an etcd cluster"
say. The drill carries the steps out one by one (each timed); `kubedrill etcd restore-lab`
carries out the same steps for `kubedrill heal`, so a run killed at any point of the disaster
or of the restore ends the same way: a working cluster at the snapshot's state.

Members are stopped through the lab supervisor's hold files (a held component is not
restarted) and SIGKILL: in a disaster nothing waits for a graceful stop. The restore gives the
cluster a new token (a new cluster ID: a member that kept old data cannot rejoin by mistake),
bumps the revision far past anything clients saw and marks it compacted, so watches and
informers relist instead of waiting on revisions that now mean something else.

Everything here touches only the lab's own state directory: its data dirs, its hold files, and
`dr/<id>/` (the snapshot, the lost data dirs, the restored marker), removed once the cluster
is back."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from kubedrill.disaster.backup import BackupError, tool_environment
from kubedrill.errors import TargetError
from kubedrill.ledger import pid_alive
from kubedrill.targets.lab import layout
from kubedrill.targets.lab.member_disk import gone
from kubedrill.targets.lab.state import STATE_FILE, read_state

# etcd's and Kubernetes' guides: far more than the revisions written since the snapshot, so
# every revision after the restore is greater than any a client saw before it.
BUMP_REVISION = 1_000_000_000
KUBE_COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
RESTORED_MARKER = "restored"


@dataclass(frozen=True)
class Member:
    name: str
    address: str
    data_dir: Path


@dataclass(frozen=True)
class LabRestore:
    """What a restore of this lab needs, read from its state directory."""

    state_dir: Path
    lab: str
    members: tuple[Member, ...]
    peer_port: int
    etcdutl: Path
    kube: tuple[tuple[str, str], ...]  # (host, component) of the control plane

    @classmethod
    def from_state_dir(cls, state_dir: Path) -> LabRestore:
        try:
            state = read_state(state_dir)
            specs = json.loads((state_dir / "components.json").read_text())
            if state is None:
                raise FileNotFoundError(state_dir / STATE_FILE)
        except (OSError, ValueError) as exc:
            raise TargetError(
                f"no lab state in {state_dir}: {exc}",
                "give the state directory of a lab that is up (kubedrill lab status)",
            ) from exc
        endpoints = state["etcd"]["endpoints"]
        members = tuple(
            Member(h["name"], h["address"], state_dir / "data" / h["name"] / "etcd")
            for h in state["hosts"]
            if h["name"] in endpoints
        )
        kube = tuple(
            (s["host"], s["component"]) for s in specs if s["component"] in KUBE_COMPONENTS
        )
        etcdutl = state.get("binaries", {}).get("etcdutl")
        if not etcdutl:
            raise TargetError(
                f"the lab in {state_dir} records no etcdutl",
                "bring it up again with this version of kubedrill (kubedrill lab up)",
            )
        return cls(
            state_dir, state["name"], members, int(state["etcd"]["peer_port"]), Path(etcdutl), kube
        )

    # -- where things are ----------------------------------------------------------------------

    def dr_dir(self, run: str) -> Path:
        return self.state_dir / "dr" / run

    def hold_file(self, host: str, component: str) -> Path:
        return layout.hold_file(self.state_dir, host, component)

    def pid(self, host: str, component: str) -> int | None:
        return layout.read_pid(self.state_dir, host, component)

    def initial_cluster(self) -> str:
        return ",".join(f"{m.name}=https://{m.address}:{self.peer_port}" for m in self.members)

    def token(self, run: str) -> str:
        return f"kubedrill-{self.lab}-restored-{run}"

    # -- steps -----------------------------------------------------------------------------------

    def stop(self, targets: list[tuple[str, str]], *, timeout: float = 15.0) -> str:
        """Hold each (host, component) down and SIGKILL it; return once every one is gone."""
        killed = []
        for host, component in targets:
            hold = self.hold_file(host, component)
            hold.parent.mkdir(parents=True, exist_ok=True)
            hold.touch()
            pid = self.pid(host, component)
            if pid is not None and pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
                killed.append((pid, f"{component} on {host}"))
        left = [what for pid, what in killed if not gone(pid, timeout)]
        if left:
            raise TargetError(f"still running after SIGKILL: {', '.join(left)}", "")
        return f"stopped {len(killed)} of {len(targets)}"

    def release(self, targets: list[tuple[str, str]]) -> str:
        """Remove the holds: the supervisor starts each component at once."""
        for host, component in targets:
            self.hold_file(host, component).unlink(missing_ok=True)
        return f"released {len(targets)}"

    def etcd_targets(self, names: list[str] | None = None) -> list[tuple[str, str]]:
        return [(m.name, "etcd") for m in self.members if names is None or m.name in names]

    def lose_data(self, run: str, names: list[str]) -> str:
        """The disks are gone: each named member's data dir moved out of its way (into the DR
        directory, so nothing outside the lab is touched and nothing is deleted yet)."""
        lost = self.dr_dir(run) / "lost"
        lost.mkdir(parents=True, exist_ok=True)
        moved = []
        for member in self.members:
            if member.name in names and member.data_dir.exists():
                member.data_dir.rename(lost / member.name)
                moved.append(member.name)
        return f"data dirs lost: {', '.join(moved) or 'none'}"

    def restore_all(self, run: str, snapshot: Path, *, timeout: float = 120.0) -> str:
        """`etcdutl snapshot restore` into every member's data dir (any data still there
        moved aside first: a restore needs an empty place), with a new token."""
        aside = self.dr_dir(run) / "replaced"
        aside.mkdir(parents=True, exist_ok=True)
        for member in self.members:
            if member.data_dir.exists():
                target = aside / member.name
                if target.exists():  # a restore attempt before this one (heal after a kill)
                    shutil.rmtree(target)
                member.data_dir.rename(target)
            member.data_dir.parent.mkdir(parents=True, exist_ok=True)
            cmd = [
                str(self.etcdutl),
                "snapshot",
                "restore",
                str(snapshot),
                f"--data-dir={member.data_dir}",
                f"--name={member.name}",
                f"--initial-cluster={self.initial_cluster()}",
                f"--initial-advertise-peer-urls=https://{member.address}:{self.peer_port}",
                f"--initial-cluster-token={self.token(run)}",
                f"--bump-revision={BUMP_REVISION}",
                "--mark-compacted",
            ]
            done = subprocess.run(
                cmd,
                env=tool_environment(),
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
            if done.returncode != 0:
                shutil.rmtree(member.data_dir, ignore_errors=True)  # half-written: never start it
                tail = "\n".join(done.stderr.strip().splitlines()[-6:])
                raise BackupError(
                    f"etcdutl snapshot restore for {member.name} failed:\n{tail}",
                    f"the snapshot is {snapshot}; kubedrill etcd restore-lab retries",
                )
        return f"{len(self.members)} members restored, token {self.token(run)}"

    def mark_restored(self, run: str) -> None:
        marker = self.dr_dir(run) / RESTORED_MARKER
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()

    def restored(self, run: str) -> bool:
        return (self.dr_dir(run) / RESTORED_MARKER).exists()

    def clean(self, run: str) -> None:
        """The lost and replaced data dirs, the snapshot: gone once the cluster is back."""
        shutil.rmtree(self.dr_dir(run), ignore_errors=True)
        dr = self.state_dir / "dr"
        if dr.is_dir() and not any(dr.iterdir()):
            dr.rmdir()


@dataclass(frozen=True)
class RunbookStep:
    name: str
    what: str
    do: Callable[[], str]


def runbook(restore: LabRestore, run: str, snapshot: Path) -> Iterator[RunbookStep]:
    """The recovery, in order. The drill times each step; `recover` runs them all."""
    etcd = restore.etcd_targets()
    kube = list(restore.kube)
    if kube:
        yield RunbookStep(
            "stop_control_plane",
            "stop every kube-apiserver, controller-manager and scheduler",
            lambda: restore.stop(kube),
        )
    yield RunbookStep(
        "stop_etcd", "stop every etcd member still running", lambda: restore.stop(etcd)
    )
    yield RunbookStep(
        "restore",
        "etcdutl snapshot restore into every member's data dir (new token, revision bumped "
        f"by {BUMP_REVISION:,}, marked compacted)",
        lambda: restore.restore_all(run, snapshot),
    )
    yield RunbookStep("start_etcd", "start every etcd member", lambda: restore.release(etcd))
    if kube:
        yield RunbookStep(
            "start_control_plane",
            "start the apiservers, controller-managers and schedulers again",
            lambda: restore.release(kube),
        )


def recover(state_dir: Path, run: str, snapshot: Path) -> str:
    """What `kubedrill heal` runs for a disaster fault: the whole runbook unless the drill
    finished it (its marker), then the DR directory removed. Idempotent."""
    restore = LabRestore.from_state_dir(state_dir)
    done = []
    if not restore.restored(run):
        if not snapshot.exists():
            raise TargetError(
                f"the snapshot {snapshot} is gone and the restore did not finish",
                "restore the lab's etcd from a snapshot by hand, or rebuild the lab "
                "(kubedrill lab down && kubedrill lab up)",
            )
        for step in runbook(restore, run, snapshot):
            done.append(f"{step.name}: {step.do()}")
        restore.mark_restored(run)
    else:
        # The drill restored; release anything it may still hold (killed between steps).
        done.append(restore.release([*restore.etcd_targets(), *restore.kube]))
    restore.clean(run)
    return "; ".join(done) or "nothing to do"
