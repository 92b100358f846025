"""Build the linearizability helper (tools/lincheck, Go + porcupine) and cache it.

The helper is this project's own source, not an upstream module, so the cache key is a hash of
its source files: editing main.go rebuilds it, a second run builds nothing. It is built in a
copy of the source so that `go` never writes into the checkout.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from kubedrill.errors import MissingBinaryError
from kubedrill.targets.lab.build import Progress, go_environment, is_complete, require_go
from kubedrill.targets.lab.config import default_cache_dir

BINARY = "lincheck"
# src/kubedrill/consistency/ -> the checkout's root; tools/ is not packaged, so the helper is
# available from a checkout (an editable install), which is how kubedrill is run.
SOURCE_DIR = Path(__file__).resolve().parents[3] / "tools" / "lincheck"


def _quiet(_message: str) -> None:
    pass


def source_files(source: Path) -> list[Path]:
    """What the build depends on: go.mod, go.sum and the non-test Go files."""
    required = [source / "go.mod", source / "go.sum", source / "main.go"]
    missing = [p.name for p in required if not p.is_file()]
    if missing:
        raise MissingBinaryError(
            f"the lincheck helper's source is incomplete: {source} lacks {', '.join(missing)}",
            "run kubedrill from a checkout of its repository (pip install -e .), which has "
            "tools/lincheck",
        )
    go_files = sorted(p for p in source.glob("*.go") if not p.name.endswith("_test.go"))
    return [source / "go.mod", source / "go.sum", *go_files]


def build_key(source: Path) -> str:
    digest = hashlib.sha256()
    for path in source_files(source):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return f"{BINARY}-{digest.hexdigest()[:12]}"


def ensure_lincheck(
    cache_dir: Path | None = None, progress: Progress = _quiet, source: Path = SOURCE_DIR
) -> Path:
    """Path of the built helper, building it first if this source was never built."""
    cache_dir = cache_dir or default_cache_dir()
    target = cache_dir / "bin" / build_key(source)
    if is_complete(target, [BINARY]):
        return target / BINARY
    go = require_go("the lincheck helper", "then run `kubedrill build`")
    progress(
        f"building {target.name} from {source} (under a minute the first time, seconds once "
        f"Go has built its standard library; cached in {target})"
    )
    started = time.monotonic()
    env = go_environment()
    # Not the lab builds' work directory, which they remove when done; beside the target, so
    # that the finished build moves into place with a rename.
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{target.name}-", dir=target.parent) as tmp:
        work = Path(tmp)
        for path in source_files(source):
            shutil.copy2(path, work / path.name)
        staging = work / "out"
        staging.mkdir()
        cmd = [go, "build", "-trimpath", "-o", str(staging / BINARY), "."]
        proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise MissingBinaryError(
                f"`go build` of the lincheck helper failed (exit {proc.returncode}):\n"
                + (proc.stderr or proc.stdout).strip()[-3000:],
                "check that the Go module proxy is reachable and tools/lincheck builds "
                "(cd tools/lincheck && go build .)",
            )
        (staging / ".complete").write_text(
            json.dumps({"built_seconds": round(time.monotonic() - started, 1)})
        )
        # Another process may have built the same source meanwhile: its result is as good.
        if not is_complete(target, [BINARY]):
            shutil.rmtree(target, ignore_errors=True)
            try:
                staging.rename(target)
            except OSError:
                if not is_complete(target, [BINARY]):
                    raise
    progress(f"built {target.name} in {time.monotonic() - started:.1f} s")
    return target / BINARY
