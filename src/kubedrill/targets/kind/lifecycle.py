"""`kubedrill kind up` and `kind down`: a kind cluster kubedrill can drill, made and removed
without leaving anything behind.

Up checks everything first (cluster name, kind config, provider, subnet, a free network name and
subnet) and only then changes the machine, in this order, each step recorded before it is
taken: host settings (inotify, /lib/modules), the podman network, then `kind create` with the
address shim first on PATH. A failure or an interrupt undoes what was done. Down deletes the
cluster and undoes what the record says: the network, the kubeconfig file, the host settings
(with the last cluster), the record.

With Docker, kind runs as it always does (its own network, kind's default node image unless
--image); the host settings are still taken care of.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kubedrill.errors import ConfigError, NotRootError, TargetError
from kubedrill.targets.kind import host, network, state
from kubedrill.targets.kind.config import KindConfig, load_kind_config
from kubedrill.targets.kind.discovery import check_cluster_name
from kubedrill.targets.kind.ipplan import IPPlan, plan
from kubedrill.targets.kind.podman_shim import install_shim, path_with_shim
from kubedrill.targets.kind.provider import choose_provider, kind_binary

Progress = Callable[[str], None]
CREATE_TIMEOUT_S = 1200
DELETE_TIMEOUT_S = 300


@dataclass(frozen=True)
class UpOptions:
    name: str
    config: Path
    subnet: str
    provider: str | None = None
    image: str | None = None
    docker_host: str | None = None
    cache_dir: Path = field(default_factory=lambda: Path.home() / ".cache" / "kubedrill")
    state_dir: Path = state.STATE_DIR
    wait: str = "5m"


@dataclass(frozen=True)
class Checked:
    """Everything `up` needs, validated; nothing has been created yet."""

    name: str
    config: KindConfig
    provider: str
    plan: IPPlan | None  # podman: the pinned addresses
    network: str | None
    network_exists: bool  # kubedrill's own, left by an interrupted up


@dataclass
class UpResult:
    created: bool
    provider: str
    kubeconfig: Path
    seconds: float = 0.0
    addresses: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (planned, got)


def _require_root(what: str) -> None:
    if os.geteuid() != 0:
        raise NotRootError(
            f"{what} changes host settings (inotify limits, /lib/modules) and needs root",
            "run it as root (sudo)",
        )


def _check_ip_family(config: KindConfig) -> None:
    import yaml  # noqa: PLC0415

    doc = yaml.safe_load(config.path.read_text(encoding="utf-8")) or {}
    family = (doc.get("networking") or {}).get("ipFamily", "ipv4")
    if family != "ipv4":
        raise ConfigError(
            f"kind config {config.path}: networking.ipFamily {family!r}; kubedrill's podman "
            "network pins IPv4 addresses only",
            "use ipFamily: ipv4 (kind's default) or --provider docker",
        )


def check_up(opts: UpOptions) -> Checked:
    """Validate the request; ConfigError/MissingBinaryError/NotRootError before any change."""
    check_cluster_name(opts.name)
    config = load_kind_config(opts.config)
    provider = choose_provider(opts.provider, opts.docker_host)
    if provider != "podman":
        _require_root("kubedrill kind up")
        return Checked(opts.name, config, provider, None, None, False)
    addresses = plan(opts.name, config.roles, opts.subnet)  # ConfigError on a bad subnet
    _check_ip_family(config)
    _require_root("kubedrill kind up")
    record = state.load_cluster(opts.name, opts.state_dir)
    if record is not None and record.subnet and record.subnet != addresses.subnet:
        # an earlier `up` of this cluster (running, or interrupted): its subnet stands
        addresses = plan(opts.name, config.roles, record.subnet)
    name = network.network_name(opts.name)
    exists = network.check_free(name, addresses.subnet, opts.name)
    return Checked(opts.name, config, provider, addresses, name, exists)


def kind_env(
    provider: str, docker_host: str | None, net: str | None = None, shim: Path | None = None
) -> dict[str, str]:
    env = dict(os.environ) | {"KIND_EXPERIMENTAL_PROVIDER": provider}
    if docker_host:
        env["DOCKER_HOST"] = docker_host
    if net:
        env["KIND_EXPERIMENTAL_PODMAN_NETWORK"] = net
    if shim:
        env["PATH"] = path_with_shim(shim, env.get("PATH"))
    return env


def run_kind(
    kind: str, args: list[str], env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    """kind with its progress on the terminal (stderr), its stdout captured."""
    return subprocess.run(
        [kind, *args], env=env, text=True, timeout=timeout, check=False,
        stdout=subprocess.PIPE, stderr=None,
    )  # fmt: skip


def existing_clusters(kind: str, env: dict[str, str]) -> list[str]:
    done = subprocess.run(
        [kind, "get", "clusters"], env=env, text=True, capture_output=True, timeout=60,
        check=False,
    )  # fmt: skip
    return done.stdout.split() if done.returncode == 0 else []


def node_addresses(names: list[str]) -> dict[str, str]:
    """name -> IPv4 of each existing container, from podman."""
    if not names:
        return {}
    done = subprocess.run(
        ["podman", "inspect", "--type", "container", "--format",
         "{{.Name}} {{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", *names],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    out: dict[str, str] = {}
    for line in done.stdout.splitlines():
        parts = line.split()
        if parts:
            out[parts[0]] = parts[1] if len(parts) > 1 else ""
    return out


def up(
    opts: UpOptions,
    progress: Progress,
    *,
    node_image: Callable[[Progress], str] | None = None,
    lb_image: Callable[[Progress], str] | None = None,
) -> UpResult:
    checked = check_up(opts)
    progress(
        f"kind cluster {opts.name!r} from {opts.config}: {checked.config.control_planes} "
        f"control-plane, {checked.config.workers} worker node(s), {checked.provider}"
        + (f" on {checked.plan.subnet}" if checked.plan else "")
    )
    kind = kind_binary(checked.provider, opts.cache_dir, progress)
    kubeconfig = opts.state_dir / f"{opts.name}.kubeconfig"
    base_env = kind_env(checked.provider, opts.docker_host, checked.network)
    if opts.name in existing_clusters(kind, base_env):
        return UpResult(False, checked.provider, kubeconfig)
    image = opts.image
    if checked.provider == "podman":
        if image is None:
            image = (node_image or _default_node_image)(progress)
        if checked.config.control_planes > 1:
            (lb_image or _default_lb_image)(progress)
    return _create(opts, checked, kind, image, kubeconfig, progress)


def _default_node_image(progress: Progress) -> str:
    from kubedrill.targets.kind.image import node_image  # noqa: PLC0415

    return node_image(progress)


def _default_lb_image(progress: Progress) -> str:
    from kubedrill.targets.kind.image.lb import lb_image  # noqa: PLC0415

    return lb_image(progress)


def _create(
    opts: UpOptions,
    checked: Checked,
    kind: str,
    image: str | None,
    kubeconfig: Path,
    progress: Progress,
) -> UpResult:
    record = state.ClusterRecord(
        opts.name, checked.provider, str(kubeconfig), checked.network,
        checked.plan.subnet if checked.plan else None,
        {n.name: n.ip for n in checked.plan.nodes} if checked.plan else {},
    )  # fmt: skip
    state.save_cluster(record, opts.state_dir)
    try:
        host.hold(opts.name, progress, state_dir=opts.state_dir)
        with tempfile.TemporaryDirectory(prefix="kubedrill-kind-shim-") as tmp:
            shim = None
            if checked.plan is not None and checked.network is not None:
                if not checked.network_exists:
                    network.create(
                        checked.network, checked.plan.subnet, checked.plan.gateway, opts.name
                    )
                    progress(f"created podman network {checked.network} ({checked.plan.subnet})")
                real = shutil.which("podman") or "/usr/bin/podman"
                shim = install_shim(Path(tmp), checked.plan, opts.name, real)
            env = kind_env(checked.provider, opts.docker_host, checked.network, shim)
            args = ["create", "cluster", "--name", opts.name, "--config", str(opts.config),
                    "--kubeconfig", str(kubeconfig), "--wait", opts.wait]  # fmt: skip
            if image:
                args += ["--image", image]
            started = time.monotonic()
            _check_created(opts.name, run_kind(kind, args, env, CREATE_TIMEOUT_S), started)
            seconds = time.monotonic() - started
    except BaseException:
        try:
            _undo(opts.name, kind, opts.docker_host, opts.state_dir, progress, delete=True)
        except Exception as exc:  # the first failure is the one to report
            progress(f"undoing the half-made cluster failed too ({exc}); run `kubedrill kind "
                     f"down --name {opts.name}`")  # fmt: skip
        raise
    result = UpResult(True, checked.provider, kubeconfig, seconds)
    if checked.plan is not None:
        got = node_addresses([n.name for n in checked.plan.nodes])
        result.addresses = {n.name: (n.ip, got.get(n.name, "")) for n in checked.plan.nodes}
    return result


def _check_created(name: str, done: subprocess.CompletedProcess[str], started: float) -> None:
    if done.returncode != 0:
        raise TargetError(
            f"kind create cluster --name {name} failed (exit {done.returncode}) after "
            f"{time.monotonic() - started:.0f} s; everything kubedrill set up for it was undone",
            "read kind's output above",
        )


def _others_running() -> bool:
    """Whether containers other than the deleted cluster's might need IP forwarding."""
    if shutil.which("docker") is not None:
        return True  # Docker relies on forwarding for every container; leave it alone
    done = subprocess.run(
        ["podman", "ps", "-q"], capture_output=True, text=True, timeout=60, check=False
    )
    return done.returncode != 0 or bool(done.stdout.strip())


