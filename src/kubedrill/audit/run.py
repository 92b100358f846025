"""The audit's items in the seed checklist's order, each run on its own: an item that raises
is a fail naming the error (never a pass), and the others still run."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kubedrill.audit import cert_files, gather
from kubedrill.audit.alert_rules import check_alert_rules
from kubedrill.audit.backup_check import check_backup
from kubedrill.audit.finding import Finding, Judgement
from kubedrill.checks.alerts import DEFAULT_RULES
from kubedrill.cluster import Cluster

Progress = Callable[[str], None]


@dataclass(frozen=True)
class AuditOptions:
    backup: Path | None = None
    rules: Path = DEFAULT_RULES
    pki_dir: str = cert_files.PKI_DIR  # on the nodes
    kubeconfig_dir: str = cert_files.KUBECONFIG_DIR


@dataclass(frozen=True)
class Item:
    id: str
    title: str
    check: Callable[[Cluster, AuditOptions], Judgement]


def check_cert_files(cluster: Cluster, options: AuditOptions) -> Judgement:
    files, unread = cert_files.read_cert_files(cluster, options.pki_dir, options.kubeconfig_dir)
    return cert_files.judge_cert_files(files, unread, dt.datetime.now(dt.UTC))


ITEMS: tuple[Item, ...] = (
    Item(
        "control-planes", ">= 3 control-plane nodes", lambda c, _o: gather.check_control_planes(c)
    ),
    Item(
        "failure-domains", "control planes in distinct zones", lambda c, _o: gather.check_zones(c)
    ),
    Item("etcd-members", "odd etcd member count", lambda c, _o: gather.check_members(c)),
    Item("etcd-flags", "etcd flags the seed recommends", lambda c, _o: gather.check_etcd_flags(c)),
    Item("lb-health-checks", "LB checks /readyz, sane timing", lambda c, _o: gather.check_lb(c)),
    Item("certificates", "served certs valid > 30 days", lambda c, _o: gather.check_certs(c)),
    Item("cert-files", "cert files on the nodes > 30 days", check_cert_files),
    Item("etcd-backup", "a recent backup that restores", lambda c, o: check_backup(c, o.backup)),
    Item("alert-rules", "kubedrill's alert rules load", lambda _c, o: check_alert_rules(o.rules)),
    Item(
        "leader-election",
        "leader election on (KCM, scheduler)",
        lambda c, _o: gather.check_leader_election(c),
    ),
    Item("clock-sync", "node clocks agree with the runner", lambda c, _o: gather.check_clock(c)),
)


def run_item(item: Item, cluster: Cluster, options: AuditOptions) -> Finding:
    started = time.monotonic()
    try:
        found = item.check(cluster, options)
    except Exception as exc:  # an item that broke proves nothing: it fails, with the error
        first = (str(exc).splitlines() or [""])[0][:300]
        found = Judgement(
            "fail",
            f"the check itself failed: {type(exc).__name__}: {first}",
            "fix what the error names and audit again",
        )
    return Finding(
        item.id,
        item.title,
        found.status,
        found.evidence,
        found.fix,
        found.details,
        time.monotonic() - started,
    )


def run_audit(
    cluster: Cluster, options: AuditOptions, progress: Progress = lambda _m: None
) -> list[Finding]:
    findings = []
    for item in ITEMS:
        progress(f"audit: {item.id}")
        findings.append(run_item(item, cluster, options))
    return findings
