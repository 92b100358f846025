"""One validation library for every file kubedrill reads: its one-line errors, and the lab's
state file read back through it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pydantic import ConfigDict

from kubedrill.errors import ConfigError
from kubedrill.targets.lab.state import LabState, read_state, write_state
from kubedrill.validation import LocalPath, Port, PositiveSeconds, Text, validate_document


@dataclass(frozen=True)
class Inner:
    __pydantic_config__ = ConfigDict(extra="forbid")
    port: Port = 2379
    timeout: PositiveSeconds = 1.0
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Outer:
    __pydantic_config__ = ConfigDict(extra="forbid")
    name: Text = "x"
    path: LocalPath = Path("/tmp")
    inner: Inner = field(default_factory=Inner)
    items: list[Inner] = field(default_factory=list)


def error_of(raw: Any) -> str:
    with pytest.raises(ConfigError) as err:
        validate_document(Outer, raw, root="top", hint="fix it")
    assert err.value.hint == "fix it" or err.value.hint.startswith("known fields of")
    return err.value.message


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"inner": {"colour": 1}}, "unknown field top.inner.colour"),
        ({"items": [{}, {"port": 0}]}, "top.items[1].port must be an integer in 1..65535, got 0"),
        ({"inner": {"port": "2379"}}, "top.inner.port must be an integer in 1..65535, got '2379'"),
        ({"inner": {"port": True}}, "top.inner.port must be an integer in 1..65535, got True"),
        ({"inner": {"timeout": -1}}, "top.inner.timeout must be a positive number of seconds"),
        ({"inner": {"flags": "--a"}}, "top.inner.flags must be a list, got '--a'"),
        ({"inner": {"flags": [1]}}, "top.inner.flags[0] must be a string, got 1"),
        ({"inner": None}, "top.inner must be a mapping, got NoneType"),
        ({"name": 1.5}, "top.name must be a non-empty string, got 1.5"),
        ({"path": ""}, "top.path must be a path (a non-empty string), got ''"),
        ([1], "top must be a mapping, got list"),
    ],
)
def test_errors_name_the_field_and_what_it_must_be(raw: Any, message: str) -> None:
    assert error_of(raw).startswith(message)


def test_unknown_field_hint_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError) as err:
        validate_document(Outer, {"inner": {"prot": 1}}, root="top", hint="h")
    assert err.value.hint == "known fields of top.inner: flags, port, timeout"


def test_values_arrive_typed() -> None:
    got = validate_document(
        Outer,
        {"name": 7, "path": "~/x", "inner": {"flags": ["--a"], "timeout": 2}},
        root="top",
        hint="h",
    )
    assert got == Outer("7", Path("~/x").expanduser(), Inner(2379, 2.0, ("--a",)))
    assert isinstance(got.inner.timeout, float)


def state(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "lab",
        "topology": "etcd",
        "subnet": "10.213.7.0/24",
        "bridge": "kd-lab",
        "gateway": "10.213.7.1",
        "binaries": {"etcd": "/bin/etcd"},
        "versions": {"etcd": "v3.6.16"},
        "delay_method": "nfqueue",
        "hosts": [
            {"name": "etcd-1", "roles": ["etcd"], "address": "10.213.7.11", "netns": "kd-lab-e1"}
        ],
        "etcd": {
            "endpoints": {"etcd-1": "https://10.213.7.11:2379"},
            "metrics": {"etcd-1": "http://10.213.7.11:2381/metrics"},
            "failpoints": {},
            "peer_port": 2380,
            "client_port": 2379,
            "tls": {"ca": "ca.crt", "cert": "c.crt", "key": "c.key"},
            "election_timeout_ms": 1000,
            "heartbeat_interval_ms": 100,
        },
    }
    base.update(changes)
    return base


def test_state_round_trips_and_keeps_fields_it_does_not_know(tmp_path: Path) -> None:
    written = state(vip="10.213.7.100")
    write_state(tmp_path, LabState(**written))  # type: ignore[typeddict-item]
    assert read_state(tmp_path) == written
    assert read_state(tmp_path / "missing") is None


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (state(hosts=[{"name": "etcd-1"}]), "hosts[0].roles is required"),
        (state(etcd={"peer_port": "x"}), "etcd.endpoints is required"),
        ({**state(), "topology": 3}, "topology must be a string, got 3"),
    ],
)
def test_a_damaged_state_is_one_line_naming_the_field(
    tmp_path: Path, raw: dict[str, Any], message: str
) -> None:
    (tmp_path / "lab.json").write_text(json.dumps(raw))
    with pytest.raises(ConfigError) as err:
        read_state(tmp_path)
    assert err.value.message == f"lab state {tmp_path / 'lab.json'}: {message}"
    assert "kubedrill lab down" in err.value.hint


def test_a_truncated_state_file_says_it_cannot_be_read(tmp_path: Path) -> None:
    (tmp_path / "lab.json").write_text('{"name": "lab", "hos')
    with pytest.raises(ConfigError, match="cannot be read"):
        read_state(tmp_path)
