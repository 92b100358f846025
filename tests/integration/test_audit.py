"""`kubedrill audit` against real labs: the stacked lab as the seed recommends it passes (its
only warning: the lab has no zones), directly and over SSH; a stacked lab configured against
the seed's advice fails on exactly the items it breaks; bad input is one line, exit 2, and
nothing is read from any cluster.

Labs `kdaudit` (10.213.88.0/24) and `kdaudbad` (10.213.89.0/24), one after the other.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubedrill.cluster import Cluster
from kubedrill.disaster import backup
from kubedrill.ledger import Ledger
from kubedrill.targets.lab import lab
from kubedrill.targets.lab.config import LabConfig, load_lab_config
from kubedrill.targets.ssh.lab_hosts import start_sshd
from kubedrill.transport.ssh import POOL
from tests.integration.conftest import leftovers, run_cli

GOOD = "lab:\n  name: kdaudit\n  topology: stacked\n  subnet: 10.213.88.0/24\n"
# Against the seed: 2 control planes (so 2 etcd members: the stacked topology runs one per
# control plane), a 600 ms heartbeat and 6 s election timeout, a snapshot count of 500000,
# LB checks every 20 s (a dead apiserver stays in rotation for a minute), certificates that
# expire in 10 days.
BAD = """lab:
  name: kdaudbad
  topology: stacked
  subnet: 10.213.89.0/24
  cert_validity_days: 10
  etcd:
    heartbeat_interval_ms: 600
    election_timeout_ms: 6000
    snapshot_count: 500000
  kubernetes:
    control_planes: 2
    lb_check_inter_ms: 20000
"""
ITEMS = (
    "control-planes",
    "failure-domains",
    "etcd-members",
    "etcd-flags",
    "lb-health-checks",
    "certificates",
    "cert-files",
    "etcd-backup",
    "alert-rules",
    "leader-election",
    "clock-sync",
)


@contextlib.contextmanager
def running_lab(config: LabConfig) -> Iterator[Cluster]:
    """conftest's running_lab, except that another lab's latency drill running meanwhile on
    this shared machine (its delayer process) is not counted as this lab's leftover."""
    cluster = lab.up(config, progress=lambda _m: None)
    try:
        yield cluster
    finally:
        lab.down(config, progress=lambda _m: None)
        left = [
            item
            for item in leftovers(config.name)
            if not (item.startswith("delayer ") and f"kd-{config.name}-" not in item)
        ]
        assert not left, f"the lab left things behind: {left}"


def lab_file(tmp_path_factory: pytest.TempPathFactory, text: str) -> tuple[Path, LabConfig]:
    path = tmp_path_factory.mktemp("audit") / "lab.yaml"
    path.write_text(text)
    return path, load_lab_config(path)


def audit(*args: str, tmp: Path) -> tuple[int, dict[str, Any], str]:
    out = tmp / "audit.json"
    proc = run_cli("audit", *args, "--json", str(out), timeout=240)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(out.read_text()), proc.stdout


def statuses(report: dict[str, Any]) -> dict[str, str]:
    return {f["item"]: f["status"] for f in report["findings"]}


def evidence(report: dict[str, Any], item: str) -> str:
    return str(next(f for f in report["findings"] if f["item"] == item)["evidence"])


def restarts(state_dir: Path) -> dict[str, int]:
    status = json.loads((state_dir / "run" / "status.json").read_text())
    return {k: int(v.get("restarts", 0)) for k, v in status.items()}


# Class-scoped: each lab is up for its class only, so the two never run at once.
@pytest.fixture(scope="class")
def good(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Cluster]]:
    path, config = lab_file(tmp_path_factory, GOOD)
    with running_lab(config) as cluster:
        try:
            yield path, cluster
        finally:
            POOL.close_all()


@pytest.fixture(scope="class")
def bad(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Cluster]]:
    path, config = lab_file(tmp_path_factory, BAD)
    with running_lab(config) as cluster:
        yield path, cluster


