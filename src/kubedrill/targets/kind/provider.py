"""Which container engine kind drives, and which kind CLI drives it.

kind picks Docker when it finds it, else podman only when told (KIND_EXPERIMENTAL_PROVIDER).
kubedrill decides the same way but says so: `--provider` wins; without it, a Docker daemon
(DOCKER_HOST, or its socket) with the docker CLI means Docker, else podman when installed.

With podman, kubedrill needs kind's exact behaviour (its network option, the `podman run` calls
the address shim rewrites), so it runs the pinned kind build from the node-image code. With
Docker, a kind on PATH is used as before, the pinned build when there is none.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from kubedrill.errors import ConfigError, MissingBinaryError

PROVIDERS = ("docker", "podman")
DOCKER_SOCKET = Path("/var/run/docker.sock")
KIND_VERSION = "v0.33.0"

Progress = Callable[[str], None]


def docker_daemon_present(docker_host: str | None = None) -> bool:
    if shutil.which("docker") is None:
        return False
    return bool(docker_host or os.environ.get("DOCKER_HOST")) or DOCKER_SOCKET.is_socket()


def choose_provider(option: str | None, docker_host: str | None = None) -> str:
    """`docker` or `podman`; ConfigError for another name, MissingBinaryError without one."""
    if option is not None:
        if option not in PROVIDERS:
            raise ConfigError(
                f"unknown provider {option!r}", "use --provider podman or --provider docker"
            )
        if shutil.which(option) is None:
            raise MissingBinaryError(
                f"--provider {option}: the {option} CLI is not installed",
                "install it, or leave --provider out to use the engine that is there",
            )
        return option
    if docker_daemon_present(docker_host):
        return "docker"
    if shutil.which("podman") is not None:
        return "podman"
    raise MissingBinaryError(
        "neither a Docker daemon nor podman was found",
        "install podman (`make setup` does) or Docker, or name one with --provider",
    )


def kind_binary(provider: str, cache_dir: Path, progress: Progress) -> str:
    """The kind CLI to run for `provider` (see the module's docstring)."""
    on_path = shutil.which("kind")
    if provider == "docker" and on_path is not None:
        return on_path
    try:
        from kubedrill.targets.kind.image import kind_binary_path  # noqa: PLC0415

        return str(kind_binary_path(cache_dir, progress))  # cached, or built when Go is there
    except (ImportError, MissingBinaryError) as exc:
        reason = exc.message if isinstance(exc, MissingBinaryError) else str(exc)
    if on_path is not None:
        progress(f"using {on_path}: kubedrill's pinned kind {KIND_VERSION} is not available "
                 f"({reason})")  # fmt: skip
        return on_path
    raise MissingBinaryError(
        f"kind is not installed and kubedrill's pinned kind {KIND_VERSION} is not available "
        f"({reason})",
        f"install Go (1.24 or newer) so kubedrill builds kind {KIND_VERSION}, or put kind on PATH",
    )