def _undo(
    name: str,
    kind: str | None,
    docker_host: str | None,
    state_dir: Path,
    progress: Progress,
    *,
    delete: bool,
) -> list[str]:
    """Delete the cluster (when `delete`) and undo what its record says. Returns the sysctl keys
    that still differ from before the first `kind up`."""
    record = state.load_cluster(name, state_dir)
    provider = record.provider if record else "docker"
    if delete and kind is not None:
        env = kind_env(provider, docker_host, record.network if record else None)
        args = ["delete", "cluster", "--name", name]
        if record:
            args += ["--kubeconfig", record.kubeconfig]
        done = run_kind(kind, args, env, DELETE_TIMEOUT_S)
        if done.returncode != 0:
            raise TargetError(
                f"kind delete cluster --name {name} failed (exit {done.returncode}); its "
                "network and host settings were left in place",
                "read kind's output above, then run `kubedrill kind down` again",
            )
    if record is None:
        return []
    if record.network:
        progress(network.remove(record.network, name))
    Path(record.kubeconfig).unlink(missing_ok=True)
    Path(record.kubeconfig + ".lock").unlink(missing_ok=True)
    changed = host.release(name, progress, others_running=_others_running, state_dir=state_dir)
    state.remove_cluster(name, state_dir)
    state.remove_state_dir_if_empty(state_dir)
    return changed


