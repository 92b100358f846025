"""The SSH target against a real lab: one sshd (Debian's openssh-server) per lab host, in the
host's network and UTS namespaces, host keys checked by paramiko.

Lab `kdssh` on 10.213.53.0/24, topology etcd by default; KUBEDRILL_SSH_TOPOLOGY=stacked runs
the control-plane drills through SSH as well (heavy: 3 apiservers + HAProxy).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubedrill.cluster import Cluster
from kubedrill.errors import TargetError, UnknownNodeError
from kubedrill.faults import Isolate, Selector, StopComponent
from kubedrill.faults.runner import FaultSession
from kubedrill.ledger import Ledger
from kubedrill.polling import poll_until
from kubedrill.probes import etcd_checks
from kubedrill.probes.etcd import EtcdClient
from kubedrill.targets.lab import lab
from kubedrill.targets.lab.config import LabConfig, load_lab_config
from kubedrill.targets.ssh.cluster import node_of, ssh_cluster
from kubedrill.targets.ssh.inventory import load_inventory
from kubedrill.targets.ssh.lab_hosts import start_sshd
from kubedrill.timeline import Timeline
from kubedrill.transport import transport_for
from kubedrill.transport.ssh import POOL
from tests.integration.conftest import ROOT, fault_traces, leftovers, run_cli, run_pytest

LAB = "kdssh"
SUBNET = "10.213.53.0/24"
NOBODY = "10.213.53.200"  # in the lab's subnet, nothing there
TOPOLOGY = os.environ.get("KUBEDRILL_SSH_TOPOLOGY", "etcd")


@pytest.fixture(scope="module")
def ssh_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LabConfig, Cluster, Path]]:
    """The lab (seen directly, through its namespaces) and its generated SSH inventory."""
    if not Path("/usr/sbin/sshd").exists():
        pytest.fail("sshd is missing: make setup installs Debian's openssh-server")
    cfg = tmp_path_factory.mktemp("kdssh") / "lab.yaml"
    cfg.write_text(f"lab:\n  name: {LAB}\n  topology: {TOPOLOGY}\n  subnet: {SUBNET}\n")
    config = load_lab_config(cfg)
    cluster = lab.up(config, progress=lambda _m: None)
    try:
        yield config, cluster, start_sshd(config)
    finally:
        POOL.close_all()
        lab.down(config, progress=lambda _m: None)
        left = leftovers(LAB)
        sshd = subprocess.run(["pgrep", "-af", f"/labs/{LAB}/ssh"], capture_output=True, text=True)
        assert not left, f"the lab left things behind: {left}"
        assert not sshd.stdout.strip(), f"sshd left running: {sshd.stdout}"


def variant(inventory: Path, tmp_path: Path, edit: dict[str, Any] | None = None) -> Path:
    """A copy of the generated inventory with `edit` merged into its `ssh:` section."""
    data = yaml.safe_load(inventory.read_text())
    for key, value in (edit or {}).items():
        data["ssh"][key] = value
    out = tmp_path / "inventory.yaml"
    out.write_text(yaml.safe_dump(data))
    return out


def private_ledger(tmp_path: Path) -> dict[str, str]:
    """Child runs keep their undo records to themselves (other labs' runs share the machine)."""
    return {"KUBEDRILL_LEDGER_DIR": str(tmp_path / "ledger")}


def traces(cluster: Cluster, config: LabConfig) -> list[str]:
    """What an unhealed fault would leave in the lab (hosts without etcd are not missing it)."""
    return [
        t
        for t in fault_traces(cluster, config)
        if not (
            t.endswith(": etcd not running") and "etcd" not in cluster.node(t.split(":")[0]).roles
        )
    ]


def assert_untouched(config: LabConfig, cluster: Cluster) -> None:
    traces_left = traces(cluster, config)
    assert not traces_left, f"something was injected: {traces_left}"


def test_ssh_check_discovers_the_lab_supervisor(ssh_lab: tuple[LabConfig, Cluster, Path]) -> None:
    _, cluster, inventory = ssh_lab
    out = run_cli("ssh", "check", "--inventory", str(inventory))
    assert out.returncode == 0, out.stdout + out.stderr
    rows = {ln.split()[0]: ln.split() for ln in out.stdout.splitlines()[1:] if ln.strip()}
    for node in cluster.nodes:
        assert rows[node.name][1] == f"root@{node.address}:22"
        assert rows[node.name][2] == node.name  # `hostname` over SSH: the host's own UTS name
    assert out.stdout.count("kubedrill lab supervisor") >= len(cluster.with_role("etcd"))
    assert "host keys verified" in out.stdout


def test_unknown_host_key_is_rejected(
    ssh_lab: tuple[LabConfig, Cluster, Path], tmp_path: Path
) -> None:
    config, cluster, inventory = ssh_lab
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    bad = variant(inventory, tmp_path, {"known_hosts": str(empty)})
    out = run_cli("ssh", "check", "--inventory", str(bad))
    assert out.returncode == 2
    assert "is unknown: not in" in out.stderr and "ssh-keyscan" in out.stderr
    drills = run_pytest(
        "drills/test_etcd.py::test_kill_leader", "--target", "ssh", "--inventory", str(bad),
        "--allow-target", f"ssh/{LAB}", "-q", "--kubedrill-reports", str(tmp_path / "r"),
        "--alluredir", str(tmp_path / "a"), "--junitxml", str(tmp_path / "j.xml"),
        env=private_ledger(tmp_path),
    )  # fmt: skip
    assert drills.returncode == 3, drills.stdout + drills.stderr
    assert "is unknown" in drills.stdout + drills.stderr
    assert empty.read_text() == "", "an unknown key must never be added silently"
    assert_untouched(config, cluster)


def test_changed_host_key_is_rejected(
    ssh_lab: tuple[LabConfig, Cluster, Path], tmp_path: Path
) -> None:
    """Every address in known_hosts paired with another host's key: a man in the middle."""
    config, cluster, inventory = ssh_lab
    lines = (inventory.parent / "known_hosts").read_text().splitlines()
    keys = [ln.split(" ", 1)[1] for ln in lines]
    swapped = tmp_path / "known_hosts"
    swapped.write_text(
        "".join(f"{ln.split()[0]} {keys[(i + 1) % len(keys)]}\n" for i, ln in enumerate(lines))
    )
    bad = variant(inventory, tmp_path, {"known_hosts": str(swapped)})
    out = run_cli("ssh", "check", "--inventory", str(bad))
    assert out.returncode == 2
    assert "does not match: the server offered SHA256:" in out.stderr
    # accept-new still refuses a *changed* key
    again = run_cli("ssh", "check", "--inventory", str(bad), "--accept-new-host-keys")
    assert again.returncode == 2 and "does not match" in again.stderr
    assert_untouched(config, cluster)


def test_accept_new_and_pinned_keys_are_explicit(
    ssh_lab: tuple[LabConfig, Cluster, Path], tmp_path: Path
) -> None:
    _, cluster, inventory = ssh_lab
    fresh = tmp_path / "known_hosts"
    bad = variant(inventory, tmp_path, {"known_hosts": str(fresh)})
    out = run_cli("ssh", "check", "--inventory", str(bad), "--accept-new-host-keys")
    assert out.returncode == 0, out.stderr
    assert len(fresh.read_text().splitlines()) == len(cluster.nodes)
    assert run_cli("ssh", "check", "--inventory", str(bad)).returncode == 0  # now known
    # A pin: the right fingerprint logs in without known_hosts, a wrong one is refused.
    pub = inventory.parent / cluster.nodes[0].name / "ssh_host_ed25519_key.pub"
    right = subprocess.run(["ssh-keygen", "-lf", str(pub)], capture_output=True, text=True)
    pin = right.stdout.split()[1]
    data = yaml.safe_load(inventory.read_text())
    data["ssh"]["known_hosts"] = str(tmp_path / "none")
    data["ssh"]["hosts"] = [dict(data["ssh"]["hosts"][0], host_key=pin)]
    pinned = tmp_path / "pinned.yaml"
    pinned.write_text(yaml.safe_dump(data))
    assert run_cli("ssh", "check", "--inventory", str(pinned)).returncode == 0
    data["ssh"]["hosts"][0]["host_key"] = "SHA256:" + "A" * 43
    pinned.write_text(yaml.safe_dump(data))
    wrong = run_cli("ssh", "check", "--inventory", str(pinned))
    assert wrong.returncode == 2 and "does not match" in wrong.stderr


def test_wrong_client_key_is_refused(
    ssh_lab: tuple[LabConfig, Cluster, Path], tmp_path: Path
) -> None:
    key = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    _, _, inventory = ssh_lab
    bad = variant(inventory, tmp_path, {"defaults": {"user": "root", "key": str(key)}})
    out = run_cli("ssh", "check", "--inventory", str(bad))
    assert out.returncode == 2
    assert "SSH login to" in out.stderr and "was refused" in out.stderr
    assert "PRIVATE KEY" not in out.stdout + out.stderr


def test_unreachable_host_is_a_clear_error(
    ssh_lab: tuple[LabConfig, Cluster, Path], tmp_path: Path
) -> None:
    config, cluster, inventory = ssh_lab
    data = yaml.safe_load(inventory.read_text())
    data["ssh"]["hosts"].append(
        {"name": "ghost", "address": NOBODY, "roles": ["etcd"], "connect_timeout": 2}
    )
    bad = tmp_path / "inventory.yaml"
    bad.write_text(yaml.safe_dump(data))
    out = run_cli("ssh", "check", "--inventory", str(bad))
    assert out.returncode == 2
    assert f"cannot reach ghost (root@{NOBODY}:22)" in out.stderr
    assert "check the address and port" in out.stderr
    assert_untouched(config, cluster)


def test_allowlist_is_checked_before_connecting(
    ssh_lab: tuple[LabConfig, Cluster, Path], tmp_path: Path
) -> None:
    """Without --allow-target the run stops on the allowlist, not on the unreachable host:
    kubedrill did not even try to log in."""
    _, _, inventory = ssh_lab
    data = yaml.safe_load(inventory.read_text())
    data["ssh"]["hosts"].append({"name": "ghost", "address": NOBODY, "roles": ["etcd"]})
    bad = tmp_path / "inventory.yaml"
    bad.write_text(yaml.safe_dump(data))
    out = run_pytest(
        "drills/test_etcd.py::test_kill_leader", "--target", "ssh", "--inventory", str(bad), "-q",
        "--kubedrill-reports", str(tmp_path / "r"), "--alluredir", str(tmp_path / "a"),
        "--junitxml", str(tmp_path / "j.xml"), env=private_ledger(tmp_path),
    )  # fmt: skip
    assert out.returncode == 3
    assert f"target 'ssh/{LAB}' is not on the allowlist" in out.stdout + out.stderr
    assert "cannot reach" not in out.stdout + out.stderr


BAD_INVENTORIES = [
    ("malformed YAML", "ssh: {name: x, hosts: [", "is not valid YAML"),
    ("no ssh key", "hosts: []\n", "single top-level key 'ssh'"),
    (
        "unknown field",
        "ssh: {name: x, colour: red, hosts: [{name: a, roles: [etcd]}]}",
        "unknown field ssh.colour",
    ),
    (
        "unknown host field",
        "ssh: {name: x, hosts: [{name: a, roles: [etcd], adress: 1.2.3.4}]}",
        "unknown field ssh.hosts[0].adress",
    ),
    (
        "unknown role",
        "ssh: {name: x, hosts: [{name: a, roles: [etcd, master]}]}",
        "unknown role 'master' in ssh.hosts[0].roles",
    ),
    (
        "bad port",
        "ssh: {name: x, hosts: [{name: a, roles: [etcd], port: 70000}]}",
        "ssh.hosts[0].port must be an integer in 1..65535",
    ),
    (
        "bad pin",
        "ssh: {name: x, hosts: [{name: a, roles: [etcd], host_key: 'MD5:aa'}]}",
        "is not an OpenSSH SHA256 fingerprint",
    ),
    (
        "duplicate host",
        "ssh: {name: x, hosts: [{name: a, roles: [etcd]}, {name: a, roles: [etcd]}]}",
        "names a more than once",
    ),
    (
        "no etcd client cert",
        "ssh: {name: x, etcd: {ca: /nonexistent}, hosts: [{name: a, roles: [etcd]}]}",
        "ssh.etcd needs ca, cert and key",
    ),
    (
        "unknown manager",
        "ssh: {name: x, hosts: [{name: a, roles: [etcd], manager: docker}]}",
        "ssh.hosts[0].manager 'docker' is unknown",
    ),
]


@pytest.mark.parametrize(
    ("case", "text", "expected"), BAD_INVENTORIES, ids=[c[0] for c in BAD_INVENTORIES]
)
def test_bad_inventory(tmp_path: Path, case: str, text: str, expected: str) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text(text)
    out = run_cli("ssh", "check", "--inventory", str(path))
    assert out.returncode == 2, f"{case}: {out.stdout} {out.stderr}"
    assert expected in out.stderr, out.stderr


def test_missing_inventory_file(tmp_path: Path) -> None:
    out = run_cli("ssh", "check", "--inventory", str(tmp_path / "nope.yaml"))
    assert out.returncode == 2 and "cannot read inventory" in out.stderr


def test_faults_over_ssh_heal_and_unknown_node(
    ssh_lab: tuple[LabConfig, Cluster, Path], tmp_path: Path
) -> None:
    """Stop and isolate through SSH, checked from the lab's own view (its namespaces and
    supervisor), then healed; an unknown node is refused before anything is done."""
    config, lab_view, inventory = ssh_lab
    cluster = ssh_cluster(load_inventory(inventory))
    session = FaultSession(cluster, Timeline(), Ledger(tmp_path / "ledger"), log=lambda _m: None)
    etcd = EtcdClient(cluster.etcd)
    try:
        with pytest.raises(UnknownNodeError, match="unknown node"):
            session.plan(StopComponent("etcd", Selector.named("etcd-9")))
        _, healthy = poll_until(lambda: etcd_checks.all_healthy(etcd), bool, timeout=30)
        assert healthy
        with session.inject(StopComponent("etcd", Selector.follower())) as plan:
            victim = lab_view.node(plan.victims[0])
            assert all(s.transport.kind == "ssh" for s in plan.inject)
            assert not lab_view.control.is_running(victim, "etcd"), "etcd still runs"
            assert (config.state_dir / "holds" / f"{victim.name}__etcd").exists()
        with session.inject(Isolate(Selector.follower())) as plan:
            rules = lab_view.transport(plan.victims[0]).run(["iptables", "-S"]).stdout
            assert "-j KUBEDRILL" in rules
        left, clean = poll_until(
            lambda: traces(lab_view, config), lambda t: not t, timeout=30, interval=0.25
        )
        assert clean, left
    finally:
        etcd.close()


CHILD = """
import sys, threading
from pathlib import Path
from kubedrill.faults import Isolate, Selector, StopComponent
from kubedrill.faults.runner import FaultSession
from kubedrill.ledger import Ledger
from kubedrill.targets.ssh.cluster import node_of, ssh_cluster
from kubedrill.targets.ssh.inventory import load_inventory
from kubedrill.timeline import Timeline
cluster = ssh_cluster(load_inventory(Path(sys.argv[1])))
stop, isolate = StopComponent("etcd", Selector.follower()), Isolate(Selector.follower())
fault = {"stop": stop, "isolate": isolate}
with FaultSession(cluster, Timeline(), Ledger()).inject(fault[sys.argv[2]]):
    print("INJECTED", flush=True)
    threading.Event().wait(60)
"""


@pytest.mark.parametrize("fault", ["stop", "isolate"])
def test_sigkill_then_kubedrill_heal_over_ssh(
    ssh_lab: tuple[LabConfig, Cluster, Path], tmp_path: Path, fault: str
) -> None:
    config, lab_view, inventory = ssh_lab
    ledger_dir = tmp_path / "ledger"
    env = {**os.environ, "KUBEDRILL_LEDGER_DIR": str(ledger_dir), "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(inventory), fault],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert child.stdout is not None and child.stderr is not None
    first = child.stdout.readline()
    assert first.strip() == "INJECTED", child.stderr.read()
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    records = list(ledger_dir.glob("*.json"))
    assert records, "SIGKILL should leave the undo record"
    undo = json.loads(records[0].read_text())["undo"]
    assert {s["transport"]["kind"] for s in undo} == {"ssh"}
    assert "PRIVATE KEY" not in records[0].read_text()  # key paths only, never keys
    assert traces(lab_view, config), "the fault should still be in place"
    healed = run_cli("heal", env={"KUBEDRILL_LEDGER_DIR": str(ledger_dir)})
    assert healed.returncode == 0, healed.stdout + healed.stderr
    assert not list(ledger_dir.glob("*.json"))
    left, clean = poll_until(
        lambda: traces(lab_view, config), lambda t: not t, timeout=30, interval=0.25
    )
    assert clean, left


def private_key_lines(state_dir: Path) -> list[str]:
    """Every line of every private key the lab and its sshd hold (SSH client and host keys,
    the PKI's keys)."""
    lines: list[str] = []
    for path in state_dir.rglob("*"):
        if path.is_file() and (path.suffix == ".key" or path.name.endswith("ed25519_key")
                               or path.name == "id_ed25519"):  # fmt: skip
            lines += [ln for ln in path.read_text().splitlines() if "-----" not in ln]
    return lines


# make test (CI) runs one or two drills of each family through SSH; make test-all
# (KUBEDRILL_FULL_MATRIX=1) every one. The kind tier runs drills through SSH on kind's nodes too.
FULL = os.environ.get("KUBEDRILL_FULL_MATRIX") == "1"


def _drills(
    ssh_lab: tuple[LabConfig, Cluster, Path], tmp_path: Path, marks: str, few: str
) -> dict[str, Any]:
    inventory = ssh_lab[2]
    reports = tmp_path / "reports"
    out = run_pytest(
        "drills/", "-m", marks, *(() if FULL else ("-k", few)),
        "--target", "ssh", "--inventory", str(inventory),
        "--allow-target", f"ssh/{LAB}", "-q",
        "--kubedrill-reports", str(reports), "--alluredir", str(reports / "allure"),
        "--junitxml", str(reports / "junit.xml"), timeout=1500, env=private_ledger(tmp_path),
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-3000:]
    # Secrets: nothing the run wrote (console, Allure, JUnit, summary) holds key material.
    secrets = private_key_lines(ssh_lab[0].state_dir)
    assert len(secrets) > 10, "expected to find the lab's private keys to look for"
    written = [out.stdout, out.stderr] + [
        p.read_text(errors="replace") for p in reports.rglob("*") if p.is_file()
    ]
    for text in written:
        assert "PRIVATE KEY" not in text
        assert not [line for line in secrets if line in text], "private key material leaked"
    summary: dict[str, Any] = json.loads((reports / "summary.json").read_text())
    return summary


def test_etcd_drills_through_ssh(ssh_lab: tuple[LabConfig, Cluster, Path], tmp_path: Path) -> None:
    # CI: a network fault (the kind tier kills the leader through SSH on kind's nodes).
    summary = _drills(ssh_lab, tmp_path, "etcd", "isolate_leader")
    passed = [d for d in summary["drills"] if d["verdict"] == "passed"]
    assert len(passed) >= (7 if FULL else 1), [
        (d["drill"], d["verdict"]) for d in summary["drills"]
    ]
    assert {d["target"] for d in summary["drills"]} == {"ssh"}
    assert {d["cluster"] for d in summary["drills"]} == {f"ssh/{LAB}"}


@pytest.mark.skipif(TOPOLOGY != "stacked", reason="set KUBEDRILL_SSH_TOPOLOGY=stacked (heavy)")
def test_control_plane_drills_through_ssh(
    ssh_lab: tuple[LabConfig, Cluster, Path], tmp_path: Path
) -> None:
    summary = _drills(
        ssh_lab,
        tmp_path,
        "apiserver or controller or scheduler or node",
        # CI: a Lease holder and a Node (the kind tier stops an apiserver on kind).
        "kill_controller_manager or drain",
    )
    verdicts = {d["drill"]: d["verdict"] for d in summary["drills"]}
    assert "failed" not in verdicts.values(), verdicts
    assert sum(v == "passed" for v in verdicts.values()) >= (6 if FULL else 2), verdicts


def test_transport_runs_commands_faithfully(ssh_lab: tuple[LabConfig, Cluster, Path]) -> None:
    """Exit status, stdout and stderr exactly, quoting, input, timeouts; and fast: one shell
    per node serves every command, so a fault step costs milliseconds, not a login."""
    inventory = load_inventory(ssh_lab[2])
    transport = transport_for(node_of(inventory.hosts[0]).transport)
    odd = 'it\'s "quoted" $HOME `x` ; |'
    result = transport.run(["sh", "-c", 'printf %s "$1"; echo oops >&2; exit 3', "sh", odd])
    assert (result.exit_code, result.stdout, result.stderr) == (3, odd, "oops\n")
    assert transport.run(["cat"], input="line 1\nno newline").stdout == "line 1\nno newline"
    assert transport.run(["cat"]).stdout == ""  # commands never read the shell's stdin
    slow = transport.run(["sleep", "5"], timeout=0.5)
    assert slow.exit_code == 124 and "timed out" in slow.stderr
    assert transport.run(["hostname"]).stdout.strip() == inventory.hosts[0].name
    started = time.monotonic()
    for _ in range(10):
        assert transport.run(["true"]).ok
    per_command = (time.monotonic() - started) / 10
    assert per_command < 0.1, f"{per_command:.3f} s per command"


def test_target_errors_are_target_errors(ssh_lab: tuple[LabConfig, Cluster, Path]) -> None:
    """The transport never raises for an unreachable host; `connect` does, naming it."""
    from kubedrill.transport.ssh import Endpoint, SshSettings, SshTransport

    settings = SshSettings(Endpoint(NOBODY), "/nonexistent/known_hosts", connect_timeout=1)
    transport = SshTransport.of("ghost", settings)
    result = transport.run(["true"])
    assert result.exit_code == 255 and f"root@{NOBODY}:22" in result.stderr
    with pytest.raises(TargetError, match="cannot reach ghost"):
        transport.connect()
