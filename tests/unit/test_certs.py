"""Certificates without a cluster: renewal keeps names and key and replaces the file in one
rename; the lab's per-host cert files by kind; the node-side reader (run by a real `sh` on a
kubeadm-like directory) never prints a key; the judgement of files by days left."""

from __future__ import annotations

import base64
import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cryptography import x509

from kubedrill.audit import cert_files
from kubedrill.errors import ConfigError
from kubedrill.targets.lab import certs, pki
from kubedrill.workload.api_reader import tls_reason

DAY = dt.timedelta(days=1)
NOW = dt.datetime(2026, 12, 2, tzinfo=dt.UTC)


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_renew_keeps_subject_names_usages_and_key_with_a_new_serial(tmp_path: Path) -> None:
    ca = pki.create_ca(tmp_path, "ca", "kubernetes")
    pair = pki.issue(ca, tmp_path, "apiserver", "kube-apiserver", dns=["control-1"],
                     ips=["10.0.0.1"], server=True)  # fmt: skip
    old, key = load(pair.cert), pair.key.read_bytes()
    new = pki.renew(pki.load_authority(tmp_path), pair, 60 * dt.timedelta(seconds=1))
    assert load(pair.cert) == new
    assert new.serial_number != old.serial_number
    assert new.subject == old.subject
    assert list(new.extensions) == list(old.extensions)
    assert new.public_key() == old.public_key()
    assert pair.key.read_bytes() == key  # the key file is not touched
    left = new.not_valid_after_utc - dt.datetime.now(dt.UTC)
    assert dt.timedelta(seconds=50) < left <= dt.timedelta(seconds=60)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["ca.crt", "ca.key", "apiserver.crt", "apiserver.key"]
    )  # no temp file left


def test_lab_cert_names_each_hosts_file_and_refuses_what_is_not_there(tmp_path: Path) -> None:
    etcd = tmp_path / "pki" / "etcd"
    ca = pki.create_ca(etcd, "ca", "etcd-ca")
    pki.issue(ca, etcd, "control-1-peer", "control-1", server=True, client=True)
    pki.issue(ca, etcd, "kubedrill-client", "kubedrill", client=True, validity=30 * DAY)
    cert = certs.lab_cert(tmp_path, "control-1", "etcd-peer")
    assert cert.pair.cert == etcd / "control-1-peer.crt"
    assert cert.component == "etcd"
    with pytest.raises(ConfigError, match="no etcd-peer certificate for control-9"):
        certs.lab_cert(tmp_path, "control-9", "etcd-peer")
    with pytest.raises(ConfigError, match="unknown certificate kind"):
        certs.lab_cert(tmp_path, "control-1", "kubelet")
    assert abs(certs.lab_validity(tmp_path) - 30 * DAY) < dt.timedelta(seconds=5)
    with pytest.raises(ConfigError, match="not positive"):
        certs.renew(cert, -DAY)


def test_certs_renew_command_refuses_bad_input_in_one_line(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "kubedrill.certs_cli", "renew", "--state-dir", str(tmp_path),
         "--host", "control-1", "--kind", "apiserver"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert (
        proc.stderr.startswith("kubedrill: error: ") and "is not a lab's state dir" in proc.stderr
    )
    assert proc.stdout == ""


def kubeadm_dir(root: Path) -> str:
    ca = pki.create_ca(root / "pki", "ca", "kubernetes")
    pki.issue(ca, root / "pki" / "etcd", "peer", "etcd-peer", server=True, validity=40 * DAY)
    admin = pki.issue(ca, root, "admin", "kubernetes-admin", client=True, validity=10 * DAY)
    key_data = base64.b64encode(admin.key.read_bytes()).decode()
    (root / "admin.conf").write_text(
        yaml.safe_dump({"users": [{"name": "a", "user": {
            "client-certificate-data": base64.b64encode(admin.cert.read_bytes()).decode(),
            "client-key-data": key_data,
        }}]})
    )  # fmt: skip
    (root / "pki" / "sa.key").write_text("-----BEGIN PRIVATE KEY-----\nsecret\n")
    # A .crt that (wrongly) holds its key too: only the certificate block may come back.
    (root / "pki" / "both.crt").write_bytes(admin.cert.read_bytes() + admin.key.read_bytes())
    return key_data


def test_the_node_side_reader_prints_certificates_only(tmp_path: Path) -> None:
    key_data = kubeadm_dir(tmp_path)
    script = cert_files.read_script(str(tmp_path / "pki"), str(tmp_path))
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True).stdout
    assert "PRIVATE KEY" not in out and key_data[:40] not in out and "secret" not in out
    files = cert_files.parse_output("cp-1", out)
    assert [(f.path.removeprefix(str(tmp_path)), f.subject) for f in files] == [
        ("/pki/both.crt", "CN=kubernetes-admin"),
        ("/pki/ca.crt", "CN=kubernetes"),
        ("/pki/etcd/peer.crt", "CN=etcd-peer"),
        ("/admin.conf (client cert)", "CN=kubernetes-admin"),
    ]


def test_judgement_lists_every_file_and_the_worst_decides() -> None:
    def f(path: str, days: float) -> cert_files.CertFile:
        return cert_files.CertFile("cp-1", path, "CN=x", NOW + days * DAY)

    ok = cert_files.judge_cert_files([f("/a.crt", 300), f("/b.crt", 40)], [], NOW)
    assert ok.status == "pass" and "soonest expiry in 40 days (cp-1: /b.crt)" in ok.evidence
    warn = cert_files.judge_cert_files([f("/a.crt", 300), f("/b.crt", 20)], [], NOW)
    assert warn.status == "warn" and "/b.crt: 20.0 days left" in warn.evidence
    assert "kubeadm certs renew" in warn.fix
    bad = cert_files.judge_cert_files([f("/a.crt", -2), f("/b.crt", 20)], [], NOW)
    assert bad.status == "fail" and "expired 2.0 days ago" in bad.evidence
    assert len(bad.details) == 2
    unread = cert_files.judge_cert_files([f("/a.crt", 300)], ["cp-2: could not read"], NOW)
    assert unread.status == "fail"
    assert cert_files.judge_cert_files([], [], NOW).status == "skip"


def test_tls_reason_is_openssls_words() -> None:
    text = (
        "HTTPSConnectionPool(host='10.0.0.1', port=6443): Max retries exceeded (Caused by "
        "SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate "
        "verify failed: certificate has expired (_ssl.c:1006)')))"
    )
    assert tls_reason(text) == "certificate has expired"
