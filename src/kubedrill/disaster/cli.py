"""`kubedrill etcd ...`: the data drills' runbooks as commands. Their undo records run them
(`kubedrill heal` after a SIGKILL), and a person can run them by hand."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kubedrill.disaster import lab_restore, member_repair, quota
from kubedrill.disaster.access_args import access_from_args, add_access_arguments
from kubedrill.errors import ConfigError
from kubedrill.probes.etcd import EtcdClient


def cmd_recover_nospace(args: argparse.Namespace) -> int:
    if not str(args.delete_prefix).startswith(quota.OWN_PREFIX):
        raise ConfigError(
            f"--delete-prefix {args.delete_prefix!r} is not under {quota.OWN_PREFIX}",
            "kubedrill deletes only its own keys",
        )
    access = access_from_args(args)
    etcd = EtcdClient(access, timeout=2.0)
    try:
        done = quota.recover(etcd, args.delete_prefix)
        print(done)
        left = quota.nospace_alarms(etcd)
    finally:
        etcd.close()
    if left or "failed:" in done:
        print(
            f"kubedrill: error: etcd is not writable again ({left or done}); run the runbook "
            "by hand: etcdctl compact <revision>, etcdctl defrag --cluster, etcdctl alarm disarm",
            file=sys.stderr,
        )
        return 1
    return 0


def cmd_restore_lab(args: argparse.Namespace) -> int:
    print(lab_restore.recover(args.state_dir, args.run, args.snapshot))
    return 0


def cmd_replace_member(args: argparse.Namespace) -> int:
    try:
        member_repair.repair_lab_member(args.state_dir, args.host, args.old_id, args.aside)
    except member_repair.RepairError as exc:
        exc.hint = f"{exc.hint}; then rerun: kubedrill {' '.join(sys.argv[1:])}".lstrip("; ")
        raise
    return 0


def add_etcd_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    etcd_p = sub.add_parser("etcd", help="etcd runbooks the data drills use (and heal replays)")
    etcd_sub = etcd_p.add_subparsers(dest="etcd_command", required=True)
    nospace = etcd_sub.add_parser(
        "recover-nospace",
        help="if a NOSPACE alarm is raised: compact, defragment every member, disarm; "
        "then delete a drill's keys",
    )
    add_access_arguments(nospace)
    nospace.add_argument(
        "--delete-prefix",
        required=True,
        help="the drill's key prefix to delete afterwards (it must start with /kubedrill/)",
    )
    nospace.set_defaults(func=cmd_recover_nospace)
    restore = etcd_sub.add_parser(
        "restore-lab",
        help="finish a disaster drill's restore: every lab member restored from the snapshot "
        "(unless the drill did), the control plane restarted, the DR directory removed",
    )
    restore.add_argument("--state-dir", type=Path, required=True, help="the lab's state dir")
    restore.add_argument("--run", required=True, help="the drill's DR run id (dr/<run>/)")
    restore.add_argument("--snapshot", type=Path, required=True, help="the snapshot to restore")
    restore.set_defaults(func=cmd_restore_lab)
    replace = etcd_sub.add_parser(
        "replace-member",
        help="bring a lab member whose disk was lost back, from wherever a member replacement "
        "stopped: its own data put back if it was never removed, else remove, add and start it "
        "with --initial-cluster-state=existing; then check it is caught up",
    )
    replace.add_argument("--state-dir", type=Path, required=True, help="the lab's state dir")
    replace.add_argument("--host", required=True, help="the etcd member whose disk was lost")
    replace.add_argument("--old-id", required=True, help="its member ID before (decimal)")
    replace.add_argument(
        "--aside", type=Path, required=True, help="where its data dir was moved (etcd.lost-*)"
    )
    replace.set_defaults(func=cmd_replace_member)
