"""`kubedrill kind image build [--force]`: the kind node image, built on this machine.

Registered under `kubedrill kind` by `add_image_commands(kind_subparsers)`.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from kubedrill.targets.kind.image.node import node_image


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cmd_image_build(args: argparse.Namespace) -> int:
    # The machine is shared: the whole build (Go compiles included) yields to other work.
    os.nice(10)
    tag = node_image(_progress, force=args.force)
    print(tag)
    return 0


def add_image_commands(kind_subparsers: Any) -> None:
    """Register `image build` on the `kubedrill kind` command's subparsers."""
    image_p = kind_subparsers.add_parser(
        "image", help="the kind node image built on this machine (no registry needed)"
    )
    image_sub = image_p.add_subparsers(dest="image_command", required=True)
    build_p = image_sub.add_parser(
        "build",
        help="build localhost/kubedrill/node:<k8s version>-<inputs hash> if its inputs changed",
    )
    build_p.add_argument(
        "--force", action="store_true", help="rebuild the image even if podman has it"
    )
    build_p.set_defaults(func=cmd_image_build)
