"""`kubedrill kind up|down` logic without a container engine: the address plan, the podman shim's
argument rewriting (the real script, run against a fake podman), the state records, the host
settings on a fake /proc/sys, and bad input refused before anything is made."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from kubedrill import cli
from kubedrill.errors import ConfigError, KubedrillError
from kubedrill.targets.kind import host, lifecycle, network, provider, state
from kubedrill.targets.kind.ipplan import DEFAULT_SUBNET, node_names, parse_subnet, plan
from kubedrill.targets.kind.podman_shim import install_shim, path_with_shim, render_shim

HA_ROLES = ("control-plane", "control-plane", "control-plane", "worker", "worker")
ROOT = Path(__file__).resolve().parents[2]

# -- the address plan ---------------------------------------------------------------------


def test_plan_follows_kinds_node_names() -> None:
    got = {n.name: (n.role, n.ip) for n in plan("kd-lb", HA_ROLES, DEFAULT_SUBNET).nodes}
    assert got == {
        "kd-lb-control-plane": ("control-plane", "10.213.40.11"),
        "kd-lb-control-plane2": ("control-plane", "10.213.40.12"),
        "kd-lb-control-plane3": ("control-plane", "10.213.40.13"),
        "kd-lb-worker": ("worker", "10.213.40.21"),
        "kd-lb-worker2": ("worker", "10.213.40.22"),
        "kd-lb-external-load-balancer": ("external-load-balancer", "10.213.40.10"),
    }


def test_plan_has_no_load_balancer_with_one_control_plane() -> None:
    assert [n for n, _ in node_names("x", ("control-plane", "worker"))] == [
        "x-control-plane",
        "x-worker",
    ]


def test_plan_on_another_subnet_and_its_gateway() -> None:
    p = plan("c", ("control-plane",), "192.168.77.0/24")
    assert (p.subnet, p.gateway, p.ip_of("c-control-plane")) == (
        "192.168.77.0/24",
        "192.168.77.1",
        "192.168.77.11",
    )
    assert p.ip_of("nope") is None


@pytest.mark.parametrize(
    ("subnet", "why"),
    [
        ("10.213.40.0", "/32"),
        ("10.213.40.1/24", "host bits"),
        ("nonsense", "invalid"),
        ("fd00::/64", "IPv6"),
        ("10.213.40.0/25", "/25"),
        ("8.8.8.0/24", "not a private"),
        ("127.0.0.0/24", "not a private"),
    ],
)
def test_bad_subnets_are_config_errors(subnet: str, why: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_subnet(subnet)
    assert why in info.value.message or why in str(info.value)


def test_too_many_control_planes() -> None:
    with pytest.raises(ConfigError, match="at most 9"):
        plan("c", ("control-plane",) * 10, DEFAULT_SUBNET)


# -- the podman shim ------------------------------------------------------------------------


def run_shim(tmp_path: Path, *args: str) -> list[str]:
    """Run the real shim with a fake 'real podman' that records its arguments, one a line."""
    record = tmp_path / "argv"
    fake = tmp_path / "real-podman"
    fake.write_text(f'#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done > {record}\n')
    fake.chmod(0o755)
    shim_dir = install_shim(tmp_path / "shim", plan("kd-lb", HA_ROLES, DEFAULT_SUBNET), "kd-lb",
                            str(fake))  # fmt: skip
    env = {"PATH": path_with_shim(shim_dir, "/usr/bin:/bin")}
    subprocess.run(["podman", *args], env=env, check=True)
    return record.read_text().splitlines()


def test_shim_pins_the_node_named_in_podman_run(tmp_path: Path) -> None:
    argv = ["run", "--name", "kd-lb-control-plane2", "--hostname", "kd-lb-control-plane2",
            "--label", "a=b c", "img:tag"]  # fmt: skip
    assert run_shim(tmp_path, *argv) == ["run", "--ip", "10.213.40.12", *argv[1:]]


def test_shim_knows_the_equals_form_and_the_load_balancer(tmp_path: Path) -> None:
    argv = ["run", "--detach", "--name=kd-lb-external-load-balancer", "envoy", "bash", "-c", "x y"]
    assert run_shim(tmp_path, *argv) == ["run", "--ip", "10.213.40.10", *argv[1:]]


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--name", "someone-elses-container", "img"],  # not a planned node
        ["inspect", "--name", "kd-lb-worker"],  # not a run
        ["exec", "kd-lb-worker", "sh", "-c", "echo 'a  b'"],
        ["network", "inspect", "kind"],
        [],
    ],
)
def test_shim_passes_everything_else_through(tmp_path: Path, argv: list[str]) -> None:
    assert run_shim(tmp_path, *argv) == argv


def test_shim_quotes_the_real_podman_path() -> None:
    text = render_shim(plan("c", ("control-plane",), DEFAULT_SUBNET), "c", "/opt/my podman")
    assert "real='/opt/my podman'" in text
    assert "c-control-plane) ip=10.213.40.11 ;;" in text


# -- state records ---------------------------------------------------------------------------


def test_cluster_record_round_trip(tmp_path: Path) -> None:
    nodes = {"kd-lb-control-plane": "10.213.40.11"}
    record = state.ClusterRecord(
        "kd-lb", "podman", "/k", "kind-kubedrill-kd-lb", DEFAULT_SUBNET, nodes
    )
    state.save_cluster(record, tmp_path)
    assert state.load_cluster("kd-lb", tmp_path) == record
    assert state.clusters(tmp_path) == ["kd-lb"]
    state.remove_cluster("kd-lb", tmp_path)
    assert state.load_cluster("kd-lb", tmp_path) is None
    (tmp_path / "kd-lb").mkdir()  # emptied by the SSH cleanup
    state.remove_state_dir_if_empty(tmp_path)
    assert not tmp_path.exists()


def test_unreadable_record_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "kd-lb.json").write_text("{not json")
    with pytest.raises(KubedrillError, match="unreadable"):
        state.load_cluster("kd-lb", tmp_path)


# -- host settings on a fake /proc/sys ------------------------------------------------------

SYSCTLS = {
    "fs.inotify.max_user_instances": "128",
    "kernel.panic": "1",
    "kernel.panic_on_oops": "0",
    "vm.overcommit_memory": "0",
    "net.ipv4.ip_forward": "0",
    "net.ipv4.conf.all.forwarding": "0",
    "net.ipv6.conf.all.forwarding": "0",
    "fs.file-nr": "1 0 9",  # a counter: never compared
    "net.core.somaxconn": "4096",
}


@pytest.fixture
def proc(tmp_path: Path) -> Path:
    root = tmp_path / "proc-sys"
    for key, value in SYSCTLS.items():
        path = root / key.replace(".", "/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(value + "\n")
    return root


def test_hold_and_release_put_the_host_back(tmp_path: Path, proc: Path) -> None:
    messages: list[str] = []
    states, modules = tmp_path / "state", tmp_path / "lib-modules"
    host.hold("a", messages.append, state_dir=states, root=proc, dirs=[modules])
    assert host.read_sysctl("fs.inotify.max_user_instances", proc) == "512"
    assert modules.is_dir()
    host.hold("b", messages.append, state_dir=states, root=proc, dirs=[modules])
    saved = json.loads((states / "host.json").read_text())
    assert saved["holders"] == ["a", "b"]
    assert saved["sysctl_before"]["fs.inotify.max_user_instances"] == "128"
    # what a kubelet and netavark do meanwhile
    host.write_sysctl("kernel.panic", "10", proc)
    host.write_sysctl("net.ipv4.ip_forward", "1", proc)
    host.write_sysctl("fs.file-nr", "5 0 9", proc)

    assert host.release("a", messages.append, others_running=lambda: False, state_dir=states,
                        root=proc) == []  # fmt: skip
    assert host.read_sysctl("fs.inotify.max_user_instances", proc) == "512"  # b still runs
    assert host.read_sysctl("kernel.panic", proc) == "10"

    assert host.release("b", messages.append, others_running=lambda: False, state_dir=states,
                        root=proc) == []  # fmt: skip
    for key, value in SYSCTLS.items():
        if key != "fs.file-nr":
            assert host.read_sysctl(key, proc) == value, key
    assert not modules.exists()
    assert not (states / "host.json").exists()


def test_release_leaves_forwarding_to_running_containers_and_reports_it(
    tmp_path: Path, proc: Path
) -> None:
    states = tmp_path / "state"
    host.hold("a", print, state_dir=states, root=proc, dirs=[])
    host.write_sysctl("net.ipv4.ip_forward", "1", proc)
    host.write_sysctl("net.core.somaxconn", "128", proc)  # someone else's change
    changed = host.release("a", print, others_running=lambda: True, state_dir=states, root=proc)
    assert changed == ["net.core.somaxconn: 4096 -> 128", "net.ipv4.ip_forward: 0 -> 1"]


def test_a_higher_limit_is_left_alone(tmp_path: Path, proc: Path) -> None:
    host.write_sysctl("fs.inotify.max_user_instances", "8192", proc)
    host.hold("a", print, state_dir=tmp_path / "s", root=proc, dirs=[])
    assert host.read_sysctl("fs.inotify.max_user_instances", proc) == "8192"
    host.release("a", print, others_running=lambda: True, state_dir=tmp_path / "s", root=proc)
    assert host.read_sysctl("fs.inotify.max_user_instances", proc) == "8192"


def test_a_directory_that_was_filled_meanwhile_stays(tmp_path: Path, proc: Path) -> None:
    modules = tmp_path / "lib-modules"
    host.hold("a", print, state_dir=tmp_path / "s", root=proc, dirs=[modules])
    (modules / "6.1.0").mkdir()
    host.release("a", print, others_running=lambda: True, state_dir=tmp_path / "s", root=proc)
    assert (modules / "6.1.0").is_dir()


# -- networks, providers, and bad input ------------------------------------------------------


def test_network_name_avoids_dots() -> None:
    assert network.network_name("kd-lb") == "kind-kubedrill-kd-lb"
    assert network.network_name("a.b") == "kind-kubedrill-a-b"


def test_overlaps() -> None:
    others = [("10.213.40.128/25", "podman network x"), ("10.0.0.0/8", "route 10/8"),
              ("192.168.0.0/16", "address on eth1")]  # fmt: skip
    assert network.overlaps("10.213.40.0/24", others) == ["podman network x", "route 10/8"]
    assert network.overlaps("172.20.0.0/24", others) == []


def test_unknown_provider_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown provider 'lxc'"):
        provider.choose_provider("lxc")


def test_provider_detection(monkeypatch: pytest.MonkeyPatch) -> None:
    installed = {"podman"}
    monkeypatch.setattr("shutil.which", lambda name: name if name in installed else None)
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    assert provider.choose_provider(None) == "podman"
    installed.add("docker")
    monkeypatch.setenv("DOCKER_HOST", "unix:///run/docker.sock")
    assert provider.choose_provider(None) == "docker"
    assert provider.choose_provider("podman") == "podman"


@pytest.fixture
def podman_host(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A machine with podman, root, and one podman network on 10.213.40.0/24; records every
    podman network call that would change something."""
    calls: list[str] = []
    monkeypatch.setattr("shutil.which", lambda n: n if n == "podman" else None)
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setattr("os.geteuid", lambda: 0)
    monkeypatch.setattr(network, "podman_networks", lambda: [
        network.ExistingNetwork("someone", ("10.213.40.0/24",), {}),
        network.ExistingNetwork("kind-kubedrill-taken", ("10.213.50.0/24",), {}),
    ])  # fmt: skip
    monkeypatch.setattr(network, "host_networks", lambda: [("10.0.2.0/24", "address on eth0")])
    monkeypatch.setattr(network, "create", lambda *a: calls.append(f"create {a}"))
    monkeypatch.setattr(host, "hold", lambda *a, **k: calls.append("hold"))
    return calls


