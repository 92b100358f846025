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

The file may also hold `"bin_dir": "/path"`: the component's binary is then the one of the same
name in that directory (the upgrade drill's new static-pod image, set while the component is
down). Flags and binary directory are written independently; each write keeps the other.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
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


def with_bin_dir(argv: Sequence[str], bin_dir: str | None) -> tuple[str, ...]:
    """`argv` with its binary taken from `bin_dir` (same file name), or unchanged."""
    if not bin_dir or not argv:
        return tuple(argv)
    return (str(Path(bin_dir) / Path(argv[0]).name), *argv[1:])


@dataclass(frozen=True)
class Override:
    """What an override file says: flags in place of the command line's, and maybe the
    directory the binary comes from."""

    flags: Mapping[str, str] = field(default_factory=dict)
    bin_dir: str | None = None

    def apply(self, argv: Sequence[str]) -> tuple[str, ...]:
        return with_bin_dir(with_flags(argv, self.flags), self.bin_dir)

    def describe(self) -> str:
        parts = [f"{k}={v}" for k, v in self.flags.items()]
        return " ".join([*parts, *([f"binaries from {self.bin_dir}"] if self.bin_dir else [])])


def read_override(state_dir: Path, key: str) -> Override:
    """The override of `key` (empty when there is none). A file that cannot be read is an
    error (starting a member other than as asked is worse than not starting)."""
    path = override_path(state_dir, key)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Override()
    except OSError as exc:
        raise ConfigError(f"override {path} is unreadable: {exc}", "fix or remove it") from exc
    return parse_override(text, path)


def read_flags(state_dir: Path, key: str) -> dict[str, str]:
    """The override's flags, or {} when there is none."""
    return dict(read_override(state_dir, key).flags)


def parse_override(text: str, path: Path) -> Override:
    """An override file (`path` names it in errors)."""
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"override {path} is unreadable: {exc}", "fix or remove it") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("flags"), dict):
        raise ConfigError(f"override {path} has no 'flags' mapping", "fix or remove it")
    bin_dir = raw.get("bin_dir")
    if bin_dir is not None and (not isinstance(bin_dir, str) or not bin_dir.startswith("/")):
        raise ConfigError(f"override {path}: bin_dir {bin_dir!r} is not an absolute path", "")
    return Override(check_flags(raw["flags"]), bin_dir)


def parse_flags(text: str, path: Path) -> dict[str, str]:
    """An override file's flags (`path` names it in errors)."""
    return dict(parse_override(text, path).flags)


def write_flags(state_dir: Path, key: str, flags: Mapping[str, str]) -> Path:
    """Write the override's flags atomically (a start never reads half a file) and durably,
    keeping its binary directory."""
    old = read_override(state_dir, key)
    return _write(state_dir, key, Override(check_flags(flags), old.bin_dir))


def write_bin_dir(state_dir: Path, key: str, bin_dir: Path) -> Path:
    """Start the component from `bin_dir` from now on, keeping the override's flags."""
    old = read_override(state_dir, key)
    return _write(state_dir, key, Override(old.flags, str(bin_dir)))


def _write(state_dir: Path, key: str, override: Override) -> Path:
    path = override_path(state_dir, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    document: dict[str, object] = {"flags": dict(override.flags)}
    if override.bin_dir:
        document["bin_dir"] = override.bin_dir
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(document, fh, indent=1)
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
