"""`kubedrill audit` reads every certificate file of a kubeadm layout over SSH (a real sshd on
each lab host): the pki directory's *.crt and the client certs embedded in kubeconfigs, each
listed with its days left, the worst deciding; no private key is ever read back."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubedrill.targets.lab import pki
from kubedrill.targets.lab.config import LabConfig, load_lab_config
from kubedrill.targets.ssh.lab_hosts import start_sshd
from kubedrill.transport.ssh import POOL
from tests.integration.conftest import etcd_lab_file, run_cli

# Its running_lab does not count another lab's delayer (this machine is shared) as ours.
from tests.integration.test_audit import running_lab

DAY = dt.timedelta(days=1)


@pytest.fixture(scope="module")
def ssh_inventory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    config: LabConfig = load_lab_config(etcd_lab_file(tmp_path_factory, "certx", "10.213.95.0/24"))
    with running_lab(config):
        try:
            yield start_sshd(config)
        finally:
            POOL.close_all()


def kubeadm_layout(root: Path) -> tuple[Path, Path, str]:
    """A kubeadm-like /etc/kubernetes under `root`: a CA, an apiserver cert with a year left,
    a front-proxy client with 20 days, an etcd peer cert that expired yesterday, and an
    admin.conf whose embedded client cert has 3 days left. Returns (pki, kubeconfig dir, the
    admin key's base64, which must never come back)."""
    pki_dir, etc = root / "pki", root
    ca = pki.create_ca(pki_dir, "ca", "kubernetes")
    pki.issue(ca, pki_dir, "apiserver", "kube-apiserver", server=True, validity=365 * DAY)
    pki.issue(ca, pki_dir, "front-proxy-client", "front-proxy-client", client=True,
              validity=20 * DAY)  # fmt: skip
    peer = pki.issue(ca, pki_dir / "etcd", "peer", "etcd-peer", server=True, client=True)
    pki.renew(ca, peer, -DAY, not_before=2 * DAY)  # expired yesterday
    admin = pki.issue(ca, pki_dir, "admin", "kubernetes-admin", client=True, validity=3 * DAY)
    key_data = base64.b64encode(admin.key.read_bytes()).decode()
    user = {
        "client-certificate-data": base64.b64encode(admin.cert.read_bytes()).decode(),
        "client-key-data": key_data,
    }
    (etc / "admin.conf").write_text(
        yaml.safe_dump({"apiVersion": "v1", "users": [{"name": "admin", "user": user}]})
    )
    admin.cert.unlink()  # kubeadm keeps it only in the kubeconfig
    admin.key.unlink()
    return pki_dir, etc, key_data


def test_audit_lists_every_cert_file_with_days_left_over_ssh(
    ssh_inventory: Path, tmp_path: Path
) -> None:
    pki_dir, etc, key_data = kubeadm_layout(tmp_path / "kubernetes")
    out = tmp_path / "audit.json"
    proc = run_cli(
        "audit", "--target", "ssh", "--inventory", str(ssh_inventory), "--pki-dir",
        str(pki_dir), "--kubeconfig-dir", str(etc), "--details", "--json", str(out),
        timeout=240,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    report: dict[str, Any] = json.loads(out.read_text())
    (item,) = [f for f in report["findings"] if f["item"] == "cert-files"]
    assert item["status"] == "fail", item
    details = "\n".join(item["details"])
    # Every node (3 etcd members, all reading the same directory here) lists all 5.
    assert len(item["details"]) == 15, details
    for node in ("etcd-1", "etcd-2", "etcd-3"):
        assert f"PASS {node}: {pki_dir}/ca.crt: 3650.0 days left" in details
        assert f"PASS {node}: {pki_dir}/apiserver.crt: 365.0 days left" in details
        assert f"WARN {node}: {pki_dir}/front-proxy-client.crt: 20.0 days left" in details
        assert f"FAIL {node}: {pki_dir}/etcd/peer.crt: expired 1.0 days ago" in details
        assert f"FAIL {node}: {etc}/admin.conf (client cert): 3.0 days left" in details
    assert "CN=kubernetes-admin" in details
    assert "kubeadm certs renew" in item["fix"]
    # Read only, and no key came back: not in the output, not in the report.
    assert key_data[:40] not in proc.stdout + out.read_text()
    assert "PRIVATE KEY" not in proc.stdout + out.read_text()
