"""``dimp train --tracker dimp|atom|siamfc --preset smoke|cpu|gpu``: offline training on the synthetic data."""

from __future__ import annotations

import argparse
import json


def run(args: argparse.Namespace) -> int:
    from dimp_core.train import preset, train

    overrides = json.loads(args.set) if args.set else {}
    config = preset(args.tracker, args.preset, seed=args.seed, **overrides)
    out = args.out or f"results/train/{args.tracker}-{args.preset}"
    path = train(config, out, resume=args.resume, device=args.device)
    print(f"wrote {path} (log: {out}/log.jsonl)")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train DiMP, ATOM or SiamFC on the synthetic training split",
                       description="Offline training with a tqdm bar, a JSON-lines log of every loss term, periodic "
                       "validation AUC and safetensors checkpoints. Under torchrun it trains with "
                       "DistributedDataParallel (one process per GPU, or gloo processes on CPU).")
    p.add_argument("--tracker", choices=("dimp", "atom", "siamfc"), default="dimp")
    p.add_argument("--preset", choices=("smoke", "cpu", "gpu"), default="smoke",
                   help="smoke: under a minute (tests); cpu: <= 60 min on 2 cores; gpu: a GPU machine")
    p.add_argument("--out", help="output folder (default results/train/<tracker>-<preset>)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", help="checkpoint.safetensors written by an interrupted run")
    p.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    p.add_argument("--set", help='JSON object of config overrides, e.g. \'{"steps": 100}\'')
    p.set_defaults(func=run)
