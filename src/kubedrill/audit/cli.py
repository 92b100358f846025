"""`kubedrill audit`: wiring only. Bad input (a missing backup file, an unwritable output, a
target option that does not fit) is one line and exit 2 before anything is read from the
cluster; the audit's own verdict is exit 0 (no item failed; warnings allowed) or 1."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from pathlib import Path

from kubedrill.audit import cert_files
from kubedrill.audit.finding import exit_code
from kubedrill.audit.output import render, to_json, write_allure, write_json
from kubedrill.audit.run import AuditOptions, run_audit
from kubedrill.errors import ConfigError
from kubedrill.targets.select import TARGETS, TargetOptions, open_target


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def check_inputs(args: argparse.Namespace) -> None:
    """Everything the user gave, checked before the target is opened."""
    backup: Path | None = args.backup
    if backup is not None:
        if not backup.exists():
            raise ConfigError(
                f"--backup {backup}: no such file", "give the path of an etcd snapshot file"
            )
        if not backup.is_file():
            raise ConfigError(
                f"--backup {backup} is not a file", "give the path of an etcd snapshot file"
            )
        if not os.access(backup, os.R_OK):
            raise ConfigError(f"--backup {backup}: not readable", "check its permissions")
    if args.json is not None:
        parent = args.json.parent
        if args.json.is_dir() or not parent.is_dir() or not os.access(parent, os.W_OK):
            raise ConfigError(
                f"--json {args.json}: cannot write a file there",
                "give a file path in an existing, writable directory",
            )
    if args.alluredir is not None and args.alluredir.exists() and not args.alluredir.is_dir():
        raise ConfigError(
            f"--alluredir {args.alluredir} is a file", "give a directory (it is created if missing)"
        )


def cmd_audit(args: argparse.Namespace) -> int:
    options = TargetOptions(
        target=args.target,
        lab_config=args.config,
        inventory=args.inventory,
        accept_new_host_keys=args.accept_new_host_keys,
        kind_cluster=args.kind_cluster,
        docker_host=args.docker_host,
        needs_running_lab="kubedrill audit",
    ).validate()
    check_inputs(args)
    started = dt.datetime.now(dt.UTC)
    started_ms = int(time.time() * 1000)
    with open_target(options, progress=_progress) as cluster:
        findings = run_audit(
            cluster,
            AuditOptions(
                backup=args.backup, pki_dir=args.pki_dir, kubeconfig_dir=args.kubeconfig_dir
            ),
            progress=_progress,
        )
        facts = cluster.facts.to_dict()
        name = cluster.name
    print(render(findings, name, details=args.details))
    if args.json is not None:
        write_json(args.json, to_json(findings, name, facts, started))
        print(f"json: {args.json}")
    if args.alluredir is not None:
        write_allure(findings, args.alluredir, cluster=name, facts=facts, started_ms=started_ms)
        print(f"allure results: {args.alluredir}")
    return exit_code(findings)


def add_audit_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "audit",
        help="read-only readiness audit against the seed's production checklist (exit 0: no "
        "item failed, 1: an item failed, 2: bad input)",
        description="Audit a running cluster against the seed's production checklist before a "
        "game day: control-plane nodes and zones, odd etcd member count, etcd flags, LB health "
        "checks, served certificates, a backup that restores, alert rules, leader election, "
        "clock sync. Injects nothing, writes nothing to the cluster.",
    )
    p.add_argument("--target", choices=TARGETS, default="lab", help="lab (default), kind or ssh")
    p.add_argument("--config", type=Path, help="lab config YAML (--target lab; the lab must run)")
    p.add_argument("--kind-cluster", default="kind", help="kind cluster name (--target kind)")
    p.add_argument("--docker-host", help="Docker API of the kind nodes (default: DOCKER_HOST)")
    p.add_argument("--inventory", type=Path, help="SSH inventory YAML (--target ssh)")
    p.add_argument(
        "--accept-new-host-keys",
        action="store_true",
        help="--target ssh: record unknown host keys (a changed key is still refused)",
    )
    p.add_argument(
        "--backup",
        type=Path,
        help="an etcd snapshot file: its age, etcdutl snapshot status and a restore into a "
        "scratch member on this machine (without it the backup item warns)",
    )
    p.add_argument(
        "--pki-dir",
        default=cert_files.PKI_DIR,
        help=f"where the nodes keep their certificates (default {cert_files.PKI_DIR}): every "
        "*.crt under it is read",
    )
    p.add_argument(
        "--kubeconfig-dir",
        default=cert_files.KUBECONFIG_DIR,
        help=f"where the nodes keep their kubeconfigs (default {cert_files.KUBECONFIG_DIR}): "
        "the client cert embedded in each *.conf is read (never the key)",
    )
    p.add_argument("--json", type=Path, help="write the findings as JSON to this file")
    p.add_argument("--alluredir", type=Path, help="write Allure results (one test per item)")
    p.add_argument("--details", action="store_true", help="show every item's evidence lines")
    p.set_defaults(func=cmd_audit)
