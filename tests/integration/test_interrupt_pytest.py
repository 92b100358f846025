"""Killing or interrupting a whole pytest run mid-fault leaves nothing behind: SIGTERM, ^C and
pytest-timeout heal on the way out; after SIGKILL, `kubedrill heal` repairs."""

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
from tests.integration.test_drill_runner import report_args

DRILLS = {
    "delay": "drills/test_etcd.py::test_peer_latency_below_election_timeout",
    "stop": "drills/test_etcd.py::test_stop_follower",
}
INTERRUPTS = ["sigterm", "sigint", "sigkill", "timeout"]


@pytest.mark.parametrize("interrupt", INTERRUPTS)
@pytest.mark.parametrize("drill", sorted(DRILLS))
def test_interrupted_run_leaves_nothing_behind(
    test_lab: Cluster,
    lab_config: LabConfig,
    lab_config_file: Path,
    tmp_path: Path,
    drill: str,
    interrupt: str,
) -> None:
    ledger = tmp_path / "ledger"
    etcd = EtcdClient(test_lab.etcd)
    try:
        _, healthy = poll_until(lambda: etcd_checks.all_healthy(etcd), bool, timeout=30)
        assert healthy
        args = [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            DRILLS[drill],
            *report_args(tmp_path, lab_config_file),
        ]
        if interrupt == "timeout":
            args += ["--timeout", "3"]  # pytest-timeout fires while the fault is held
        child = subprocess.Popen(
            args,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "KUBEDRILL_LEDGER_DIR": str(ledger)},
        )
        _, injected = poll_until(
            lambda: list(ledger.glob("*.json")), bool, timeout=60, interval=0.05
        )
        assert injected, "the drill never injected its fault"
        sig = {"sigterm": signal.SIGTERM, "sigint": signal.SIGINT, "sigkill": signal.SIGKILL}
        if interrupt in sig:
            child.send_signal(sig[interrupt])
        out, _ = child.communicate(timeout=120)
        assert child.returncode != 0, out[-2000:]
        if interrupt == "sigkill":
            assert list(ledger.glob("*.json")), "SIGKILL cannot heal: the record must remain"
            healed = run_cli("heal", env={"KUBEDRILL_LEDGER_DIR": str(ledger)})
            assert healed.returncode == 0, healed.stdout + healed.stderr
        assert not list(ledger.glob("*.json")), (
            f"undo record left after {interrupt}:\n{out[-2000:]}"
        )
        traces, clean = poll_until(
            lambda: fault_traces(test_lab, lab_config), lambda t: not t, timeout=30, interval=0.25
        )
        assert clean, f"{drill} / {interrupt} left: {traces}"
    finally:
        etcd.close()
