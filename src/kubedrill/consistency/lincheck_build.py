"""Build the linearizability helper (tools/lincheck, Go + porcupine) and cache it.

The build itself is kubedrill.gotool's (keyed by a hash of the helper's source, built in a copy,
moved into place with a rename); this module names the helper and keeps its entry points.
"""

from __future__ import annotations

from pathlib import Path

from kubedrill.gotool import TOOLS_DIR, GoTool, ensure_go_tool, quiet
from kubedrill.gotool import build_key as _tool_key
from kubedrill.gotool import source_files as _tool_files
from kubedrill.targets.lab.build import Progress
from kubedrill.targets.lab.config import default_cache_dir

BINARY = "lincheck"
SOURCE_DIR = TOOLS_DIR / "lincheck"


def _tool(source: Path) -> GoTool:
    return GoTool(BINARY, source, "the lincheck helper")


def source_files(source: Path) -> list[Path]:
    """What the build depends on: go.mod, go.sum and the non-test Go files."""
    return _tool_files(_tool(source))


def build_key(source: Path) -> str:
    return _tool_key(_tool(source))


def ensure_lincheck(
    cache_dir: Path | None = None, progress: Progress = quiet, source: Path = SOURCE_DIR
) -> Path:
    """Path of the built helper, building it first if this source was never built."""
    return ensure_go_tool(_tool(source), cache_dir or default_cache_dir(), progress)
