"""The lab's state file (`lab.json`): what `lab up` made, read back by every later command.

Its shape is declared once, as typed dicts that pydantic validates when the file is read (the
same library and error style as the lab config, the inventory and the kind config): a state
file that is truncated, hand-edited or from an incompatible kubedrill is one clear line naming
the field, instead of a KeyError deep inside a drill. Fields a newer kubedrill adds are kept
(extra="allow"), so reading never drops what a writer put there.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NotRequired

from pydantic import ConfigDict, with_config
from typing_extensions import TypedDict

from kubedrill.errors import ConfigError
from kubedrill.validation import validate_document

STATE_FILE = "lab.json"
_KEEP_EXTRA = ConfigDict(extra="allow")


@with_config(_KEEP_EXTRA)
class HostState(TypedDict):
    name: str
    roles: list[str]
    address: str
    netns: str
    region: NotRequired[str | None]  # the regions topology's region, else None
    zone: NotRequired[str | None]  # the lab's fault domain (lab.zones), else None


@with_config(_KEEP_EXTRA)
class EtcdTlsState(TypedDict):
    ca: str
    cert: str
    key: str


@with_config(_KEEP_EXTRA)
class EtcdState(TypedDict):
    endpoints: dict[str, str]
    metrics: dict[str, str]
    failpoints: dict[str, str]
    peer_port: int
    client_port: int
    tls: EtcdTlsState
    election_timeout_ms: int
    heartbeat_interval_ms: int


@with_config(_KEEP_EXTRA)
class LbState(TypedDict):
    kind: str  # haproxy | nginx
    hosts: list[str]
    vip: str | None  # a keepalived pair's virtual IP, else None


@with_config(_KEEP_EXTRA)
class KubeState(TypedDict):
    kubeconfig: str
    server: str
    haproxy_socket: str | None  # None: nginx, which has no stats socket
    haproxy_sockets: NotRequired[list[str]]  # one per LB host of a pair
    workers: int
    lb: NotRequired[LbState]


@with_config(_KEEP_EXTRA)
class LabState(TypedDict):
    name: str
    topology: str
    subnet: str
    bridge: str
    gateway: str
    binaries: dict[str, str]
    versions: dict[str, str]
    delay_method: str
    hosts: list[HostState]
    etcd: EtcdState
    kubernetes: NotRequired[KubeState]
    stop_grace_s: NotRequired[float]  # the supervisor's SIGTERM-to-SIGKILL grace (maintenance)


def read_state(state_dir: Path) -> LabState | None:
    """The lab's state, or None when there is no lab (no state file)."""
    path = state_dir / STATE_FILE
    try:
        raw: Any = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"lab state {path} cannot be read: {exc}", _HINT) from exc
    return validate_document(LabState, raw, root="", hint=_HINT, label=f"lab state {path}: ")


def write_state(state_dir: Path, state: LabState) -> None:
    (state_dir / STATE_FILE).write_text(json.dumps(state, indent=1))


_HINT = "the lab state is damaged or from another kubedrill: `kubedrill lab down` removes the lab"
