"""`kubedrill lab down` refuses while a drill holds undo records for the lab (their owner runs),
removes nothing, and says what to do; once the owner is gone, down drops the records and
removes everything."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubedrill.ledger import Ledger
from kubedrill.targets.lab import lab
from kubedrill.targets.lab.config import LabConfig, load_lab_config
from tests.integration.conftest import leftovers, run_cli

LAB = "kdref"
SUBNET = "10.213.76.0/24"

# A drill in miniature: it writes its undo record through the Ledger (owner: itself), says so,
# then holds the fault until it is killed.
HOLDER = """
import sys, time
from pathlib import Path
from kubedrill.faults.base import FaultPlan
from kubedrill.ledger import Ledger
from kubedrill.transport import TransportSpec
from kubedrill.transport.step import Step
plan = FaultPlan(
    name="stop etcd",
    victims=("etcd-1",),
    description="etcd held down on etcd-1",
    inject=(),
    undo=(Step(TransportSpec("local", "kubedrill"), ("true",)),),
)
print(Ledger(Path(sys.argv[1])).record(sys.argv[2], plan).id, flush=True)
time.sleep(120)
"""


@pytest.fixture
def lab_config(tmp_path: Path) -> Iterator[LabConfig]:
    config_file = tmp_path / "lab.yaml"
    config_file.write_text(f"lab:\n  name: {LAB}\n  topology: etcd\n  subnet: {SUBNET}\n")
    config = load_lab_config(config_file)
    lab.up(config, progress=lambda _m: None)
    try:
        yield config
    finally:
        lab.down(config, progress=lambda _m: None)
        assert leftovers(LAB) == []


@pytest.fixture
def drill(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    ledger_dir = tmp_path / "ledger"
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(ledger_dir), f"lab/{LAB}"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip(), "the holder wrote no record"
        yield proc, ledger_dir
    finally:
        proc.kill()
        proc.wait()


def test_down_refuses_while_a_drill_holds_the_lab(
    lab_config: LabConfig, drill: tuple[subprocess.Popen[str], Path]
) -> None:
    proc, ledger_dir = drill
    env = {"KUBEDRILL_LEDGER_DIR": str(ledger_dir)}
    refused = run_cli("lab", "down", "--name", LAB, env=env)
    assert refused.returncode != 0
    message = refused.stderr.strip()
    assert len(message.splitlines()) == 1, message
    assert f"lab {LAB!r} has a drill in progress (pid {proc.pid}: stop etcd)" in message
    assert "kubedrill heal" in message
    # Nothing was removed: the lab still runs and the drill's record is still there.
    assert lab.supervisor_pid(lab_config.state_dir) is not None
    assert lab.status(lab_config)["up"] is True
    assert [r.owner_pid for r in Ledger(ledger_dir).outstanding()] == [proc.pid]

    # The drill is gone (killed, its fault left behind): the lab is thrown away, records too.
    proc.kill()
    proc.wait()
    done = run_cli("lab", "down", "--name", LAB, env=env)
    assert done.returncode == 0, done.stderr
    assert Ledger(ledger_dir).outstanding() == []
    assert leftovers(LAB) == []
