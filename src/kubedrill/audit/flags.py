"""Command-line flags as components read them (Go's flag package and pflag)."""

from __future__ import annotations

from collections.abc import Sequence


def parse_flags(argv: Sequence[str]) -> dict[str, str]:
    """`--name=value` and `--name value`; a bare `--name` (followed by another flag or by
    nothing) is "true". argv[0], the program, is skipped; a later flag wins, as in Go."""
    flags: dict[str, str] = {}
    args = list(argv[1:])
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if not arg.startswith("-") or arg in ("-", "--"):
            continue
        name, eq, value = arg.lstrip("-").partition("=")
        if not eq:
            if i < len(args) and not args[i].startswith("-"):
                value = args[i]
                i += 1
            else:
                value = "true"
        flags[name] = value
    return flags


_GO_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def go_duration(text: str) -> float | None:
    """A Go duration ("1h", "30m", "1h0m0s", "1.5s") in seconds; None when it is not one."""
    rest = text.strip()
    if not rest:
        return None
    total = 0.0
    while rest:
        number = ""
        while rest and (rest[0].isdigit() or rest[0] == "."):
            number, rest = number + rest[0], rest[1:]
        unit = next((u for u in ("ms", "us", "µs", "ns", "h", "m", "s") if rest.startswith(u)), "")
        if not number or not unit:
            return None
        try:
            total += float(number) * _GO_UNITS[unit]
        except ValueError:
            return None
        rest = rest[len(unit) :]
    return total


def is_false(value: str | None) -> bool:
    """Go's strconv.ParseBool false values."""
    return value is not None and value.strip() in ("false", "False", "FALSE", "f", "F", "0")
