"""The `kubedrill` command: the lab's life cycle, the readiness audit, the ledger, and binary
builds."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from kubedrill import __version__
from kubedrill.advise.cli import add_advise_command
from kubedrill.audit.cli import add_audit_command
from kubedrill.bench_cli import add_bench_command
from kubedrill.certs_cli import add_certs_commands
from kubedrill.consistency.lincheck_build import ensure_lincheck
from kubedrill.disaster.cli import add_etcd_commands
from kubedrill.errors import ConfigError, KubedrillError
from kubedrill.faults.runner import install_sigterm_handler
from kubedrill.ledger import Ledger
from kubedrill.report import html as html_report
from kubedrill.report import scorecard
from kubedrill.targets.kind.cli import add_kind_commands
from kubedrill.targets.lab import lab
from kubedrill.targets.lab.config import TOPOLOGIES, load_lab_config
from kubedrill.targets.ssh.check import check, render
from kubedrill.targets.ssh.inventory import load_inventory
from kubedrill.targets.ssh.lab_hosts import start_sshd


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cmd_lab_up(args: argparse.Namespace) -> int:
    config = load_lab_config(
        args.config,
        name=args.name,
        topology=args.topology,
        members=args.members,
        subnet=args.subnet,
        bin_dir=args.bin_dir,
    )
    cluster = lab.up(config, progress=_progress)
    print(
        f"lab {config.name!r} is up ({config.topology}): {len(cluster.etcd.endpoints)} etcd "
        f"members, hosts {', '.join(n.name for n in cluster.nodes)}"
    )
    for name, url in sorted(cluster.etcd.endpoints.items()):
        print(f"  {name:10s} {url}")
    if cluster.kube is not None:
        print(f"kubeconfig: {cluster.kube.kubeconfig}   (server {cluster.kube.server})")
    print(f"state: {config.state_dir}")
    return 0


def cmd_lab_down(args: argparse.Namespace) -> int:
    config = load_lab_config(args.config, name=args.name)
    removed = lab.down(config, progress=_progress)
    print(f"lab {config.name!r} is down ({len(removed)} things removed)")
    return 0


def cmd_lab_status(args: argparse.Namespace) -> int:
    config = load_lab_config(args.config, name=args.name)
    report = lab.status(config)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(lab.render_status(report))
    return 0 if report.get("up") else 1


def cmd_lab_logs(args: argparse.Namespace) -> int:
    config = load_lab_config(args.config, name=args.name)
    print(lab.logs(config, host=args.host, component=args.component, lines=args.lines))
    return 0


def cmd_lab_inventory(args: argparse.Namespace) -> int:
    config = load_lab_config(args.config, name=args.name)
    inventory = start_sshd(config)
    print(f"sshd runs on every host of lab {config.name!r}; inventory: {inventory}")
    print(
        f"try: pytest drills/ -m etcd --target ssh --inventory {inventory} "
        f"--allow-target ssh/{config.name}"
    )
    return 0


def cmd_ssh_check(args: argparse.Namespace) -> int:
    inventory = load_inventory(args.inventory, accept_new_host_keys=args.accept_new_host_keys)
    rows = check(inventory)
    print(render(rows))
    missing = [r for r in rows if not r.ok]
    if missing:
        print(
            f"kubedrill: {len(missing)} component(s) not found on their hosts; drills that "
            "fault them will refuse (set the host's manager, or fix its roles)",
            file=sys.stderr,
        )
        return 1
    print(f"{inventory.cluster_name}: every host reachable, host keys verified")
    return 0


def cmd_heal(args: argparse.Namespace) -> int:
    from kubedrill.targets.kind.cluster import sweep_orphan_secrets  # noqa: PLC0415

    for directory in sweep_orphan_secrets():
        print(f"removed {directory}: client keys of a kind run that died")
    ledger = Ledger()
    if not ledger.outstanding():
        print("nothing to heal: no outstanding undo records")
        return 0
    failed = 0
    for report in ledger.heal_all(log=lambda m: _progress(f"  undo {m}")):
        if report.ok:
            print(f"healed {report.record.id}: {report.record.description}")
        else:
            failed += 1
            print(f"FAILED {report.record.id}: {'; '.join(report.failures)}")
    # Records of a run that is still alive are that run's to heal (it heals on its way out).
    for rec in ledger.outstanding():
        print(f"left alone {rec.id}: owned by running process {rec.owner_pid} ({rec.description})")
        failed += 1
    return 1 if failed else 0


def cmd_ledger(args: argparse.Namespace) -> int:
    records = Ledger().outstanding()
    for rec in records:
        print(f"{rec.id}  pid {rec.owner_pid}  {rec.cluster}  {rec.description}")
        for step in rec.undo:
            print(f"    undo: {step.render()}")
    if not records:
        print("no outstanding undo records")
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    config = load_lab_config(args.config, topology=args.topology)
    if not args.lincheck_only:
        for name, path in sorted(lab.binaries(config, _progress).items()):
            print(f"{name:24s} {path}")
    print(f"{'lincheck':24s} {ensure_lincheck(config.cache_dir, _progress)}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    if not args.install_only:
        html_report.check_results(args.results)  # before installing anything
    cli = html_report.install_allure(progress=_progress)
    if args.install_only:
        print(f"allure {html_report.ALLURE_VERSION}: {cli}")
        return 0
    if not args.summary.exists():  # before the long Allure step
        raise ConfigError(
            f"no run summary at {args.summary}",
            "run the drills first (make gameday), or give --summary",
        )
    # The scorecard is the page the report opens on; Allure's report with every detail sits
    # beside it, linked from it.
    files = html_report.ReportFiles(args.results, args.output / "allure", args.history)
    allure_index = html_report.generate(files, name=args.name, progress=_progress)
    index = scorecard.write(args.summary, args.output, args.scorecard_history, title=args.name)
    print(f"report: {index}  (scorecard; details: {allure_index}; history: {files.history})")
    return 0


def add_report_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    report_p = sub.add_parser(
        "report", help="single-file HTML report (Allure 3 awesome) from the Allure results"
    )
    defaults = html_report.ReportFiles()
    report_p.add_argument(
        "--results",
        type=Path,
        default=defaults.results,
        help=f"Allure results directory (default {defaults.results})",
    )
    report_p.add_argument(
        "--output",
        type=Path,
        default=defaults.output,
        help=f"where index.html (the scorecard) and allure/index.html go (default "
        f"{defaults.output})",
    )
    report_p.add_argument(
        "--history",
        type=Path,
        default=defaults.history,
        help=f"trend history, JSON lines (default {defaults.history})",
    )
    report_p.add_argument(
        "--summary",
        type=Path,
        default=Path("reports/summary.json"),
        help="the run's summary.json, for the scorecard (default reports/summary.json)",
    )
    report_p.add_argument(
        "--scorecard-history",
        type=Path,
        default=Path("reports/scorecard-history.jsonl"),
        help="earlier runs' figures, for the scorecard's trend (default "
        "reports/scorecard-history.jsonl; this run is appended)",
    )
    report_p.add_argument("--name", default=html_report.REPORT_NAME, help="report title")
    report_p.add_argument(
        "--install-only",
        action="store_true",
        help=f"install the pinned allure {html_report.ALLURE_VERSION} and stop",
    )
    report_p.set_defaults(func=cmd_report)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubedrill",
        description="Failure drills for Kubernetes HA control planes. Drills run with pytest "
        "(pytest drills/ -m etcd); this command manages the lab, audits a cluster's readiness "
        "(kubedrill audit) and repairs faults.",
    )
    parser.add_argument("--version", action="version", version=f"kubedrill {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    lab_p = sub.add_parser("lab", help="the local lab: a real cluster in network namespaces")
    lab_sub = lab_p.add_subparsers(dest="lab_command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, help="lab config YAML (a top-level `lab:` key)")
    common.add_argument("--name", help="lab name (default: lab)")
    up_p = lab_sub.add_parser("up", parents=[common], help="build binaries, bring the lab up")
    up_p.add_argument(
        "--topology",
        choices=TOPOLOGIES,
        help="etcd (default): etcd only; stacked: the seed's 3-node HA control "
        "plane behind HAProxy; external: etcd on hosts of its own; regions: stacked with "
        "one control plane per region (the WAN drills put the distance between them)",
    )
    up_p.add_argument("--members", type=int, help="etcd members: 1, 3, 5 or 7 (default 3)")
    up_p.add_argument("--subnet", help="IPv4 subnet for the lab hosts (default 10.213.7.0/24)")
    up_p.add_argument("--bin-dir", type=Path, help="use prebuilt binaries from this directory")
    up_p.set_defaults(func=cmd_lab_up)
    down_p = lab_sub.add_parser(
        "down",
        parents=[common],
        help="remove every trace of the lab at once (refused while a drill runs against it)",
    )
    down_p.set_defaults(func=cmd_lab_down)
    st_p = lab_sub.add_parser("status", parents=[common], help="hosts, processes, etcd leader")
    st_p.add_argument("--json", action="store_true", help="machine-readable output")
    st_p.set_defaults(func=cmd_lab_status)
    logs_p = lab_sub.add_parser("logs", parents=[common], help="component logs")
    logs_p.add_argument("host", nargs="?", help="one host (default: all)")
    logs_p.add_argument("--component", default="etcd")
    logs_p.add_argument("-n", "--lines", type=int, default=50)
    logs_p.set_defaults(func=cmd_lab_logs)

    inv_p = lab_sub.add_parser(
        "inventory",
        parents=[common],
        help="start sshd on every lab host and write an SSH inventory for --target ssh",
    )
    inv_p.set_defaults(func=cmd_lab_inventory)

    ssh_p = sub.add_parser("ssh", help="the SSH target: your own cluster's nodes over SSH")
    ssh_sub = ssh_p.add_subparsers(dest="ssh_command", required=True)
    check_p = ssh_sub.add_parser(
        "check", help="log in to every host, verify host keys, show how components run"
    )
    check_p.add_argument("--inventory", type=Path, required=True, help="SSH inventory YAML")
    check_p.add_argument(
        "--accept-new-host-keys",
        action="store_true",
        help="record unknown host keys in known_hosts (a changed key is still refused)",
    )
    check_p.set_defaults(func=cmd_ssh_check)

    for add_commands in (
        add_audit_command,
        add_kind_commands,
        add_etcd_commands,
        add_certs_commands,
        add_advise_command,
    ):
        add_commands(sub)
    add_bench_command(sub)
    sub.add_parser(
        "heal", help="replay outstanding undo records (after a crash/SIGKILL)"
    ).set_defaults(func=cmd_heal)
    sub.add_parser("ledger", help="list outstanding undo records").set_defaults(func=cmd_ledger)
    build_p = sub.add_parser(
        "build", help="build and cache the pinned upstream binaries and the lincheck helper"
    )
    build_p.add_argument("--config", type=Path)
    build_p.add_argument(
        "--topology",
        choices=TOPOLOGIES,
        help="etcd builds etcd only; stacked/external add Kubernetes and kwok",
    )
    build_p.add_argument(
        "--lincheck-only",
        action="store_true",
        help="build only the linearizability checker (for the kind and SSH targets, which "
        "need no lab binaries)",
    )
    build_p.set_defaults(func=cmd_build)
    add_report_command(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    install_sigterm_handler()
    try:
        code: int = args.func(args)
    except KubedrillError as exc:
        print(f"kubedrill: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("kubedrill: interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
