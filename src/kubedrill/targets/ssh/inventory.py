"""The SSH inventory: which hosts make up a cluster, their roles, and how to log in to them.

Parsing is strict, like the lab config (the file's shape is the pydantic models below, read by
kubedrill.validation): an unknown field, an unknown role or a malformed value is an error naming
the field. Paths are local to the machine that runs kubedrill. `~/.ssh/config`
is honoured (HostName, User, Port, IdentityFile, ProxyJump); an explicit field on a host wins
over it, and it wins over the inventory's `defaults`.

    ssh:
      name: prod-eu1                  # the cluster is "ssh/prod-eu1" (allowlist it)
      known_hosts: ~/.ssh/known_hosts
      defaults: {user: root, port: 22, key: ~/.ssh/id_ed25519, sudo: false}
      etcd: {ca: pki/ca.crt, cert: pki/client.crt, key: pki/client.key}
      kube: {kubeconfig: ~/.kube/prod-eu1.conf}
      hosts:
        - {name: cp-1, address: 10.0.0.11, roles: [control-plane, etcd]}
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import paramiko
from pydantic import BaseModel, ConfigDict, Field

from kubedrill.cluster import ROLES
from kubedrill.errors import ConfigError
from kubedrill.transport.ssh import Endpoint, SshSettings
from kubedrill.validation import Port, PositiveSeconds, Text, int_range, validate_document
from kubedrill.yaml_file import load_yaml_file

MANAGERS = ("auto", "kubedrill-lab", "static-pod", "systemd", "process")
_NAME = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$")
_PIN = re.compile(r"^SHA256:[A-Za-z0-9+/]{43}$")
HINT = "fix that field in the inventory (README: SSH targets)"


@dataclass(frozen=True)
class HostEntry:
    name: str
    roles: frozenset[str]
    settings: SshSettings
    manager: str = "auto"
    command_timeout: float = 60.0

    @property
    def address(self) -> str:
        return self.settings.target.host


@dataclass(frozen=True)
class EtcdEntry:
    client_port: int = 2379
    peer_port: int = 2380
    scheme: str = "https"
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    election_timeout_ms: int = 1000
    heartbeat_interval_ms: int = 100
    metrics_port: int | None = None  # etcd's --listen-metrics-urls port, if reachable (http)


@dataclass(frozen=True)
class KubeEntry:
    kubeconfig: Path
    kubectl: str = "kubectl"
    haproxy_socket: Path | None = None  # a local HAProxy stats socket, when there is one
    envoy_admin: str | None = None  # or an Envoy LB's admin URL (kind's LB), for backend health
    ca: Path | None = None  # default: taken from the kubeconfig
    cert: Path | None = None
    key: Path | None = None


@dataclass(frozen=True)
class Inventory:
    name: str
    path: Path
    known_hosts: Path
    hosts: tuple[HostEntry, ...]
    etcd: EtcdEntry
    kube: KubeEntry | None = None
    accept_new_host_keys: bool = False
    facts: Mapping[str, str] = field(default_factory=dict)

    @property
    def cluster_name(self) -> str:
        return f"ssh/{self.name}"

    def host(self, name: str) -> HostEntry:
        for entry in self.hosts:
            if entry.name == name:
                return entry
        raise ConfigError(
            f"unknown host {name!r} in inventory {self.path}",
            f"known hosts: {', '.join(h.name for h in self.hosts)}",
        )


# -- the file's shape ---------------------------------------------------------------------------


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DefaultsFile(_Section):
    user: Text | None = None
    port: Port | None = None
    key: Text | None = None
    sudo: bool | None = None
    connect_timeout: PositiveSeconds | None = None
    command_timeout: PositiveSeconds | None = None


class JumpFile(_Section):
    host: Text
    user: Text | None = None
    port: Port | None = None
    key: Text | None = None
    host_key: Text | None = None


class HostFile(_Section):
    name: Text
    address: Text | None = None
    roles: list[str] = Field(min_length=1)
    user: Text | None = None
    port: Port | None = None
    key: Text | None = None
    sudo: bool | None = None
    host_key: Text | None = None
    manager: Text = "auto"
    connect_timeout: PositiveSeconds | None = None
    command_timeout: PositiveSeconds | None = None


class EtcdFile(_Section):
    client_port: Port = 2379
    peer_port: Port = 2380
    scheme: Literal["https", "http"] = "https"
    ca: Text | None = None
    cert: Text | None = None
    key: Text | None = None
    election_timeout_ms: Annotated[int, int_range(1, 600000)] = 1000
    heartbeat_interval_ms: Annotated[int, int_range(1, 60000)] = 100
    metrics_port: Port | None = None


class KubeFile(_Section):
    kubeconfig: Text
    kubectl: Text = "kubectl"
    haproxy_socket: Text | None = None
    envoy_admin: Text | None = None
    ca: Text | None = None
    cert: Text | None = None
    key: Text | None = None


class SshFile(_Section):
    name: Text
    known_hosts: Text = "~/.ssh/known_hosts"
    ssh_config: Text | None = "~/.ssh/config"
    accept_new_host_keys: bool = False
    defaults: DefaultsFile | None = None
    jump: JumpFile | None = None
    etcd: EtcdFile | None = None
    kube: KubeFile | None = None
    hosts: list[HostFile] = Field(min_length=1)


@dataclass(frozen=True)
class _Login:
    """How to log in to one address, as far as a layer (host, ~/.ssh/config, defaults) says."""

    user: str | None = None
    port: int | None = None
    key: str | None = None


def _path(text: str, base: Path) -> Path:
    path = Path(text).expanduser()
    return path if path.is_absolute() else base / path


def _pin(text: str, where: str) -> str:
    if not _PIN.fullmatch(text):
        raise ConfigError(
            f"{where} {text!r} is not an OpenSSH SHA256 fingerprint",
            "use the form ssh-keygen -lf prints: SHA256:<43 base64 characters>",
        )
    return text


# -- sections -----------------------------------------------------------------------------------


def _ssh_config(raw: str | None, base: Path) -> paramiko.SSHConfig | None:
    if raw is None:
        return None
    path = _path(raw, base)
    if not path.exists():
        return None
    try:
        return paramiko.SSHConfig.from_path(str(path))
    except (OSError, paramiko.ConfigParseError) as exc:
        raise ConfigError(f"ssh.ssh_config {path} cannot be read: {exc}", HINT) from exc


def _jump_from_proxyjump(text: str, where: str) -> JumpFile:
    if "," in text:
        raise ConfigError(
            f"{where} ProxyJump {text!r} has several hops", "kubedrill supports one jump host"
        )
    match = re.fullmatch(r"(?:(?P<user>[^@]+)@)?(?P<host>[^:]+)(?::(?P<port>\d+))?", text)
    if match is None:
        raise ConfigError(f"{where} ProxyJump {text!r} is not [user@]host[:port]", HINT)
    port = int(match["port"]) if match["port"] else None
    if port is not None and not 0 < port < 65536:
        raise ConfigError(f"{where} ProxyJump {text!r} has no valid port", HINT)
    return JumpFile(host=match["host"], user=match["user"] or None, port=port)


def _endpoint(
    address: str,
    explicit: _Login,
    defaults: _Login,
    host_key: str | None,
    where: str,
    base: Path,
    config: paramiko.SSHConfig | None,
) -> tuple[Endpoint, JumpFile | None]:
    """The login endpoint of one host or jump host; explicit fields > ~/.ssh/config > defaults.
    Also returns the jump host ~/.ssh/config names for it (ProxyJump), if any."""
    looked: dict[str, Any] = dict(config.lookup(address)) if config is not None else {}
    host = str(looked.get("hostname", address))
    user = explicit.user or looked.get("user") or defaults.user or "root"
    port = explicit.port
    if port is None and "port" in looked:
        port = int(looked["port"]) if str(looked["port"]).isdigit() else 0
        if not 0 < port < 65536:
            raise ConfigError(f"{where}.port from ssh_config is {looked['port']!r}", HINT)
    port = port or defaults.port or 22
    key = explicit.key
    if key is None and looked.get("identityfile"):
        key = str(looked["identityfile"][0])
    key = key or defaults.key
    jump = (
        _jump_from_proxyjump(str(looked["proxyjump"]), where) if looked.get("proxyjump") else None
    )
    return (
        Endpoint(
            host,
            port,
            str(user),
            str(_path(key, base)) if key else "",
            _pin(host_key, f"{where}.host_key") if host_key else "",
        ),
        jump,
    )


def parse_inventory(raw: Any, path: Path, *, accept_new_host_keys: bool = False) -> Inventory:
    if not isinstance(raw, Mapping) or set(raw) != {"ssh"}:
        raise ConfigError(
            f"inventory {path} must have a single top-level key 'ssh'",
            "see README: SSH targets for an example",
        )
    base = path.parent
    top = validate_document(SshFile, raw["ssh"], root="ssh", hint=HINT)
    if not _NAME.fullmatch(top.name):
        raise ConfigError(
            f"ssh.name {top.name!r} is invalid", "use lowercase letters, digits, '.' and '-'"
        )
    known_hosts = _path(top.known_hosts, base)
    config = _ssh_config(top.ssh_config, base)
    accept_new = accept_new_host_keys or top.accept_new_host_keys
    defaults = top.defaults or DefaultsFile()
    hosts = [
        _host(item, f"ssh.hosts[{i}]", base, defaults, top.jump, config, known_hosts, accept_new)
        for i, item in enumerate(top.hosts)
    ]
    names = [h.name for h in hosts]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(
            f"ssh.hosts names {', '.join(dupes)} more than once", "name each host once"
        )
    etcd = _etcd(top.etcd or EtcdFile(), base)
    if not any("etcd" in h.roles for h in hosts):
        raise ConfigError(
            "no host in ssh.hosts has the role etcd", "give the etcd members role etcd"
        )
    kube = _kube(top.kube, base) if top.kube else None
    return Inventory(top.name, path, known_hosts, tuple(hosts), etcd, kube, accept_new)


def _host(
    entry: HostFile,
    where: str,
    base: Path,
    defaults: DefaultsFile,
    jump_section: JumpFile | None,
    config: paramiko.SSHConfig | None,
    known_hosts: Path,
    accept_new: bool,
) -> HostEntry:
    name = entry.name
    if not _NAME.fullmatch(name):
        raise ConfigError(
            f"{where}.name {name!r} is invalid", "lowercase letters, digits, '.', '-'"
        )
    unknown = [r for r in entry.roles if r not in ROLES]
    if unknown:
        raise ConfigError(
            f"unknown role {unknown[0]!r} in {where}.roles (host {name})",
            f"known roles: {', '.join(ROLES)}",
        )
    if entry.manager not in MANAGERS:
        raise ConfigError(
            f"{where}.manager {entry.manager!r} is unknown", f"use one of {', '.join(MANAGERS)}"
        )
    fallback = _Login(defaults.user, defaults.port, defaults.key)
    target, jump_from_config = _endpoint(
        entry.address or name,
        _Login(entry.user, entry.port, entry.key),
        fallback,
        entry.host_key,
        where,
        base,
        config,
    )
    jump = None
    jump_fields = jump_section or jump_from_config
    if jump_fields:
        jump, _ = _endpoint(
            jump_fields.host,
            _Login(jump_fields.user, jump_fields.port, jump_fields.key),
            fallback,
            jump_fields.host_key,
            "ssh.jump",
            base,
            config,
        )
    sudo = _first(entry.sudo, defaults.sudo, False)
    connect_timeout = _first(entry.connect_timeout, defaults.connect_timeout, 10.0)
    command_timeout = _first(entry.command_timeout, defaults.command_timeout, 60.0)
    settings = SshSettings(target, str(known_hosts), jump, accept_new, sudo, connect_timeout)
    return HostEntry(name, frozenset(entry.roles), settings, entry.manager, command_timeout)


def _first(*values: Any) -> Any:
    """The host's own value, else the defaults', else kubedrill's."""
    return next(v for v in values if v is not None)


