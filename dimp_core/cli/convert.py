"""``dimp convert IN OUT.safetensors``: an official pytracking checkpoint to safetensors, no code unpickled."""

from __future__ import annotations

import argparse
import json


def run(args: argparse.Namespace) -> int:
    from dimp_core import checkpoints

    checkpoints.convert(args.src, args.dst)
    info = checkpoints.load_checkpoint_info(args.dst)
    print(f"wrote {args.dst}")
    print(json.dumps(info, indent=2, default=str))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("convert", help="convert a pytracking checkpoint (.pth) to safetensors, without unpickling code",
                       description="Read an official pytracking checkpoint (dimp18.pth, dimp50.pth, atom_default.pth; "
                       "legacy or zip torch format) with a restricted unpickler and write its network weights "
                       "as safetensors with the constructor information as metadata.")
    p.add_argument("src", help="pytracking checkpoint, e.g. dimp18.pth")
    p.add_argument("dst", help="output .safetensors file")
    p.set_defaults(func=run)
