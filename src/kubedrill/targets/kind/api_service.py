"""The Docker API for kind clusters that podman runs: `podman system service` on a socket of
kubedrill's own, started by `kubedrill kind up` and stopped by `kind down` with the last cluster.

kubedrill talks to node containers through the Docker API (the docker SDK), whoever serves it.
With Docker that is dockerd's socket. podman serves the same API only while a `podman system
service` runs; machines without systemd have no socket-activated one, so kubedrill keeps its own
for as long as a kubedrill-made podman cluster exists. The kind target and `kubedrill heal` find
it when neither DOCKER_HOST nor --docker-host names an engine and Docker's socket is absent.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

from kubedrill.errors import TargetError
from kubedrill.ledger import pid_alive

SOCKET = Path("/run/kubedrill/podman-api.sock")
PID_FILE = Path("/run/kubedrill/podman-api.pid")
DOCKER_SOCKET = Path("/var/run/docker.sock")


def url() -> str:
    return f"unix://{SOCKET}"


def running() -> int | None:
    """The service's pid when it runs (and its socket exists), else None."""
    try:
        pid = int(PID_FILE.read_text())
    except (OSError, ValueError):
        return None
    return pid if pid_alive(pid) and SOCKET.exists() else None


def ensure() -> str:
    """Start the service unless it runs; its Docker API URL."""
    if running() is not None:
        return url()
    SOCKET.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    SOCKET.unlink(missing_ok=True)
    proc = subprocess.Popen(
        ["podman", "system", "service", "--time=0", url()],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # outlives this command; `kind down` stops it
    )
    PID_FILE.write_text(str(proc.pid))
    deadline = time.monotonic() + 20
    while not SOCKET.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            stop()
            raise TargetError(
                "podman system service did not start its Docker API socket",
                "check `podman system service` by hand (podman must be installed and work)",
            )
        time.sleep(0.05)
    return url()


def stop() -> list[str]:
    """Stop the service (if it runs) and remove its files."""
    removed: list[str] = []
    with contextlib.suppress(OSError, ValueError):
        pid = int(PID_FILE.read_text())
        if pid_alive(pid):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
            removed.append(f"podman API service (pid {pid})")
    for path in (PID_FILE, SOCKET):
        path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        SOCKET.parent.rmdir()
    return removed


def default_docker_host() -> str | None:
    """The engine to use when none is named: DOCKER_HOST, else Docker's socket, else
    kubedrill's podman service when it runs, else None (the docker SDK's own default)."""
    if os.environ.get("DOCKER_HOST") or DOCKER_SOCKET.exists():
        return None
    return url() if running() is not None else None
