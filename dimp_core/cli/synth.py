"""``dimp synth --split test --out DIR``: write the synthetic benchmark in the OTB layout."""

from __future__ import annotations

import argparse

SPLITS = ("train", "val", "test", "train-kept", "val-heldout")  # dimp_core.data.synthetic.SPLITS (imported lazily)


def run(args: argparse.Namespace) -> int:
    from dimp_core.data import synthetic

    if args.num is not None and args.num < 1:
        raise ValueError(f"--num must be positive, got {args.num}")
    if args.frames is not None and args.frames < 2:
        raise ValueError(f"--frames must be at least 2, got {args.frames}")
    out = args.out or synthetic.benchmark_root(args.split)
    root = synthetic.write_benchmark(out, args.split, num_sequences=args.num, num_frames=args.frames, seed=args.seed,
                                     progress=not args.quiet)
    count = len(synthetic.benchmark_plan(args.split, args.num, args.frames, args.seed))
    print(f"wrote {count} {args.split} sequences to {root}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("synth", help="generate the synthetic tracking benchmark (OTB layout)",
                       description="Generate procedural, seeded tracking sequences in the OTB layout: "
                       "<out>/<seq>/img/0001.jpg, groundtruth_rect.txt (x,y,w,h per frame, unclipped), visible.txt "
                       "(1/0 per frame), plus attributes.json and recipe.json at the root. The same arguments give "
                       "byte-identical files. The default test split is 24 sequences of 100-150 frames at 480x360, "
                       "each of the 12 attributes in at least 3 of them; train and test use disjoint seeds and "
                       "disjoint source photos; val, the split to select settings on, uses the train photos with its "
                       "own random stream.")
    p.add_argument("--split", choices=SPLITS, default="test",
                   help="which split (default: test; val: the split to select settings on; train-kept and "
                   "val-heldout: the held-out-photo experiment)")
    p.add_argument("--out", default=None,
                   help="output folder (default: $DIMP_LAB_DATA/synth-<split>, DIMP_LAB_DATA=~/.cache/dimp-lab)")
    p.add_argument("--num", type=int, default=None, help="number of sequences (default: 24 val/test, 200 train)")
    p.add_argument("--frames", type=int, default=None, help="frames per sequence (default: 100-150, from each seed)")
    p.add_argument("--seed", type=int, default=None,
                   help="seed of the first sequence; the others count up (default: 1000000 test, 0 train and val)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
