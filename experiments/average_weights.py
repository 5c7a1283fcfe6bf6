"""Average the weights of several checkpoints of one training chain (a uniform "soup").

Usage (from the repository root)::

    python experiments/average_weights.py results/candidates/dimp-r5.safetensors \\
        results/candidates/dimp-r6.safetensors --out results/candidates/dimp-r5r6.safetensors

    theta = (1 / K) sum_k theta_k            (every floating-point tensor; Izmailov et al. 2018, Wortsman et al. 2022)

Averaging checkpoints along one training trajectory (stochastic weight averaging) or fine-tuned copies of one
start (model soups) tends to land in a flatter region of the loss and to generalise better under a distribution
shift, at no training cost. It only makes sense for files of one chain (same architecture, same start), so the
script refuses files of different architectures or tensor sets. Integer tensors (BatchNorm's
``num_batches_tracked``) come from the last file, as does the metadata, whose ``init_weights_meta`` chain already
records the earlier runs; ``average_of`` names every source file with its SHA-256. BatchNorm running statistics
are averaged like the weights (the heads' BatchNorm layers see the same frozen backbone features in every run).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import Tensor


def average_state_dicts(states: Sequence[Mapping[str, Tensor]]) -> dict[str, Tensor]:
    """Element-wise mean of the floating tensors of ``states`` (float32); other tensors from the last state."""
    if not states:
        raise ValueError("nothing to average: no state dicts given")
    keys = set(states[0])
    for i, state in enumerate(states[1:], start=1):
        if set(state) != keys:
            missing = sorted(keys ^ set(state))
            raise ValueError(f"state dict {i} has other tensors than state dict 0 (e.g. {missing[0]!r}): "
                             "only checkpoints of one network can be averaged")
    out: dict[str, Tensor] = {}
    for key in states[0]:
        tensors = [state[key] for state in states]
        shapes = {tuple(t.shape) for t in tensors}
        if len(shapes) > 1:
            raise ValueError(f"tensor {key!r} has different shapes {sorted(shapes)}: not one network")
        if tensors[-1].is_floating_point():
            out[key] = torch.stack([t.float() for t in tensors]).mean(dim=0)
        else:
            out[key] = tensors[-1].clone()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sources", nargs="+", help="weights files of one training chain, last one last")
    parser.add_argument("--out", required=True, help="the averaged file (fp32 safetensors)")
    args = parser.parse_args(argv)

    from dimp_core import checkpoints

    sources = [Path(s) for s in args.sources]
    if len(sources) < 2:
        parser.error("give at least two files to average")
    metas = [checkpoints.load_checkpoint_info(s) for s in sources]
    archs = {m.get("architecture") for m in metas}
    if len(archs) != 1:
        parser.error(f"the files are of different architectures: {sorted(map(str, archs))}")
    state = average_state_dicts([checkpoints.load_state_dict(s) for s in sources])
    meta = dict(metas[-1])
    meta["average_of"] = [{"file": str(s), "sha256": hashlib.sha256(s.read_bytes()).hexdigest()} for s in sources]
    out = checkpoints.save_safetensors(state, args.out, meta)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB): the mean of {len(sources)} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
