"""One way to read the files kubedrill is given or keeps: pydantic, strict, unknown fields refused.

The lab config, the SSH inventory, the kind config and the lab's state file each declare their
shape as typed classes (frozen dataclasses or pydantic models). `validate_document` checks a
parsed YAML/JSON document against that shape and turns pydantic's first error into the one
line kubedrill prints: the field's full path (`lab.etcd.client_port`, `ssh.hosts[0].port`),
what it must be, what it was, and what to do.

Validation runs in pydantic's strict JSON mode: the document is what a YAML or JSON file can
hold, so a `'3'` is never taken for 3, `yes please` never for true, and paths and lists arrive
as strings and arrays. Field types that need a rule of their own (a TCP port, a positive number
of seconds, a local path) are the annotated types below, whose messages read like the rest.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar, Union

from pydantic import BaseModel, PlainValidator, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from kubedrill.errors import ConfigError

T = TypeVar("T")


def _checked(rule: Callable[[Any], Any]) -> PlainValidator:
    return PlainValidator(rule)


def _port(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise ValueError("must be an integer in 1..65535")
    return int(value)


def _positive_seconds(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError("must be a positive number of seconds")
    return float(value)


def _text(value: Any) -> str:
    # A YAML scalar like `user: 0` or `name: 42` is text the author meant; a float or a bool is not.
    if isinstance(value, bool) or not isinstance(value, str | int) or str(value) == "":
        raise ValueError("must be a non-empty string")
    return str(value)


def _local_path(value: Any) -> Path:
    if not isinstance(value, str) or not value:
        raise ValueError("must be a path (a non-empty string)")
    return Path(value).expanduser()


def int_range(low: int, high: int) -> PlainValidator:
    def rule(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"must be an integer in {low}..{high}")
        return int(value)

    return _checked(rule)


Port = Annotated[int, _checked(_port)]
PositiveSeconds = Annotated[float, _checked(_positive_seconds)]
Text = Annotated[str, _checked(_text)]
LocalPath = Annotated[Path, _checked(_local_path)]


def validate_document(schema: type[T], raw: object, *, root: str, hint: str, label: str = "") -> T:
    """`raw` as a `schema`, or a ConfigError naming the first wrong field under `root` (which
    may be empty: fields of a file's top level), after `label` (e.g. the file)."""
    try:
        document = json.dumps(raw, default=str)
    except (TypeError, ValueError) as exc:  # e.g. a YAML mapping with a non-string key
        raise ConfigError(f"{label}{root or 'it'} cannot be read: {exc}", hint) from exc
    try:
        return TypeAdapter(schema).validate_json(document, strict=True)
    except ValidationError as exc:
        message, fix = describe(exc.errors()[0], schema, root, hint)
        raise ConfigError(label + message, fix) from None


def describe(error: ErrorDetails, schema: type[Any], root: str, hint: str) -> tuple[str, str]:
    """pydantic's error as kubedrill's one line and its hint."""
    loc = tuple(error["loc"])
    where = field_path(root, loc)
    kind = error["type"]
    got = error.get("input")
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):
        parent = field_path(root, loc[:-1])
        known = field_names(_type_at(schema, loc[:-1]))
        return f"unknown field {where}", (
            f"known fields{' of ' + parent if parent else ''}: {', '.join(known)}"
            if known
            else hint
        )
    if kind in ("missing", "missing_keyword_argument"):
        return f"{where} is required", hint
    if kind == "value_error":
        reason = str((error.get("ctx") or {}).get("error", error["msg"]))
        return f"{where} {reason}, got {got!r}", hint
    if kind in ("dataclass_type", "dict_type", "model_type", "model_attributes_type"):
        return f"{where} must be a mapping, got {type(got).__name__}", hint
    if kind == "literal_error":
        expected = (error.get("ctx") or {}).get("expected", "")
        return f"{where} is {got!r}, expected {expected}", hint
    if kind == "too_short":
        least = (error.get("ctx") or {}).get("min_length", 1)
        wanted_len = "a non-empty list" if least == 1 else f"a list of at least {least} items"
        return f"{where} must be {wanted_len}", hint
    wanted = _WANTED.get(kind)
    if wanted is not None:
        return f"{where} must be {wanted}, got {got!r}", hint
    return f"{where}: {error['msg']}, got {got!r}", hint


_WANTED = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "tuple_type": "a list",
    "set_type": "a list",
    "frozen_set_type": "a list",
}


def field_path(root: str, loc: Sequence[int | str]) -> str:
    """('etcd', 'client_port') under 'lab' -> 'lab.etcd.client_port'; list indexes as [i]."""
    path = root
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else part
    return path


def field_names(schema: object) -> list[str]:
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        return sorted(schema.model_fields)
    if isinstance(schema, type) and dataclasses.is_dataclass(schema):
        return sorted(f.name for f in dataclasses.fields(schema))
    return []


def _type_at(schema: object, loc: Sequence[int | str]) -> object:
    """The declared type found by following `loc` from `schema` (best effort: for the hint)."""
    current = schema
    for part in loc:
        current = _unwrap(current)
        if isinstance(part, int):
            args = typing.get_args(current)
            current = args[0] if args else object
            continue
        hints = _hints(current)
        current = hints.get(part, object)
    return _unwrap(current)


def _hints(schema: object) -> dict[str, Any]:
    if isinstance(schema, type) and (
        dataclasses.is_dataclass(schema) or issubclass(schema, BaseModel)
    ):
        try:
            return typing.get_type_hints(schema, include_extras=False)
        except (NameError, TypeError):
            return {}
    return {}


def _unwrap(schema: object) -> object:
    """Optional[X] -> X, Annotated[X, ...] -> X."""
    origin = typing.get_origin(schema)
    if origin is Annotated:
        return _unwrap(typing.get_args(schema)[0])
    if origin in (Union, types.UnionType):
        rest = [a for a in typing.get_args(schema) if a is not type(None)]
        return _unwrap(rest[0]) if len(rest) == 1 else schema
    return schema
