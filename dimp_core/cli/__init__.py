"""The ``dimp`` command line: one module per sub-command, each a thin face over library functions.

Each sub-command module defines ``add_parser(subparsers)``, which registers its parser and sets
``func`` to a function ``(args) -> int``. Errors a user can fix (missing files, bad values) are
``FileNotFoundError`` / ``ValueError`` and are printed as one line with exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from dimp_core.cli import bench, convert, demo, profile, synth, track, train
from dimp_core.cli import eval as eval_

SUBCOMMANDS = (bench, convert, demo, eval_, profile, synth, track, train)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dimp", description="DiMP, ATOM and SiamFC trackers to read and measure.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in SUBCOMMANDS:
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError) as err:
        print(f"dimp {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
