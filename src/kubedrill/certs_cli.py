"""`kubedrill certs ...`: renew one of the lab's certificates in place (a drill's rotation
step and the expiry fault's undo run it, so `kubedrill heal` does too).

The fault's steps run this module itself (`python -m kubedrill.certs_cli renew ...`), not the
whole CLI: importing every command takes tens of seconds on a loaded 2-core machine, longer
than a step may take."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Sequence
from pathlib import Path

from kubedrill.errors import ConfigError, KubedrillError
from kubedrill.targets.lab import certs


def cmd_certs_renew(args: argparse.Namespace) -> int:
    state_dir: Path = args.state_dir
    if not (state_dir / "pki").is_dir():
        raise ConfigError(
            f"{state_dir} is not a lab's state dir (no pki/ in it)",
            "pass --state-dir /var/lib/kubedrill/labs/<lab name>",
        )
    if args.valid_for is not None and args.valid_for <= 0:
        raise ConfigError(f"--valid-for {args.valid_for} is not positive", "give seconds > 0")
    cert = certs.lab_cert(state_dir, args.host, args.kind)
    validity = (
        dt.timedelta(seconds=args.valid_for)
        if args.valid_for is not None
        else certs.lab_validity(state_dir)
    )
    new = certs.renew(cert, validity)
    print(
        f"renewed {args.kind} of {args.host}: serial {new.serial_number:x}, "
        f"valid until {new.not_valid_after_utc:%Y-%m-%d %H:%M:%S} UTC ({cert.pair.cert})"
    )
    return 0


def add_certs_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    certs_p = sub.add_parser("certs", help="the lab's certificates: renew one in place")
    certs_sub = certs_p.add_subparsers(dest="certs_command", required=True)
    renew = certs_sub.add_parser(
        "renew",
        help="re-issue one host's certificate from the lab's CA (same names and key, new "
        "serial), replacing the file in one rename",
    )
    renew.add_argument("--state-dir", type=Path, required=True, help="the lab's state dir")
    renew.add_argument("--host", required=True, help="the control-plane host, e.g. control-1")
    renew.add_argument("--kind", required=True, choices=sorted(certs.KINDS))
    renew.add_argument(
        "--valid-for",
        type=float,
        metavar="SECONDS",
        help="validity from now (default: the lab's lab.cert_validity_days)",
    )
    renew.set_defaults(func=cmd_certs_renew)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kubedrill")
    add_certs_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["certs", *(sys.argv[1:] if argv is None else argv)])
    try:
        code: int = args.func(args)
    except KubedrillError as exc:
        print(f"kubedrill: error: {exc}", file=sys.stderr)
        return exc.exit_code
    return code


if __name__ == "__main__":
    sys.exit(main())
