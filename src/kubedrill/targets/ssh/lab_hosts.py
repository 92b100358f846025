"""Make a running lab reachable over SSH, to try (and test) the SSH target against it.

One sshd (Debian's openssh-server) per lab host, inside the host's network namespace and UTS
namespace (so `hostname` answers the host's name), listening on the host's lab address only:
root login with a key only, no password, a host key of its own. Its sshd_config sets
KUBEDRILL_LAB_STATE and KUBEDRILL_LAB_HOST for every session: that is how a lab host tells the
SSH target "my components are supervised by kubedrill's lab supervisor, here are its files".

Everything lives in <lab state>/ssh and every sshd runs inside the lab's namespaces, so
`kubedrill lab down` removes it all (it stops every process in the namespaces).
"""

from __future__ import annotations

import functools
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import yaml

from kubedrill.errors import MissingBinaryError, TargetError
from kubedrill.polling import poll_until
from kubedrill.targets.lab import lab
from kubedrill.targets.lab.config import LabConfig
from kubedrill.targets.lab.state import HostState, LabState

SSHD = "/usr/sbin/sshd"


def _keygen(path: Path, comment: str) -> None:
    if not path.exists():
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
            check=True,
            capture_output=True,
        )


def sshd_config(host: str, address: str, host_dir: Path, ssh_dir: Path, state_dir: Path) -> str:
    return "\n".join(
        [
            f"ListenAddress {address}:22",
            f"HostKey {host_dir / 'ssh_host_ed25519_key'}",
            f"PidFile {host_dir / 'sshd.pid'}",
            f"AuthorizedKeysFile {ssh_dir / 'authorized_keys'}",
            "PermitRootLogin prohibit-password",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "MaxSessions 64",
            "MaxStartups 64",
            f"SetEnv KUBEDRILL_LAB_STATE={state_dir} KUBEDRILL_LAB_HOST={host}",
            "",
        ]
    )


def _running(pid_file: Path) -> bool:
    try:
        pid = int(pid_file.read_text())
    except (OSError, ValueError):
        return False
    return Path(f"/proc/{pid}").exists()


def _listening(address: str) -> bool:
    try:
        with socket.create_connection((address, 22), timeout=0.5):
            return True
    except OSError:
        return False


def start_sshd(config: LabConfig) -> Path:
    """Start (idempotently) an sshd on every host of the running lab; returns the inventory."""
    if not Path(SSHD).exists() or shutil.which("ssh-keygen") is None:
        raise MissingBinaryError(
            f"{SSHD} or ssh-keygen is missing", "install Debian's openssh-server (make setup does)"
        )
    state_dir = config.state_dir
    state = lab.read_state(state_dir)
    if state is None or lab.supervisor_pid(state_dir) is None:
        raise TargetError(f"lab {config.name!r} is not up", "bring it up: kubedrill lab up")
    ssh_dir = state_dir / "ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir
    _keygen(ssh_dir / "id_ed25519", f"kubedrill-{config.name}")
    (ssh_dir / "authorized_keys").write_text((ssh_dir / "id_ed25519.pub").read_text())
    known: list[str] = []
    for host in state["hosts"]:
        host_dir = ssh_dir / host["name"]
        host_dir.mkdir(mode=0o700, exist_ok=True)
        _keygen(host_dir / "ssh_host_ed25519_key", f"kubedrill-{config.name}-{host['name']}")
        cfg = host_dir / "sshd_config"
        cfg.write_text(sshd_config(host["name"], host["address"], host_dir, ssh_dir, state_dir))
        public = (host_dir / "ssh_host_ed25519_key.pub").read_text().split()
        known.append(f"{host['address']} {public[0]} {public[1]}")
        if not _running(host_dir / "sshd.pid"):
            _start(host, cfg, host_dir)
    (ssh_dir / "known_hosts").write_text("\n".join(known) + "\n")
    for host in state["hosts"]:
        address: str = host["address"]
        _, up = poll_until(functools.partial(_listening, address), bool, timeout=10, interval=0.1)
        if not up:
            log = (ssh_dir / host["name"] / "sshd.log").read_text(errors="replace")[-500:]
            raise TargetError(
                f"sshd on lab host {host['name']} did not start: {log}", "see the log"
            )
    inventory = ssh_dir / "inventory.yaml"
    inventory.write_text(yaml.safe_dump(inventory_of(state, ssh_dir), sort_keys=False))
    return inventory


def _start(host: HostState, cfg: Path, host_dir: Path) -> None:
    script = f'hostname "$0" && exec {SSHD} -D -f {cfg} -E {host_dir / "sshd.log"}'
    subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            host["netns"],
            "unshare",
            "--uts",
            "--",
            "sh",
            "-c",
            script,
            host["name"],
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def inventory_of(state: LabState, ssh_dir: Path) -> dict[str, Any]:
    """The SSH inventory a user would write for this lab."""
    e = state["etcd"]
    h0 = next(iter(e["metrics"]))
    section: dict[str, Any] = {
        "name": state["name"],
        "known_hosts": str(ssh_dir / "known_hosts"),
        "ssh_config": None,
        "defaults": {"user": "root", "port": 22, "key": str(ssh_dir / "id_ed25519")},
        "etcd": {
            "client_port": e["client_port"],
            "peer_port": e["peer_port"],
            "ca": e["tls"]["ca"],
            "cert": e["tls"]["cert"],
            "key": e["tls"]["key"],
            "election_timeout_ms": e["election_timeout_ms"],
            "heartbeat_interval_ms": e["heartbeat_interval_ms"],
            "metrics_port": int(e["metrics"][h0].rsplit(":", 1)[1].split("/")[0]),
        },
    }
    if "kubernetes" in state:
        k = state["kubernetes"]
        section["kube"] = {
            "kubeconfig": k["kubeconfig"],
            "kubectl": state["binaries"]["kubectl"],
            "haproxy_socket": k["haproxy_socket"],
        }
    section["hosts"] = [
        {"name": h["name"], "address": h["address"], "roles": h["roles"]} for h in state["hosts"]
    ]
    return {"ssh": section}
