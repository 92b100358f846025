"""`python -m kubedrill.targets.kind.image build [--force]`: the same command as
`kubedrill kind image build`, usable before (or without) the `kubedrill kind` wiring."""

from __future__ import annotations

import argparse
import sys

from kubedrill.errors import KubedrillError
from kubedrill.targets.kind.image.cli import add_image_commands


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m kubedrill.targets.kind.image")
    add_image_commands(parser.add_subparsers(dest="kind_command", required=True))
    args = parser.parse_args(["image", *sys.argv[1:]])
    try:
        code: int = args.func(args)
    except KubedrillError as exc:
        print(f"kubedrill: error: {exc}", file=sys.stderr)
        return exc.exit_code
    return code


if __name__ == "__main__":
    sys.exit(main())
