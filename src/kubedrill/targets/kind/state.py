"""What `kubedrill kind up` changed on this machine, written down so `kind down` undoes exactly
that and nothing else.

One file per cluster (`/var/lib/kubedrill/kind/<name>.json`: the provider, the podman network
kubedrill created for it, the node address plan, the kubeconfig path) and one for the host
(`host.json`: the kernel settings and directories changed for kind, the values they had before,
and which clusters still need them). The host record is shared because two kind clusters may
run at once: the settings go back only when the last one is down.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kubedrill.errors import LedgerError

STATE_DIR = Path("/var/lib/kubedrill/kind")
HOST_FILE = "host.json"


@dataclass
class ClusterRecord:
    name: str
    provider: str  # docker or podman
    kubeconfig: str
    network: str | None = None  # the podman network kubedrill created, None: kind's default
    subnet: str | None = None
    nodes: dict[str, str] = field(default_factory=dict)  # node name -> pinned IPv4


@dataclass
class HostRecord:
    holders: list[str] = field(default_factory=list)  # clusters that need the settings
    sysctl_before: dict[str, str] = field(default_factory=dict)  # key -> value before the first
    sysctl_set: dict[str, str] = field(default_factory=dict)  # what kubedrill wrote
    created_dirs: list[str] = field(default_factory=list)
    snapshot: dict[str, str] = field(default_factory=dict)  # every sysctl before the first up


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)  # never a half-written record


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data: Any = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise LedgerError(
            f"kubedrill's kind state {path} is unreadable: {exc}",
            "look at the file; remove it only after undoing by hand what it records",
        ) from exc
    if not isinstance(data, dict):
        raise LedgerError(f"kubedrill's kind state {path} is not a JSON object")
    return data


def cluster_path(name: str, state_dir: Path = STATE_DIR) -> Path:
    return state_dir / f"{name}.json"


def save_cluster(record: ClusterRecord, state_dir: Path = STATE_DIR) -> None:
    _write_json(cluster_path(record.name, state_dir), asdict(record))


def load_cluster(name: str, state_dir: Path = STATE_DIR) -> ClusterRecord | None:
    data = _read_json(cluster_path(name, state_dir))
    if data is None:
        return None
    try:
        return ClusterRecord(**data)
    except TypeError as exc:
        raise LedgerError(f"kubedrill's kind state for {name!r} has unknown fields: {exc}") from exc


def remove_cluster(name: str, state_dir: Path = STATE_DIR) -> None:
    cluster_path(name, state_dir).unlink(missing_ok=True)


def clusters(state_dir: Path = STATE_DIR) -> list[str]:
    """Clusters with a record (made by `kind up`, not yet taken down)."""
    if not state_dir.is_dir():
        return []
    return sorted(p.stem for p in state_dir.glob("*.json") if p.name != HOST_FILE)


@contextlib.contextmanager
def host_record(state_dir: Path = STATE_DIR) -> Iterator[HostRecord]:
    """The host record under an exclusive lock; written back when the block ends, removed when
    no cluster holds it any more."""
    state_dir.mkdir(parents=True, exist_ok=True)
    with (state_dir / "host.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        path = state_dir / HOST_FILE
        data = _read_json(path)
        try:
            record = HostRecord(**data) if data is not None else HostRecord()
        except TypeError as exc:
            raise LedgerError(f"kubedrill's host state {path} has unknown fields: {exc}") from exc
        yield record
        if record.holders:
            _write_json(path, asdict(record))
        else:
            path.unlink(missing_ok=True)


def remove_state_dir_if_empty(state_dir: Path = STATE_DIR) -> None:
    """The directory goes with its last record (the lock file and empty per-cluster directories
    are all that is left), and /var/lib/kubedrill with it when nothing else is kept there."""
    if not state_dir.is_dir():
        return
    for sub in state_dir.iterdir():  # a cluster's directory emptied by its own cleanup
        if sub.is_dir() and not any(sub.iterdir()):
            sub.rmdir()
    left = [p for p in state_dir.iterdir() if p.name != "host.lock"]
    if not left:
        (state_dir / "host.lock").unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            state_dir.rmdir()
            if state_dir == STATE_DIR:
                state_dir.parent.rmdir()  # fails (and stays) when not empty