class TestSeedLab:
    def test_passes_with_a_fresh_backup(self, good: tuple[Path, Cluster], tmp_path: Path) -> None:
        path, cluster = good
        snapshot = tmp_path / "snap.db"
        tools = backup.EtcdTools.for_cluster(cluster)
        backup.save_snapshot(tools, cluster.etcd, "control-1", snapshot)
        state_dir = load_lab_config(path).state_dir
        before = restarts(state_dir)
        results = tmp_path / "allure"
        code, report, stdout = audit(
            "--config", str(path), "--backup", str(snapshot), "--alluredir", str(results),
            tmp=tmp_path,
        )  # fmt: skip
        assert code == 0, stdout
        expected = dict.fromkeys(ITEMS, "pass") | {"failure-domains": "warn", "cert-files": "skip"}
        assert statuses(report) == expected, stdout
        assert "a lab without lab.zones has none" in evidence(report, "failure-domains")
        assert "--heartbeat-interval=100" in evidence(report, "etcd-flags")
        assert "http check /readyz, inter 2 s fall 3 rise 2" in evidence(report, "lb-health-checks")
        assert "10 endpoints" in evidence(report, "certificates")
        assert "restored into a scratch member serving revision" in evidence(report, "etcd-backup")
        assert "3 voting member(s)" in evidence(report, "etcd-members")
        assert "9 pass, 1 warn, 0 fail, 1 not applicable -> exit 0" in stdout
        # Allure: one test per item, the warning as broken.
        allure = [json.loads(p.read_text()) for p in results.glob("*-result.json")]
        assert sorted(r["status"] for r in allure) == ["broken"] + ["passed"] * 9 + ["skipped"]
        # Read only: nothing restarted, held or journalled by the audit.
        assert restarts(state_dir) == before
        holds = state_dir / "holds"
        assert not (holds.exists() and any(holds.iterdir()))
        assert not [r for r in Ledger().outstanding() if r.cluster == "lab/kdaudit"]

    def test_without_backup_warns(self, good: tuple[Path, Cluster], tmp_path: Path) -> None:
        path, _ = good
        code, report, _ = audit("--config", str(path), tmp=tmp_path)
        assert code == 0
        assert statuses(report)["etcd-backup"] == "warn"
        assert "no backup given" in evidence(report, "etcd-backup")

    def test_a_snapshot_that_is_no_snapshot_fails(
        self, good: tuple[Path, Cluster], tmp_path: Path
    ) -> None:
        path, _ = good
        junk = tmp_path / "junk.db"
        junk.write_bytes(os.urandom(4096))
        code, report, _ = audit("--config", str(path), "--backup", str(junk), tmp=tmp_path)
        assert code == 1
        assert [i for i, s in statuses(report).items() if s == "fail"] == ["etcd-backup"]
        assert "etcdutl snapshot status failed" in evidence(report, "etcd-backup")

    def test_over_ssh(self, good: tuple[Path, Cluster], tmp_path: Path) -> None:
        """The same lab through the SSH target: command lines, the HAProxy config and the
        clock are read over SSH (host keys verified)."""
        path, _ = good
        inventory = start_sshd(load_lab_config(path))
        code, report, stdout = audit("--target", "ssh", "--inventory", str(inventory), tmp=tmp_path)
        assert code == 0, stdout
        expected = dict.fromkeys(ITEMS, "pass") | {
            "failure-domains": "warn",
            "cert-files": "skip",
            "etcd-backup": "warn",
        }
        assert statuses(report) == expected, stdout
        assert evidence(report, "clock-sync").startswith("largest offset")
        flags = next(f for f in report["findings"] if f["item"] == "etcd-flags")
        assert any("/proc/" in d for d in flags["details"])


class TestLabAgainstTheSeed:
    def test_fails_on_what_it_breaks(self, bad: tuple[Path, Cluster], tmp_path: Path) -> None:
        path, cluster = bad
        snapshot = tmp_path / "old.db"
        backup.save_snapshot(
            backup.EtcdTools.for_cluster(cluster), cluster.etcd, "control-1", snapshot
        )
        two_days_ago = time.time() - 2 * 86400
        os.utime(snapshot, (two_days_ago, two_days_ago))
        code, report, stdout = audit("--config", str(path), "--backup", str(snapshot), tmp=tmp_path)
        assert code == 1, stdout
        assert statuses(report) == {
            "control-planes": "fail",
            "failure-domains": "warn",
            "etcd-members": "fail",
            "etcd-flags": "fail",
            "lb-health-checks": "fail",
            "certificates": "warn",
            "cert-files": "skip",
            "etcd-backup": "warn",
            "alert-rules": "pass",
            "leader-election": "pass",
            "clock-sync": "pass",
        }, stdout
        flags = evidence(report, "etcd-flags")
        for found in (
            "--heartbeat-interval=600",
            "--election-timeout=6000",
            "--snapshot-count=500000",
        ):
            assert found in flags
        assert "2 voting member(s)" in evidence(report, "etcd-members")
        assert "inter 20 s fall 3" in evidence(report, "lb-health-checks")
        assert "expires in 10.0 days" in evidence(report, "certificates")
        assert "older than 24 h" in evidence(report, "etcd-backup")
        assert "4 fail, 1 not applicable -> exit 1" in stdout


