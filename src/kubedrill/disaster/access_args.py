"""An etcd cluster's client access as command-line arguments, and back: what undo records of
the data drills carry, so `kubedrill heal` can reach the cluster with no lab or inventory
loaded (the run that wrote the record may be gone)."""

from __future__ import annotations

import argparse
from pathlib import Path

from kubedrill.cluster import EtcdAccess, TLSFiles
from kubedrill.errors import ConfigError


def access_argv(access: EtcdAccess) -> list[str]:
    """`--endpoint name=url` for each member, then the client certificate files if any."""
    argv = [f"--endpoint={name}={url}" for name, url in sorted(access.endpoints.items())]
    if access.tls is not None:
        argv += [
            f"--cacert={access.tls.ca}",
            f"--cert={access.tls.cert}",
            f"--key={access.tls.key}",
        ]
    return argv


def add_access_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--endpoint",
        action="append",
        default=[],
        metavar="NAME=URL",
        help="an etcd member's client URL (repeat for each member)",
    )
    parser.add_argument("--cacert", type=Path, help="CA of the members' server certificates")
    parser.add_argument("--cert", type=Path, help="client certificate")
    parser.add_argument("--key", type=Path, help="client key")


def access_from_args(args: argparse.Namespace) -> EtcdAccess:
    endpoints: dict[str, str] = {}
    for item in args.endpoint:
        name, sep, url = str(item).partition("=")
        if not sep or not name or not url.startswith(("http://", "https://")):
            raise ConfigError(
                f"--endpoint {item!r} is not NAME=URL",
                "give each member as --endpoint etcd-1=https://10.0.0.1:2379",
            )
        endpoints[name] = url
    if not endpoints:
        raise ConfigError("no --endpoint given", "name every member: --endpoint NAME=URL")
    files = (args.cacert, args.cert, args.key)
    if any(files) and not all(files):
        raise ConfigError(
            "--cacert, --cert and --key go together", "give all three, or none for plain HTTP"
        )
    tls = TLSFiles(args.cacert, args.cert, args.key) if all(files) else None
    return EtcdAccess(endpoints, tls)
