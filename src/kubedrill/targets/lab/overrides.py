"""Per-component flag overrides in the lab's state: the lab's equivalent of an operator editing a
static-pod manifest (kubeadm's etcd.yaml) before the kubelet starts the pod again.

`overrides/<host>__<component>.json` holds `{"flags": {"--name": "value", ...}}`. The supervisor
reads it at every start of that component and puts each flag in place of the same flag of the
component's fixed command line (appended when the command line has none). It lives in the lab's
state dir, so a supervisor started again (`lab up` after a crash) keeps it, and `lab down`
removes it with everything else.

Used by the member replacement runbook: a member started again with an empty data dir must join
with `--initial-cluster-state=existing` and the cluster's current `--initial-cluster`, not the
`new` of the lab's first start.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from kubedrill.errors import ConfigError

DIRECTORY = "overrides"


def override_path(state_dir: Path, key: str) -> Path:
    return state_dir / DIRECTORY / f"{key}.json"


def check_flags(flags: Mapping[str, str]) -> dict[str, str]:
    """Flags must be `--name` with a string value: anything else would not be a flag of the
    command line it replaces."""
    for name, value in flags.items():
        if not name.startswith("--") or "=" in name or len(name) < 3:
            raise ConfigError(f"override flag {name!r} is not a --flag name", "e.g. --log-level")
        if not isinstance(value, str):
            raise ConfigError(f"override flag {name} has a non-string value {value!r}", "")
    return dict(flags)


def with_flags(argv: Sequence[str], flags: Mapping[str, str]) -> tuple[str, ...]:
    """`argv` with every `--name=value` of `flags` in place of that flag's own (in its
    position), appended at the end when `argv` has no such flag. Only the `--name=value` form
    is replaced (the form every lab command line uses)."""
    out: list[str] = []
    done: set[str] = set()
    for arg in argv:
        name = arg.split("=", 1)[0]
        if arg.startswith("--") and name in flags:
            if name not in done:
                out.append(f"{name}={flags[name]}")
                done.add(name)
            continue
        out.append(arg)
    out += [f"{name}={value}" for name, value in flags.items() if name not in done]
    return tuple(out)


def read_flags(state_dir: Path, key: str) -> dict[str, str]:
    """The override of `key`, or {} when there is none. A file that cannot be read is an error
    (starting a member with flags other than the ones asked for is worse than not starting)."""
    path = override_path(state_dir, key)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"override {path} is unreadable: {exc}", "fix or remove it") from exc
    return parse_flags(text, path)


def parse_flags(text: str, path: Path) -> dict[str, str]:
    """An override file's flags (`path` names it in errors)."""
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"override {path} is unreadable: {exc}", "fix or remove it") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("flags"), dict):
        raise ConfigError(f"override {path} has no 'flags' mapping", "fix or remove it")
    return check_flags(raw["flags"])


def write_flags(state_dir: Path, key: str, flags: Mapping[str, str]) -> Path:
    """Write the override atomically (a start never reads half a file) and durably."""
    path = override_path(state_dir, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump({"flags": check_flags(flags)}, fh, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.rename(path)
    return path


def clear_flags(state_dir: Path, key: str) -> bool:
    """Remove the override; True when there was one."""
    path = override_path(state_dir, key)
    existed = path.exists()
    path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        path.parent.rmdir()  # only when empty: the lab's state looks as before
    return existed
