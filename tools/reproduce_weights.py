"""Retrain a shipped tracker from the configuration and seed recorded in its weights, and ship the result.

Usage (from the repository root; ``make weights`` runs it for dimp, atom and siamfc)::

    python tools/reproduce_weights.py dimp [--device cuda] [--workers 6] [--no-ship]

Reads the ``config`` in the metadata of ``data/weights/<tracker>.safetensors`` (preset and every change made to
it, e.g. the longer GPU schedule of dimp and atom), keeps it as recorded except for what only concerns the machine
(the pool cache folder, the number of data workers, the time limit, which is dropped so the run does all its
steps), trains into ``results/train/<tracker>-reproduced`` and, unless ``--no-ship``, writes the heads-only file
back with ``tools/ship_weights.py`` (in fp16 if the shipped file is) and copies the log next to it. On the CPU
batches are bit-identical for a seed; a GPU's kernels round differently, so a rerun there matches the recorded
losses closely, not exactly.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MACHINE_ONLY = ("pool_cache", "num_workers", "time_limit_s", "num_threads")


def shipped_metadata(tracker: str) -> dict:
    from dimp_core import checkpoints

    return checkpoints.load_checkpoint_info(ROOT / "data" / "weights" / f"{tracker}.safetensors")


def recorded_config(tracker: str):  # -> TrainConfig
    from dimp_core.train.config import TrainConfig

    meta = shipped_metadata(tracker)
    if "config" not in meta:
        raise ValueError(f"data/weights/{tracker}.safetensors records no training config")
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    config = {k: tuple(v) if isinstance(v, list) else v for k, v in meta["config"].items() if k in fields}
    return TrainConfig(**{k: v for k, v in config.items() if k not in MACHINE_ONLY})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tracker", choices=("dimp", "atom", "siamfc"))
    parser.add_argument("--device", default=None)
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers (same batches for any number)")
    parser.add_argument("--no-ship", action="store_true", help="train only; leave data/weights alone")
    args = parser.parse_args(argv)

    from dimp_core.train import train

    config = recorded_config(args.tracker).replace(pool_cache=str(ROOT / "results" / "pool"),
                                                   num_workers=args.workers)
    out = ROOT / "results" / "train" / f"{args.tracker}-reproduced"
    weights = train(config, out, device=args.device)
    if not args.no_ship:
        half = ["--half"] if shipped_metadata(args.tracker).get("half") else []  # as the shipped file
        subprocess.run([sys.executable, str(ROOT / "tools" / "ship_weights.py"), str(weights), *half], check=True)
        shutil.copy(out / "log.jsonl", ROOT / "data" / "weights" / f"{args.tracker}.log.jsonl")
    return 0


if __name__ == "__main__":
    sys.exit(main())
