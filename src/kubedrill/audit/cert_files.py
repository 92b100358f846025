"""Certificate files on every control-plane and etcd node, read over the node's own transport
(SSH, docker exec): kubeadm's /etc/kubernetes/pki (every *.crt, etcd/ included) and the client
certs embedded in its kubeconfigs (admin.conf, controller-manager.conf, scheduler.conf,
kubelet.conf, ...). What the handshakes of `certs.py` cannot see: client certs, a CA, a
front-proxy cert, a renewed file not yet loaded.

Read only, and no key leaves the node: a filter on the node prints only CERTIFICATE PEM blocks
and the kubeconfigs' `client-certificate-data` lines (never `client-key-data`). Judged with the
same thresholds as the served certs (expired or <= 7 days fails, <= 30 days warns).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import shlex
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from cryptography import x509

from kubedrill.audit.certs import FAIL_DAYS, WARN_DAYS
from kubedrill.audit.finding import Judgement, worst
from kubedrill.cluster import Cluster, Node

PKI_DIR = "/etc/kubernetes/pki"
KUBECONFIG_DIR = "/etc/kubernetes"
FILE_MARK = "@@file "
KUBECONFIG_MARK = "@@kubeconfig "


def read_script(pki_dir: str = PKI_DIR, kubeconfig_dir: str = KUBECONFIG_DIR) -> str:
    """The shell run on a node: each cert file's name then its CERTIFICATE blocks only; each
    kubeconfig's name and embedded client cert on one line."""
    pki, kc = shlex.quote(pki_dir), shlex.quote(kubeconfig_dir)
    return (
        f"find {pki} -name '*.crt' -type f 2>/dev/null | sort | while read -r f; do "
        f'echo "{FILE_MARK}$f"; '
        "sed -n '/-----BEGIN CERTIFICATE-----/,/-----END CERTIFICATE-----/p' \"$f\"; done; "
        f'for f in {kc}/*.conf; do [ -f "$f" ] || continue; '
        "sed -n 's|^[[:space:]]*client-certificate-data:[[:space:]]*|"
        f'{KUBECONFIG_MARK}\'"$f"\' |p\' "$f"; done; true'
    )


@dataclass(frozen=True)
class CertFile:
    node: str
    path: str  # a file, or "<kubeconfig> (client cert)"
    subject: str = ""
    not_after: dt.datetime | None = None
    error: str = ""


def _first_cert(pem: bytes) -> x509.Certificate:
    """The leaf: the first certificate of the file (a bundle's others are its issuers)."""
    return x509.load_pem_x509_certificates(pem)[0]


def parse_output(node: str, text: str) -> list[CertFile]:
    """What `read_script` printed on `node`, as one CertFile per file or kubeconfig."""
    found: list[CertFile] = []
    path, pem = "", ""

    def flush() -> None:
        if not path:
            return
        try:
            cert = _first_cert(pem.encode())
        except ValueError as exc:
            found.append(CertFile(node, path, error=f"no certificate read: {exc}"[:120]))
            return
        found.append(CertFile(node, path, cert.subject.rfc4514_string(), cert.not_valid_after_utc))

    for line in text.splitlines():
        if line.startswith(FILE_MARK):
            flush()
            path, pem = line[len(FILE_MARK) :], ""
        elif line.startswith(KUBECONFIG_MARK):
            flush()
            path, pem = "", ""
            name, _, data = line[len(KUBECONFIG_MARK) :].partition(" ")
            where = f"{name} (client cert)"
            try:
                cert = _first_cert(base64.b64decode(data.strip(), validate=True))
            except (ValueError, binascii.Error) as exc:
                found.append(CertFile(node, where, error=f"no certificate read: {exc}"[:120]))
                continue
            found.append(
                CertFile(node, where, cert.subject.rfc4514_string(), cert.not_valid_after_utc)
            )
        elif path:
            pem += line + "\n"
    flush()
    return found


def judge_cert_files(
    files: Sequence[CertFile], unread: Sequence[str], now: dt.datetime
) -> Judgement:
    """Every file with its days left; the worst decides. `unread`: nodes that could not be
    read (why), each a fail: a node whose certs are unknown is not shown to be fine."""
    if not files and not unread:
        return Judgement(
            "skip",
            f"no certificate file under {PKI_DIR} or kubeconfig in {KUBECONFIG_DIR} on any node",
            "",
        )
    lines: list[tuple[str, str]] = [("fail", f"{why}") for why in unread]
    for f in sorted(files, key=lambda f: (f.node, f.path)):
        where = f"{f.node}: {f.path}"
        if f.not_after is None:
            lines.append(("fail", f"{where}: {f.error}"))
            continue
        days = (f.not_after - now).total_seconds() / 86400
        status = "fail" if days <= FAIL_DAYS else "warn" if days <= WARN_DAYS else "pass"
        when = f"expired {-days:.1f} days ago" if days < 0 else f"{days:.1f} days left"
        lines.append((status, f"{where}: {when} ({f.not_after:%Y-%m-%d}, {f.subject})"))
    status = worst(s for s, _ in lines)  # type: ignore[misc]
    details = tuple(f"{s.upper():4s} {line}" for s, line in lines)
    dated = [f for f in files if f.not_after is not None]
    if status == "pass":
        soonest = min(dated, key=lambda f: f.not_after or now)
        assert soonest.not_after is not None
        days = (soonest.not_after - now).total_seconds() / 86400
        evidence = (
            f"{len(files)} certificates on {len({f.node for f in files})} nodes; soonest "
            f"expiry in {days:.0f} days ({soonest.node}: {soonest.path})"
        )
        return Judgement("pass", evidence, "", details)
    bad = [line for s, line in lines if s == status]
    evidence = f"{len(bad)} of {len(lines)}: {bad[0]}"
    fix = (
        f"renew them now (`kubeadm certs renew all` on each control-plane node, then restart "
        f"its static pods one node at a time) and before {WARN_DAYS} days are left"
    )
    return Judgement(status, evidence, fix, details)


def read_cert_files(
    cluster: Cluster, pki_dir: str = PKI_DIR, kubeconfig_dir: str = KUBECONFIG_DIR
) -> tuple[list[CertFile], list[str]]:
    """Every control-plane and etcd node's cert files, read through its transport; and the
    nodes that could not be read, with why."""
    nodes = [n for n in cluster.nodes if {"control-plane", "etcd"} & set(n.roles)]
    script = read_script(pki_dir, kubeconfig_dir)

    def one(node: Node) -> tuple[list[CertFile], str | None]:
        result = cluster.transport(node).run(["sh", "-c", script], timeout=30)
        if not result.ok:
            return (
                [],
                f"{node.name}: could not read (exit {result.exit_code}: {result.stderr[:120]})",
            )
        return parse_output(node.name, result.stdout), None

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(one, nodes))
    files = [f for found, _ in results for f in found]
    return files, [why for _, why in results if why is not None]
