"""Running the external programs of an image build (debootstrap, chroot, podman, gcc, go).

Output is kept, not shown: a failure raises with the command's last lines, so a cold build prints
only kubedrill's own progress lines. Heavy steps run under `nice` because the machine is shared.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from kubedrill.errors import KubedrillError

Progress = Callable[[str], None]
NICE = ("nice", "-n", "10")


class ImageBuildError(KubedrillError):
    """A step of the kind node image build failed."""


def run(
    cmd: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    stdin: bytes | None = None,
    nice: bool = False,
    check: bool = True,
    hint: str = "",
) -> subprocess.CompletedProcess[str]:
    """Run `cmd`, capture stdout and stderr; raise ImageBuildError with their tail on failure."""
    argv = [*NICE, *cmd] if nice else list(cmd)
    proc = subprocess.run(
        argv,
        cwd=cwd,
        env=dict(env) if env is not None else None,
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        check=False,
    )
    if check and proc.returncode != 0:
        tail = "\n".join((proc.stdout + "\n" + proc.stderr).strip().splitlines()[-25:])
        raise ImageBuildError(
            f"`{' '.join(cmd[:4])}{' ...' if len(cmd) > 4 else ''}` exited {proc.returncode}:\n"
            f"{tail}",
            hint or "read the output above; `kubedrill kind image build --force` starts over",
        )
    return proc


def output(cmd: Sequence[str], *, env: Mapping[str, str] | None = None, hint: str = "") -> str:
    """stdout of a successful `run`, stripped."""
    return run(cmd, env=env, hint=hint).stdout.strip()
