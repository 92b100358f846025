"""Reading a YAML file a person gave kubedrill (lab config, SSH inventory, kind config): every
way it can be unreadable is one ConfigError naming the file, never a traceback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from kubedrill.errors import ConfigError


def yaml_problem(exc: yaml.YAMLError) -> str:
    """A YAML error on one line: what, and where (PyYAML's own text spans several lines)."""
    if isinstance(exc, yaml.MarkedYAMLError):
        problem = exc.problem or exc.context or "syntax error"
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        return f"{problem}{where}"
    return " ".join(str(exc).split())


def load_yaml_file(path: Path, what: str, hint: str) -> Any:
    """The parsed document; a ConfigError (with `hint`, how to give the file) when the file
    cannot be read, is not UTF-8 text, or is not YAML."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror or exc}", hint) from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{what} {path} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})",
            f"{hint}; it must be a YAML text file",
        ) from exc
    if "\x00" in text:
        raise ConfigError(
            f"{what} {path} is not text (it holds NUL bytes)", f"{hint}; it must be a YAML file"
        )
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"{what} {path} is not valid YAML: {yaml_problem(exc)}", "fix the YAML syntax"
        ) from exc
