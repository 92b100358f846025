"""SSH inventory parsing, ~/.ssh/config precedence, and the remote command line (pure logic)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kubedrill.errors import ConfigError
from kubedrill.targets.select import TargetOptions
from kubedrill.targets.ssh.inventory import parse_inventory
from kubedrill.transport.ssh import SshSettings, remote_command


def parse(tmp_path: Path, text: str) -> object:
    return parse_inventory(yaml.safe_load(text), tmp_path / "inventory.yaml")


def test_explicit_fields_beat_ssh_config_which_beats_defaults(tmp_path: Path) -> None:
    (tmp_path / "ssh_config").write_text(
        "Host cp-1\n  HostName 192.0.2.11\n  User admin\n  Port 2222\n"
        "  IdentityFile ~/.ssh/cp_key\n  ProxyJump jumper@bastion:2200\n"
        "Host cp-2\n  User admin\n"
    )
    inv = parse_inventory(
        {
            "ssh": {
                "name": "prod-eu1",
                "ssh_config": "ssh_config",
                "known_hosts": "kh",
                "defaults": {"user": "root", "port": 22, "key": "keys/id", "sudo": True},
                "etcd": {"scheme": "http"},
                "hosts": [
                    {"name": "cp-1", "roles": ["etcd", "control-plane"]},
                    {"name": "cp-2", "address": "cp-2", "roles": ["etcd"], "user": "ops"},
                    {"name": "cp-3", "address": "192.0.2.13", "roles": ["etcd"], "sudo": False},
                ],
            }
        },
        tmp_path / "inventory.yaml",
    )
    assert inv.cluster_name == "ssh/prod-eu1"
    cp1, cp2, cp3 = inv.hosts
    assert cp1.settings.target.host == "192.0.2.11"
    assert cp1.settings.target.where == "admin@192.0.2.11:2222"
    assert cp1.settings.target.key == str(Path.home() / ".ssh/cp_key")
    assert cp1.settings.jump is not None and cp1.settings.jump.where == "jumper@bastion:2200"
    assert cp2.settings.target.user == "ops"  # explicit beats ~/.ssh/config
    assert cp3.settings.target.key == str(tmp_path / "keys/id")  # relative to the inventory
    assert cp1.settings.sudo and not cp3.settings.sudo
    assert inv.known_hosts == tmp_path / "kh"


def test_settings_round_trip_through_the_spec(tmp_path: Path) -> None:
    inv = parse_inventory(
        {
            "ssh": {
                "name": "x",
                "ssh_config": None,
                "etcd": {"scheme": "http"},
                "jump": {"host": "bastion", "user": "j", "port": 2022},
                "hosts": [{"name": "a", "address": "192.0.2.1", "roles": ["etcd"], "sudo": True}],
            }
        },
        tmp_path / "i.yaml",
    )
    settings = inv.hosts[0].settings
    params = settings.to_params()
    assert SshSettings.from_params(params) == settings
    assert all(isinstance(v, str) for v in params.values())
    assert not any("PRIVATE" in v for v in params.values())


def test_sudo_wraps_the_quoted_command() -> None:
    argv = ["sh", "-c", "iptables -S | grep 'KUBEDRILL'"]
    assert remote_command(argv, sudo=False) == "sh -c 'iptables -S | grep '\"'\"'KUBEDRILL'\"'\"''"
    assert remote_command(argv, sudo=True).startswith("sudo -n -- sh -c ")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ssh: {name: x, hosts: [{name: a, roles: [lb], address: h}]}", "no host in ssh.hosts"),
        ("ssh: {name: X_Y, hosts: [{name: a, roles: [etcd]}]}", "ssh.name 'X_Y' is invalid"),
        ("ssh: {name: x, hosts: [{name: a, roles: etcd}]}", "ssh.hosts[0].roles must be a"),
        ("ssh: {name: x, hosts: {}}", "ssh.hosts must be a list, got {}"),
        ("ssh: {name: x, hosts: []}", "ssh.hosts must be a non-empty list"),
        (
            "ssh: {name: x, jump: {host: b, colour: 1}, hosts: [{name: a, roles: [etcd]}]}",
            "unknown field ssh.jump.colour",
        ),
        (
            "ssh: {name: x, defaults: {sudo: 'yes'}, hosts: [{name: a, roles: [etcd]}]}",
            "ssh.defaults.sudo must be true or false, got 'yes'",
        ),
        (
            "ssh: {name: x, defaults: {connect_timeout: -1}, hosts: [{name: a, roles: [etcd]}]}",
            "connect_timeout must be a positive number",
        ),
    ],
)
def test_bad_fields_name_themselves(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse(tmp_path, text.replace("{name: x,", "{name: x, etcd: {scheme: http},"))
    assert expected in str(err.value)


def test_target_options_need_an_inventory_for_ssh() -> None:
    with pytest.raises(ConfigError, match="--target ssh needs --inventory"):
        TargetOptions(target="ssh").validate()
    with pytest.raises(ConfigError, match="unknown target"):
        TargetOptions(target="docker").validate()
    with pytest.raises(ConfigError, match="--inventory is for --target ssh"):
        TargetOptions(target="lab", inventory=Path("i.yaml")).validate()