def _etcd(entry: EtcdFile, base: Path) -> EtcdEntry:
    tls = {
        k: _path(v, base)
        for k, v in (("ca", entry.ca), ("cert", entry.cert), ("key", entry.key))
        if v
    }
    if entry.scheme == "https" and len(tls) != 3:
        raise ConfigError(
            "ssh.etcd needs ca, cert and key (local copies of an etcd client certificate)",
            "copy e.g. /etc/kubernetes/pki/etcd/{ca.crt,healthcheck-client.crt,"
            "healthcheck-client.key} from a control-plane node; kubedrill never fetches keys",
        )
    for key, file in tls.items():
        if not file.is_file():
            raise ConfigError(f"ssh.etcd.{key} {file} does not exist", "give a readable local file")
    return EtcdEntry(
        entry.client_port,
        entry.peer_port,
        entry.scheme,
        tls.get("ca"),
        tls.get("cert"),
        tls.get("key"),
        entry.election_timeout_ms,
        entry.heartbeat_interval_ms,
        entry.metrics_port,
    )


def _kube(entry: KubeFile, base: Path) -> KubeEntry:
    kubeconfig = _path(entry.kubeconfig, base)
    if not kubeconfig.is_file():
        raise ConfigError(
            f"ssh.kube.kubeconfig {kubeconfig} does not exist", "give a readable file"
        )
    paths = {
        k: _path(v, base)
        for k, v in (
            ("haproxy_socket", entry.haproxy_socket),
            ("ca", entry.ca),
            ("cert", entry.cert),
            ("key", entry.key),
        )
        if v
    }
    envoy = entry.envoy_admin
    if envoy is not None and not envoy.startswith(("http://", "https://")):
        raise ConfigError(
            f"ssh.kube.envoy_admin {envoy!r} is not a URL", "write it as http://HOST:PORT"
        )
    if envoy is not None and "haproxy_socket" in paths:
        raise ConfigError(
            "ssh.kube has both haproxy_socket and envoy_admin", "name the one LB you run"
        )
    return KubeEntry(
        kubeconfig,
        entry.kubectl,
        paths.get("haproxy_socket"),
        envoy,
        paths.get("ca"),
        paths.get("cert"),
        paths.get("key"),
    )


def load_inventory(path: Path, *, accept_new_host_keys: bool = False) -> Inventory:
    raw = load_yaml_file(path, "inventory", "pass an existing file with --inventory")
    return parse_inventory(raw, path.resolve(), accept_new_host_keys=accept_new_host_keys)
