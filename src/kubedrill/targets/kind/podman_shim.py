"""A `podman` first on PATH for the `kind create` child only: it adds `--ip <fixed>` to the
`podman run` of each node, found by its `--name`, and hands every other call to the real podman
unchanged.

kind has no option for node addresses, and podman 4.3 gives a container a new one on every
start; a container created with `--ip` keeps it across stop/start and kill. The shim is a plain
sh script (kind calls podman hundreds of times while it creates a cluster; a shell costs a
millisecond, an interpreter tens), written from the IP plan into a private directory.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from kubedrill.targets.kind.ipplan import IPPlan

SHIM_NAME = "podman"

_TEMPLATE = """#!/bin/sh
# kubedrill: pins the addresses of kind cluster {cluster!s}'s nodes (podman run --ip by --name).
real={real}
if [ "$1" = run ]; then
  name=
  prev=
  for arg in "$@"; do
    case "$prev" in --name) name=$arg ;; esac
    case "$arg" in --name=*) name=${{arg#--name=}} ;; esac
    prev=$arg
  done
  ip=
  case "$name" in
{cases}  esac
  if [ -n "$ip" ]; then
    shift
    exec "$real" run --ip "$ip" "$@"
  fi
fi
exec "$real" "$@"
"""


def render_shim(plan: IPPlan, cluster: str, real_podman: str) -> str:
    """The shim's text; node names are kind's ([a-z0-9.-]), safe as case patterns."""
    cases = "".join(f"    {shlex.quote(n.name)}) ip={n.ip} ;;\n" for n in plan.nodes)
    return _TEMPLATE.format(cluster=cluster, real=shlex.quote(real_podman), cases=cases)


def install_shim(directory: Path, plan: IPPlan, cluster: str, real_podman: str) -> Path:
    """Write the shim as `<directory>/podman`, executable; returns the directory for PATH."""
    directory.mkdir(parents=True, exist_ok=True)
    shim = directory / SHIM_NAME
    shim.write_text(render_shim(plan, cluster, real_podman))
    shim.chmod(0o755)
    return directory


def path_with_shim(directory: Path, path: str | None) -> str:
    """PATH for the kind child: the shim's directory first, then the caller's PATH."""
    return os.pathsep.join([str(directory), *([path] if path else [])])
