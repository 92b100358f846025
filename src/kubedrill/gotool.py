"""Build one of kubedrill's own small Go programs (kubedrill/data/tools/<name>) and cache it.

These helpers are this project's source, not upstream modules, so the cache key is a hash of
their source files: editing a .go file rebuilds, a second run builds nothing. The build runs in a
copy of the source so that `go` never writes into the checkout, and the result moves into
`<cache>/bin/<name>-<hash>/` with a rename, so a half-finished build is never used.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from kubedrill import data
from kubedrill.errors import MissingBinaryError
from kubedrill.targets.lab.build import Progress, go_environment, is_complete, require_go

TOOLS_DIR = data.TOOLS_DIR  # package data: an installed wheel has the sources too


def quiet(_message: str) -> None:
    pass


@dataclass(frozen=True)
class GoTool:
    """A program under tools/: `binary` is both the cache-key prefix and the output's name."""

    binary: str
    source: Path
    what: str  # for messages, e.g. "the lincheck helper"


def source_files(tool: GoTool) -> list[Path]:
    """What the build depends on: go.mod, go.sum and the non-test Go files."""
    source = tool.source
    required = [source / "go.mod", source / "go.sum", source / "main.go"]
    missing = [p.name for p in required if not p.is_file()]
    if missing:
        raise MissingBinaryError(
            f"{tool.what}'s source is incomplete: {source} lacks {', '.join(missing)}",
            f"reinstall kubedrill: its package data has kubedrill/data/tools/{source.name}",
        )
    go_files = sorted(p for p in source.glob("*.go") if not p.name.endswith("_test.go"))
    return [source / "go.mod", source / "go.sum", *go_files]


def build_key(tool: GoTool) -> str:
    digest = hashlib.sha256()
    for path in source_files(tool):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return f"{tool.binary}-{digest.hexdigest()[:12]}"


def ensure_go_tool(tool: GoTool, cache_dir: Path, progress: Progress = quiet) -> Path:
    """Path of the built program, building it first if this source was never built."""
    target = cache_dir / "bin" / build_key(tool)
    if is_complete(target, [tool.binary]):
        return target / tool.binary
    go = require_go(tool.what, "then run `kubedrill build`")
    progress(
        f"building {target.name} from {tool.source} (under a minute the first time, seconds "
        f"once Go has built its standard library; cached in {target})"
    )
    started = time.monotonic()
    env = go_environment()
    # Not the lab builds' work directory, which they remove when done; beside the target, so
    # that the finished build moves into place with a rename.
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{target.name}-", dir=target.parent) as tmp:
        work = Path(tmp)
        for path in source_files(tool):
            shutil.copy2(path, work / path.name)
        staging = work / "out"
        staging.mkdir()
        cmd = [go, "build", "-trimpath", "-o", str(staging / tool.binary), "."]
        proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise MissingBinaryError(
                f"`go build` of {tool.what} failed (exit {proc.returncode}):\n"
                + (proc.stderr or proc.stdout).strip()[-3000:],
                f"check that the Go module proxy is reachable and tools/{tool.source.name} "
                f"builds (cd tools/{tool.source.name} && go build .)",
            )
        (staging / ".complete").write_text(
            json.dumps({"built_seconds": round(time.monotonic() - started, 1)})
        )
        # Another process may have built the same source meanwhile: its result is as good.
        if not is_complete(target, [tool.binary]):
            shutil.rmtree(target, ignore_errors=True)
            try:
                staging.rename(target)
            except OSError:
                if not is_complete(target, [tool.binary]):
                    raise
    progress(f"built {target.name} in {time.monotonic() - started:.1f} s")
    return target / tool.binary
