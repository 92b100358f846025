"""Every fault heals on every way out; after SIGKILL, `kubedrill heal` repairs.

Faults x exit paths, each checked for what was left behind in the lab afterwards.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from kubedrill.cluster import Cluster
from kubedrill.polling import poll_until
from kubedrill.probes import etcd_checks
from kubedrill.probes.etcd import EtcdClient
from kubedrill.targets.lab.config import LabConfig
from tests.integration.conftest import ROOT, fault_traces, run_cli

FAULTS = ["stop", "kill", "pause", "isolate", "blackhole", "partition", "delay", "crash-host"]
EXIT_PATHS = ["normal", "exception", "sigint", "sigterm", "sigkill"]
CHILD = Path(__file__).with_name("fault_child.py")


def cases(full: bool) -> list[tuple[str, str]]:
    """The whole matrix (`make test-all`: KUBEDRILL_FULL_MATRIX=1), or the representative
    tier's part of it (`make test`): every fault killed with SIGKILL and healed by `kubedrill
    heal` (each fault's own undo record, replayed), and every exit path on a process fault and
    on a network fault (the in-process heal is the same code for every fault)."""
    if full:
        return [(f, e) for f in FAULTS for e in EXIT_PATHS]
    every_fault = [(f, "sigkill") for f in FAULTS]
    every_path = [(f, e) for f in ("stop", "partition") for e in EXIT_PATHS if e != "sigkill"]
    return every_fault + every_path


@pytest.mark.parametrize(
    ("fault", "exit_path"), cases(os.environ.get("KUBEDRILL_FULL_MATRIX") == "1")
)
def test_fault_leaves_nothing_behind(
    test_lab: Cluster, lab_config: LabConfig, tmp_path: Path, fault: str, exit_path: str
) -> None:
    ledger_dir = tmp_path / "ledger"
    # The caller's PYTHONPATH first (a worktree's src/), then the repo root (the child script).
    path = os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), str(ROOT)) if p)
    env = {**os.environ, "KUBEDRILL_LEDGER_DIR": str(ledger_dir), "PYTHONPATH": path}
    etcd = EtcdClient(test_lab.etcd)
    try:
        _, healthy = poll_until(lambda: etcd_checks.all_healthy(etcd), bool, timeout=30)
        assert healthy, "lab unhealthy before the fault"
        child = subprocess.Popen(
            [sys.executable, str(CHILD), str(lab_config.state_dir), fault, exit_path],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        first = child.stdout.readline()
        assert first.strip() == "INJECTED", child.stderr.read() if child.stderr else first
        sig = {"sigint": signal.SIGINT, "sigterm": signal.SIGTERM, "sigkill": signal.SIGKILL}
        if exit_path in sig:  # the child is waiting inside the fault: its record must exist
            assert list(ledger_dir.glob("*.json")), "no undo record while the fault is active"
            child.send_signal(sig[exit_path])
        child.wait(timeout=60)
        if exit_path == "normal":
            assert child.returncode == 0
        else:
            assert child.returncode != 0
        if exit_path == "sigkill":
            if fault != "kill":  # a kill has nothing to undo
                assert list(ledger_dir.glob("*.json")), "SIGKILL should leave the undo record"
            healed = run_cli("heal", env={"KUBEDRILL_LEDGER_DIR": str(ledger_dir)})
            assert healed.returncode == 0, healed.stdout + healed.stderr
        assert not list(ledger_dir.glob("*.json")), "undo record left behind"
        traces, clean = poll_until(
            lambda: fault_traces(test_lab, lab_config), lambda t: not t, timeout=30, interval=0.25
        )
        assert clean, f"{fault} / {exit_path} left: {traces}"
        _, healthy = poll_until(lambda: etcd_checks.all_healthy(etcd), bool, timeout=30)
        assert healthy, f"{fault} / {exit_path}: lab did not recover"
    finally:
        etcd.close()
