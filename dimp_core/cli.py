"""The ``dimp`` command line. Each sub-command is a thin face over a library function."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence


def _convert(args: argparse.Namespace) -> int:
    from dimp_core import checkpoints

    checkpoints.convert(args.src, args.dst)
    info = checkpoints.load_checkpoint_info(args.dst)
    print(f"wrote {args.dst}")
    print(json.dumps(info, indent=2, default=str))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dimp", description="DiMP, ATOM and SiamFC trackers to read and measure.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("convert", help="convert a pytracking checkpoint (.pth) to safetensors, without unpickling code",
                       description="Read an official pytracking checkpoint (dimp18.pth, dimp50.pth, atom_default.pth; "
                       "legacy or zip torch format) with a restricted unpickler and write its network weights "
                       "as safetensors with the constructor information as metadata.")
    p.add_argument("src", help="pytracking checkpoint, e.g. dimp18.pth")
    p.add_argument("dst", help="output .safetensors file")
    p.set_defaults(func=_convert)
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
