"""Bad input gets a clear error naming the problem, a non-zero exit, and nothing injected."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kubedrill.cluster import Cluster
from kubedrill.errors import GuardError, UnknownNodeError
from kubedrill.faults import Isolate, PauseComponent, Selector, StopComponent
from kubedrill.faults.runner import FaultSession
from kubedrill.ledger import Ledger
from kubedrill.timeline import Timeline
from tests.integration.conftest import ROOT, run_cli, run_pytest

CASES = [
    (
        "missing config",
        ["lab", "up", "--config", "/nonexistent/lab.yaml"],
        "cannot read lab config",
    ),
    ("malformed YAML", ["lab", "up", "--config", "{bad}"], "is not valid YAML"),
    ("binary config", ["lab", "up", "--config", "{binary}"], "is not UTF-8 text (byte 0xd2"),
    ("unknown field", ["lab", "up", "--config", "{unknown}"], "unknown field lab.colour"),
    ("wrong type", ["lab", "up", "--config", "{wrongtype}"], "lab.members must be an integer"),
    ("even members", ["lab", "up", "--members", "4", "--name", "kdbad"], "lab.members is 4"),
    (
        "bad subnet",
        ["lab", "up", "--subnet", "10.300.0.0/24", "--name", "kdbad"],
        "lab.subnet '10.300.0.0/24' is not a network",
    ),
    (
        "subnet on a host route",
        ["lab", "up", "--subnet", "{hostnet}", "--name", "kdbad"],
        "overlaps the route",
    ),
    (
        "missing binary",
        ["lab", "up", "--bin-dir", "/nonexistent", "--name", "kdbad"],
        "lacks executable etcd",
    ),
    ("bad lab name", ["lab", "up", "--name", "Bad_Name"], "lab.name 'Bad_Name' is invalid"),
]


GARBAGE = bytes([0xD2, 0x00, 0xFF, 0x13]) * 64  # what a wrong file (a binary) looks like


def host_network() -> str:
    import json
    import subprocess

    routes = json.loads(
        subprocess.run(["ip", "-j", "-4", "route"], capture_output=True, text=True).stdout
    )
    for route in routes:
        if route.get("dst") not in (None, "default") and "/" in route["dst"]:
            return str(route["dst"])
    pytest.skip("this machine has no IPv4 network route to collide with")


@pytest.mark.parametrize(("case", "argv", "expected"), CASES, ids=[c[0] for c in CASES])
def test_bad_cli_input(case: str, argv: list[str], expected: str, tmp_path: Path) -> None:
    files = {
        "{bad}": "lab: [unclosed\n",
        "{unknown}": "lab:\n  colour: blue\n",
        "{wrongtype}": "lab:\n  members: three\n",
    }
    args = []
    for arg in argv:
        if arg == "{binary}":
            path = tmp_path / "lab.yaml"
            path.write_bytes(GARBAGE)
            arg = str(path)
        elif arg in files:
            path = tmp_path / "lab.yaml"
            path.write_text(files[arg])
            arg = str(path)
        elif arg == "{hostnet}":
            arg = host_network()
        args.append(arg)
    proc = run_cli(*args)
    assert proc.returncode == 2, (case, proc.stdout, proc.stderr)
    assert expected in proc.stderr, (case, proc.stderr)
    assert "->" in proc.stderr, f"{case}: the error should say what to do"
    assert not Path("/var/lib/kubedrill/labs/kdbad").exists()


def test_not_root_is_refused(tmp_path: Path) -> None:
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is not installed")
    import subprocess
    import sys

    proc = subprocess.run(
        [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            sys.executable,
            "-m",
            "kubedrill.cli",
            "lab",
            "up",
            "--name",
            "kdbad",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/sbin:/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert proc.returncode == 2, proc.stderr
    assert "lab up needs root" in proc.stderr


def test_corrupt_ledger_is_reported(tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text("{not json")
    proc = run_cli("heal", env={"KUBEDRILL_LEDGER_DIR": str(tmp_path)})
    assert proc.returncode == 2
    assert "undo record" in proc.stderr and "is corrupt" in proc.stderr


def test_unknown_node_injects_nothing(test_lab: Cluster, tmp_path: Path) -> None:
    session = FaultSession(test_lab, Timeline(), Ledger(tmp_path), log=lambda _m: None)
    with (
        pytest.raises(UnknownNodeError, match="etcd-9"),
        session.inject(StopComponent("etcd", Selector.named("etcd-9"))),
    ):
        pass
    assert not list(tmp_path.glob("*.json"))


def test_quorum_guard_refuses_majority_stop(test_lab: Cluster, tmp_path: Path) -> None:
    session = FaultSession(test_lab, Timeline(), Ledger(tmp_path), log=lambda _m: None)
    with (
        pytest.raises(GuardError, match="lose quorum"),
        session.inject(StopComponent("etcd", Selector("majority"))),
    ):
        pass
    assert not list(tmp_path.glob("*.json"))
    assert all(test_lab.control.is_running(n, "etcd") for n in test_lab.nodes)


def test_unknown_marker_is_a_usage_error() -> None:
    proc = run_pytest("drills/", "-m", "etdc or partition", "--collect-only")
    assert proc.returncode == 4
    assert "unknown marker(s) in -m" in proc.stderr and "etdc" in proc.stderr


def test_second_fault_needs_a_declaration(test_lab: Cluster, tmp_path: Path) -> None:
    session = FaultSession(test_lab, Timeline(), Ledger(tmp_path), log=lambda _m: None)
    pause = PauseComponent("etcd", Selector.follower())
    with (
        session.inject(pause),
        pytest.raises(GuardError, match="is still active"),
        session.inject(Isolate(Selector.leader())),
    ):
        pass
    assert not list(tmp_path.glob("*.json"))
    assert all(test_lab.control.is_running(n, "etcd") for n in test_lab.nodes)


def test_unknown_role_is_named(test_lab: Cluster) -> None:
    with pytest.raises(UnknownNodeError, match="unknown role 'master'"):
        test_lab.with_role("master")


@pytest.mark.parametrize("option", ["--lab-config", "--inventory"])
def test_unreadable_file_stops_pytest_in_one_line(option: str, tmp_path: Path) -> None:
    """Not 14 tracebacks (one per drill) and no pytest class names: one line naming the
    file, exit 3, nothing brought up or injected."""
    garbage = tmp_path / "given.yaml"
    garbage.write_bytes(GARBAGE)
    target = ["--target", "ssh"] if option == "--inventory" else []
    out = run_pytest(
        "drills/test_etcd.py", *target, option, str(garbage), "-q",
        "--kubedrill-reports", str(tmp_path / "r"), "--alluredir", str(tmp_path / "a"),
        "--junitxml", str(tmp_path / "j.xml"),
        env={"KUBEDRILL_LEDGER_DIR": str(tmp_path / "ledger")},
    )  # fmt: skip
    text = out.stdout + out.stderr
    assert out.returncode == 3, text
    errors = [line for line in text.splitlines() if "kubedrill: error:" in line]
    assert len(errors) == 1 and f"{garbage} is not UTF-8 text" in errors[0], text
    assert "Traceback" not in text and "_pytest" not in text and "UnicodeDecodeError" not in text