ETCD_ONLY = "lab:\n  name: kdaudit\n  topology: etcd\n  subnet: 10.213.88.0/24\n"


@pytest.fixture(scope="class")
def etcd_only(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path, config = lab_file(tmp_path_factory, ETCD_ONLY)
    with running_lab(config):
        yield path


class TestEtcdOnlyLab:
    def test_kubernetes_items_do_not_apply(self, etcd_only: Path, tmp_path: Path) -> None:
        code, report, stdout = audit("--config", str(etcd_only), tmp=tmp_path)
        assert code == 0, stdout
        assert statuses(report) == {
            "control-planes": "skip",
            "failure-domains": "skip",
            "etcd-members": "pass",
            "etcd-flags": "pass",
            "lb-health-checks": "skip",
            "certificates": "pass",
            "cert-files": "skip",
            "etcd-backup": "warn",
            "alert-rules": "pass",
            "leader-election": "skip",
            "clock-sync": "pass",
        }, stdout
        assert "6 endpoints" in evidence(report, "certificates")  # 3 client, 3 peer
        assert "5 not applicable -> exit 0" in stdout


BAD_INPUT = [
    ("missing lab config", ["--config", "/nonexistent/lab.yaml"], "cannot read lab config"),
    ("lab not up", ["--config", "{notup}"], "kubedrill audit needs a running lab"),
    ("missing backup", ["--config", "{notup}", "--backup", "/nonexistent/snap.db"], "no such file"),
    ("json nowhere", ["--config", "{notup}", "--json", "/nonexistent/out.json"], "cannot write"),
    ("alluredir is a file", ["--config", "{notup}", "--alluredir", "{file}"], "is a file"),
    ("backup is a directory", ["--config", "{notup}", "--backup", "/tmp"], "is not a file"),
    ("lab config not UTF-8", ["--config", "{binary}"], "is not UTF-8 text"),
    ("inventory not UTF-8", ["--target", "ssh", "--inventory", "{binary}"], "is not UTF-8 text"),
    ("ssh without inventory", ["--target", "ssh"], "--target ssh needs --inventory PATH"),
    ("inventory on the lab", ["--inventory", "{file}"], "--inventory is for --target ssh"),
]


@pytest.mark.parametrize(("case", "argv", "expected"), BAD_INPUT, ids=[c[0] for c in BAD_INPUT])
def test_bad_input(case: str, argv: list[str], expected: str, tmp_path: Path) -> None:
    notup = tmp_path / "lab.yaml"
    notup.write_text("lab:\n  name: kdaudnot\n  topology: stacked\n  subnet: 10.213.89.0/24\n")
    some_file = tmp_path / "file"
    some_file.write_text("x")
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage\x9f")
    files = {"{notup}": str(notup), "{file}": str(some_file), "{binary}": str(binary)}
    args = [files.get(a, a) for a in argv]
    proc = run_cli("audit", *args)
    assert proc.returncode == 2, (case, proc.stdout, proc.stderr)
    assert proc.stderr.startswith("kubedrill: error: ") and expected in proc.stderr, proc.stderr
    assert len(proc.stderr.splitlines()) == 2 and "->" in proc.stderr  # the error, the hint
    assert proc.stdout == ""
    assert not Path("/var/lib/kubedrill/labs/kdaudnot").exists()


def test_unknown_target_is_a_usage_error() -> None:
    proc = run_cli("audit", "--target", "vm")
    assert proc.returncode == 2 and "invalid choice: 'vm'" in proc.stderr