@dataclass(frozen=True)
class DownOptions:
    name: str
    provider: str | None = None
    docker_host: str | None = None
    cache_dir: Path = field(default_factory=lambda: Path.home() / ".cache" / "kubedrill")
    state_dir: Path = state.STATE_DIR


def down(opts: DownOptions, progress: Progress) -> list[str]:
    """Delete the cluster and undo kubedrill's changes for it; returns sysctl keys that still
    differ from before the first `kind up` (reported, not fatal)."""
    check_cluster_name(opts.name)
    record = state.load_cluster(opts.name, opts.state_dir)
    provider = record.provider if record else choose_provider(opts.provider, opts.docker_host)
    if record is not None:
        _require_root("kubedrill kind down")
    kind = kind_binary(provider, opts.cache_dir, progress)
    if record is None:  # not made by kubedrill's `kind up`: kind's delete only
        env = kind_env(provider, opts.docker_host)
        done = run_kind(kind, ["delete", "cluster", "--name", opts.name], env, DELETE_TIMEOUT_S)
        if done.returncode != 0:
            raise TargetError(
                f"kind delete cluster --name {opts.name} failed (exit {done.returncode})"
            )
        return []
    return _undo(opts.name, kind, opts.docker_host, opts.state_dir, progress, delete=True)
