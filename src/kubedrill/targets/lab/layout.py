"""Where the lab supervisor keeps a component's hold file and pid file in the lab's state
directory: one place for the layout that faults, controls and the data drills' runbooks read
and write (the supervisor itself names components the same way: `ComponentSpec.key`)."""

from __future__ import annotations

from pathlib import Path


def component_key(host: str, component: str) -> str:
    return f"{host}__{component}"


def hold_file(state_dir: Path, host: str, component: str) -> Path:
    """While it exists the supervisor leaves the component stopped (a stop fault's hold)."""
    return state_dir / "holds" / component_key(host, component)


def pid_file(state_dir: Path, host: str, component: str) -> Path:
    return state_dir / "run" / f"{component_key(host, component)}.pid"


def read_pid(state_dir: Path, host: str, component: str) -> int | None:
    """The pid the supervisor recorded for the component, or None (not running, or no file)."""
    try:
        return int(pid_file(state_dir, host, component).read_text())
    except (OSError, ValueError):
        return None
