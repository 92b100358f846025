"""The SSH inventory: which hosts make up a cluster, their roles, and how to log in to them.

Parsing is strict, like the lab config: an unknown field, an unknown role or a malformed value
is an error naming the field. Paths are local to the machine that runs kubedrill. `~/.ssh/config`
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
from typing import Any

import paramiko

from kubedrill.cluster import ROLES
from kubedrill.errors import ConfigError
from kubedrill.transport.ssh import Endpoint, SshSettings
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


# -- strict field readers ----------------------------------------------------------------------


def _mapping(
    raw: Any, where: str, known: tuple[str, ...], required: tuple[str, ...] = ()
) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where} must be a mapping, got {type(raw).__name__}", HINT)
    for key in raw:
        if key not in known:
            raise ConfigError(
                f"unknown field {where}.{key}", f"known fields of {where}: {', '.join(known)}"
            )
    for key in required:
        if raw.get(key) in (None, ""):
            raise ConfigError(f"{where}.{key} is required", HINT)
    return dict(raw)


def _str(raw: Any, where: str) -> str:
    if isinstance(raw, bool) or not isinstance(raw, str | int) or str(raw) == "":
        raise ConfigError(f"{where} must be a non-empty string, got {raw!r}", HINT)
    return str(raw)


def _int(raw: Any, where: str, low: int = 1, high: int = 65535) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or not low <= raw <= high:
        raise ConfigError(f"{where} must be an integer in {low}..{high}, got {raw!r}", HINT)
    return int(raw)


def _seconds(raw: Any, where: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or raw <= 0:
        raise ConfigError(f"{where} must be a positive number of seconds, got {raw!r}", HINT)
    return float(raw)


def _bool(raw: Any, where: str) -> bool:
    if not isinstance(raw, bool):
        raise ConfigError(f"{where} must be true or false, got {raw!r}", HINT)
    return raw


def _path(raw: Any, where: str, base: Path) -> Path:
    path = Path(_str(raw, where)).expanduser()
    return path if path.is_absolute() else base / path


def _pin(raw: Any, where: str) -> str:
    text = _str(raw, where)
    if not _PIN.fullmatch(text):
        raise ConfigError(
            f"{where} {text!r} is not an OpenSSH SHA256 fingerprint",
            "use the form ssh-keygen -lf prints: SHA256:<43 base64 characters>",
        )
    return text


# -- sections -----------------------------------------------------------------------------------

DEFAULT_FIELDS = ("user", "port", "key", "sudo", "connect_timeout", "command_timeout")
HOST_FIELDS = (
    "name",
    "address",
    "roles",
    "user",
    "port",
    "key",
    "sudo",
    "host_key",
    "manager",
    "connect_timeout",
    "command_timeout",
)
JUMP_FIELDS = ("host", "user", "port", "key", "host_key")
ETCD_FIELDS = (
    "client_port",
    "peer_port",
    "scheme",
    "ca",
    "cert",
    "key",
    "election_timeout_ms",
    "heartbeat_interval_ms",
    "metrics_port",
)
KUBE_FIELDS = ("kubeconfig", "kubectl", "haproxy_socket", "envoy_admin", "ca", "cert", "key")
TOP_FIELDS = (
    "name",
    "known_hosts",
    "ssh_config",
    "accept_new_host_keys",
    "defaults",
    "jump",
    "etcd",
    "kube",
    "hosts",
)


def _ssh_config(raw: Any, base: Path) -> paramiko.SSHConfig | None:
    if raw is None:
        return None
    path = _path(raw, "ssh.ssh_config", base)
    if not path.exists():
        return None
    try:
        return paramiko.SSHConfig.from_path(str(path))
    except (OSError, paramiko.ConfigParseError) as exc:
        raise ConfigError(f"ssh.ssh_config {path} cannot be read: {exc}", HINT) from exc


def _jump_from_proxyjump(text: str, where: str) -> dict[str, Any]:
    if "," in text:
        raise ConfigError(
            f"{where} ProxyJump {text!r} has several hops", "kubedrill supports one jump host"
        )
    match = re.fullmatch(r"(?:(?P<user>[^@]+)@)?(?P<host>[^:]+)(?::(?P<port>\d+))?", text)
    if match is None:
        raise ConfigError(f"{where} ProxyJump {text!r} is not [user@]host[:port]", HINT)
    out: dict[str, Any] = {"host": match["host"]}
    if match["user"]:
        out["user"] = match["user"]
    if match["port"]:
        out["port"] = int(match["port"])
    return out


def _endpoint(
    merged: Mapping[str, Any], where: str, base: Path, config: paramiko.SSHConfig | None
) -> tuple[Endpoint, dict[str, Any] | None]:
    """The login endpoint of one host or jump host; explicit fields > ~/.ssh/config > defaults.
    Also returns the ProxyJump ~/.ssh/config names for it, if any."""
    address = _str(merged["address"], f"{where}.address")
    looked: dict[str, Any] = dict(config.lookup(address)) if config is not None else {}
    explicit = merged["explicit"]
    host = str(looked.get("hostname", address))
    user = explicit.get("user", looked.get("user", merged.get("user", "root")))
    port = explicit.get("port", int(looked["port"]) if "port" in looked else merged.get("port", 22))
    key: Any = explicit.get("key")
    if key is None and looked.get("identityfile"):
        key = looked["identityfile"][0]
    if key is None:
        key = merged.get("key")
    jump = (
        _jump_from_proxyjump(str(looked["proxyjump"]), where) if looked.get("proxyjump") else None
    )
    return (
        Endpoint(
            host,
            _int(port, f"{where}.port"),
            _str(user, f"{where}.user"),
            str(_path(key, f"{where}.key", base)) if key else "",
            _pin(merged["host_key"], f"{where}.host_key") if merged.get("host_key") else "",
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
    top = _mapping(raw["ssh"], "ssh", TOP_FIELDS, required=("name", "hosts"))
    name = _str(top["name"], "ssh.name")
    if not _NAME.fullmatch(name):
        raise ConfigError(
            f"ssh.name {name!r} is invalid", "use lowercase letters, digits, '.' and '-'"
        )
    known_hosts = _path(top.get("known_hosts", "~/.ssh/known_hosts"), "ssh.known_hosts", base)
    config = _ssh_config(top.get("ssh_config", "~/.ssh/config"), base)
    accept_new = accept_new_host_keys or _bool(
        top.get("accept_new_host_keys", False), "ssh.accept_new_host_keys"
    )
    defaults = _mapping(top.get("defaults") or {}, "ssh.defaults", DEFAULT_FIELDS)
    jump_raw = top.get("jump")
    jump_section = _mapping(jump_raw, "ssh.jump", JUMP_FIELDS, ("host",)) if jump_raw else None
    hosts_raw = top["hosts"]
    if not isinstance(hosts_raw, list) or not hosts_raw:
        raise ConfigError("ssh.hosts must be a non-empty list of hosts", HINT)
    hosts: list[HostEntry] = []
    for i, item in enumerate(hosts_raw):
        hosts.append(
            _host(
                item,
                f"ssh.hosts[{i}]",
                base,
                defaults,
                jump_section,
                config,
                known_hosts,
                accept_new,
            )
        )
    names = [h.name for h in hosts]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(
            f"ssh.hosts names {', '.join(dupes)} more than once", "name each host once"
        )
    etcd = _etcd(top.get("etcd") or {}, base)
    if not any("etcd" in h.roles for h in hosts):
        raise ConfigError(
            "no host in ssh.hosts has the role etcd", "give the etcd members role etcd"
        )
    kube = _kube(top["kube"], base) if top.get("kube") else None
    return Inventory(name, path, known_hosts, tuple(hosts), etcd, kube, accept_new)


def _host(
    item: Any,
    where: str,
    base: Path,
    defaults: Mapping[str, Any],
    jump_section: Mapping[str, Any] | None,
    config: paramiko.SSHConfig | None,
    known_hosts: Path,
    accept_new: bool,
) -> HostEntry:
    entry = _mapping(item, where, HOST_FIELDS, required=("name", "roles"))
    name = _str(entry["name"], f"{where}.name")
    if not _NAME.fullmatch(name):
        raise ConfigError(
            f"{where}.name {name!r} is invalid", "lowercase letters, digits, '.', '-'"
        )
    roles = entry["roles"]
    if not isinstance(roles, list) or not roles:
        raise ConfigError(f"{where}.roles must be a non-empty list", f"roles: {', '.join(ROLES)}")
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise ConfigError(
            f"unknown role {unknown[0]!r} in {where}.roles (host {name})",
            f"known roles: {', '.join(ROLES)}",
        )
    manager = _str(entry.get("manager", "auto"), f"{where}.manager")
    if manager not in MANAGERS:
        raise ConfigError(
            f"{where}.manager {manager!r} is unknown", f"use one of {', '.join(MANAGERS)}"
        )
    explicit = {k: entry[k] for k in ("user", "port", "key") if entry.get(k) not in (None, "")}
    merged = {
        **defaults,
        "address": entry.get("address", name),
        "explicit": explicit,
        "host_key": entry.get("host_key"),
    }
    target, jump_from_config = _endpoint(merged, where, base, config)
    jump = None
    jump_fields = dict(jump_section) if jump_section else jump_from_config
    if jump_fields:
        jump_merged = {
            **defaults,
            "address": jump_fields["host"],
            "host_key": jump_fields.get("host_key"),
            "explicit": {
                k: jump_fields[k]
                for k in ("user", "port", "key")
                if jump_fields.get(k) not in (None, "")
            },
        }
        jump, _ = _endpoint(jump_merged, "ssh.jump", base, config)
    sudo = _bool(entry.get("sudo", defaults.get("sudo", False)), f"{where}.sudo")
    connect_timeout = _seconds(
        entry.get("connect_timeout", defaults.get("connect_timeout", 10)),
        f"{where}.connect_timeout",
    )
    command_timeout = _seconds(
        entry.get("command_timeout", defaults.get("command_timeout", 60)),
        f"{where}.command_timeout",
    )
    settings = SshSettings(target, str(known_hosts), jump, accept_new, sudo, connect_timeout)
    return HostEntry(name, frozenset(roles), settings, manager, command_timeout)


def _etcd(raw: Any, base: Path) -> EtcdEntry:
    entry = _mapping(raw, "ssh.etcd", ETCD_FIELDS)
    scheme = _str(entry.get("scheme", "https"), "ssh.etcd.scheme")
    if scheme not in ("https", "http"):
        raise ConfigError(f"ssh.etcd.scheme {scheme!r} is unknown", "use https or http")
    tls = {k: _path(entry[k], f"ssh.etcd.{k}", base) for k in ("ca", "cert", "key") if entry.get(k)}
    if scheme == "https" and len(tls) != 3:
        raise ConfigError(
            "ssh.etcd needs ca, cert and key (local copies of an etcd client certificate)",
            "copy e.g. /etc/kubernetes/pki/etcd/{ca.crt,healthcheck-client.crt,"
            "healthcheck-client.key} from a control-plane node; kubedrill never fetches keys",
        )
    for key, file in tls.items():
        if not file.is_file():
            raise ConfigError(f"ssh.etcd.{key} {file} does not exist", "give a readable local file")
    return EtcdEntry(
        _int(entry.get("client_port", 2379), "ssh.etcd.client_port"),
        _int(entry.get("peer_port", 2380), "ssh.etcd.peer_port"),
        scheme,
        tls.get("ca"),
        tls.get("cert"),
        tls.get("key"),
        _int(entry.get("election_timeout_ms", 1000), "ssh.etcd.election_timeout_ms", 1, 600000),
        _int(entry.get("heartbeat_interval_ms", 100), "ssh.etcd.heartbeat_interval_ms", 1, 60000),
        _int(entry["metrics_port"], "ssh.etcd.metrics_port") if entry.get("metrics_port") else None,
    )


def _kube(raw: Any, base: Path) -> KubeEntry:
    entry = _mapping(raw, "ssh.kube", KUBE_FIELDS, required=("kubeconfig",))
    kubeconfig = _path(entry["kubeconfig"], "ssh.kube.kubeconfig", base)
    if not kubeconfig.is_file():
        raise ConfigError(
            f"ssh.kube.kubeconfig {kubeconfig} does not exist", "give a readable file"
        )
    paths = {
        k: _path(entry[k], f"ssh.kube.{k}", base)
        for k in ("haproxy_socket", "ca", "cert", "key")
        if entry.get(k)
    }
    envoy = _str(entry["envoy_admin"], "ssh.kube.envoy_admin") if entry.get("envoy_admin") else None
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
        _str(entry.get("kubectl", "kubectl"), "ssh.kube.kubectl"),
        paths.get("haproxy_socket"),
        envoy,
        paths.get("ca"),
        paths.get("cert"),
        paths.get("key"),
    )


def load_inventory(path: Path, *, accept_new_host_keys: bool = False) -> Inventory:
    raw = load_yaml_file(path, "inventory", "pass an existing file with --inventory")
    return parse_inventory(raw, path.resolve(), accept_new_host_keys=accept_new_host_keys)