def up_options(tmp_path: Path, **kw: str) -> lifecycle.UpOptions:
    fields = {"name": "kd-lb", "subnet": "10.213.41.0/24"} | kw
    return lifecycle.UpOptions(
        name=fields["name"], config=ROOT / "kind-configs" / "ha.yaml", subnet=fields["subnet"],
        provider=fields.get("provider"), state_dir=tmp_path / "state",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"provider": "lxc"}, "unknown provider"),
        ({"subnet": "10.213.41.0/23x"}, "invalid subnet"),
        ({"subnet": "10.213.40.0/24"}, "collides with podman network someone"),
        ({"subnet": "10.0.0.0/16"}, "collides with address on eth0"),
        ({"name": "taken", "subnet": "10.213.60.0/24"}, "kind-kubedrill-taken exists"),
        ({"name": "Bad_Name"}, "invalid kind cluster name"),
    ],
)
def test_bad_input_creates_nothing(
    tmp_path: Path, podman_host: list[str], kw: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        lifecycle.up(up_options(tmp_path, **kw), print)
    assert podman_host == []
    assert not (tmp_path / "state").exists()


def test_bad_input_is_one_error_and_exit_2(
    podman_host: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["kind", "up", "--name", "kd-lb", "--subnet", "10.213.40.0/24",
                     "--config", str(ROOT / "kind-configs" / "ha.yaml")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert err.splitlines()[-2:] == [
        "kubedrill: error: subnet 10.213.40.0/24 collides with podman network someone",
        "  -> pick a free private /24 with --subnet, e.g. --subnet 10.213.41.0/24",  # 40 taken
    ]
    assert podman_host == []


def test_check_up_accepts_a_free_subnet(tmp_path: Path, podman_host: list[str]) -> None:
    checked = lifecycle.check_up(up_options(tmp_path))
    assert checked.provider == "podman"
    assert checked.network == "kind-kubedrill-kd-lb"
    assert checked.plan is not None and checked.plan.ip_of("kd-lb-control-plane3") == "10.213.41.13"
    assert not checked.network_exists
    assert podman_host == []


def test_kind_gets_the_provider_network_and_shim(tmp_path: Path) -> None:
    env = lifecycle.kind_env("podman", None, "kind-kubedrill-x", tmp_path)
    assert env["KIND_EXPERIMENTAL_PROVIDER"] == "podman"
    assert env["KIND_EXPERIMENTAL_PODMAN_NETWORK"] == "kind-kubedrill-x"
    assert env["PATH"].split(":")[0] == str(tmp_path)


@pytest.fixture
def fake_kind(tmp_path: Path, podman_host: list[str], monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """`up`'s collaborators replaced: kind itself, the images, network removal, host release."""
    calls = podman_host
    monkeypatch.setattr(lifecycle, "kind_binary", lambda *a: "/fake/kind")
    monkeypatch.setattr(lifecycle, "existing_clusters", lambda *a: [])

    def remove(*args: str) -> str:
        calls.append(f"remove {args}")
        return "removed"

    def release(*args: object, **kwargs: object) -> list[str]:
        calls.append("release")
        return []

    monkeypatch.setattr(network, "remove", remove)
    monkeypatch.setattr(host, "release", release)
    monkeypatch.setattr(
        lifecycle, "node_addresses", lambda names: dict.fromkeys(names, "10.213.41.99")
    )
    return calls


def fake_run_kind(calls: list[str], create_rc: int) -> object:
    def run(kind: str, args: list[str], env: dict[str, str], timeout: float) -> object:
        calls.append(" ".join(args[:2]))
        if args[0] == "create":
            assert env["KIND_EXPERIMENTAL_PODMAN_NETWORK"] == "kind-kubedrill-kd-lb"
            shim = Path(env["PATH"].split(":")[0]) / "podman"
            assert "kd-lb-control-plane3) ip=10.213.41.13 ;;" in shim.read_text()
            assert args[args.index("--image") + 1] == "node:img"
        return subprocess.CompletedProcess(args, create_rc if args[0] == "create" else 0, "", "")

    return run


def test_up_records_then_creates_and_reports_addresses(
    tmp_path: Path, fake_kind: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lifecycle, "run_kind", fake_run_kind(fake_kind, 0))
    result = lifecycle.up(
        up_options(tmp_path), print, node_image=lambda _: "node:img", lb_image=lambda _: "lb"
    )
    assert fake_kind[0] == "hold" and fake_kind[1].startswith("create ('kind-kubedrill-kd-lb'")
    assert fake_kind[2:] == ["create cluster"]
    assert result.created and result.addresses["kd-lb-control-plane"] == (
        "10.213.41.11",
        "10.213.41.99",
    )
    record = state.load_cluster("kd-lb", tmp_path / "state")
    assert record is not None and record.network == "kind-kubedrill-kd-lb"
    assert record.nodes["kd-lb-external-load-balancer"] == "10.213.41.10"


def test_a_failed_create_undoes_everything(
    tmp_path: Path, fake_kind: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lifecycle, "run_kind", fake_run_kind(fake_kind, 1))
    with pytest.raises(KubedrillError, match=r"failed \(exit 1\).*undone"):
        lifecycle.up(
            up_options(tmp_path), print, node_image=lambda _: "node:img", lb_image=lambda _: "lb"
        )
    assert fake_kind[2:] == [
        "create cluster",
        "delete cluster",
        "remove ('kind-kubedrill-kd-lb', 'kd-lb')",
        "release",
    ]
    assert not (tmp_path / "state").exists()
