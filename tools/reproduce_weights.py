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

A warm-started file (``init_weights``, e.g. round 3 in docs/training.md) records the metadata of the file it
started from; that file is reproduced first, the same way (and as it was shipped: heads only, fp16 if it was),
into ``results/train/<tracker>-reproduced-parent``, and the run then starts from it.
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


def recorded_config(tracker: str, meta: dict | None = None):  # -> TrainConfig
    """The training configuration recorded in ``meta`` (default: the shipped file's), without machine settings."""
    from dimp_core.train.config import TrainConfig

    meta = shipped_metadata(tracker) if meta is None else meta
    if "config" not in meta:
        raise ValueError(f"data/weights/{tracker}.safetensors records no training config")
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    config = {k: tuple(v) if isinstance(v, list) else v for k, v in meta["config"].items() if k in fields}
    return TrainConfig(**{k: v for k, v in config.items() if k not in MACHINE_ONLY})


def ship(weights: Path, half: bool, out: Path | None = None) -> None:
    """``tools/ship_weights.py``: the heads-only file of a run (to data/weights unless ``out``)."""
    extra = (["--half"] if half else []) + (["--out", str(out)] if out is not None else [])
    subprocess.run([sys.executable, str(ROOT / "tools" / "ship_weights.py"), str(weights), *extra], check=True)


def reproduce(tracker: str, meta: dict, out: Path, device: str | None, workers: int) -> Path:
    """Train the run ``meta`` records into ``out``; a warm start first reproduces the file it started from."""
    from dimp_core.train import train

    config = recorded_config(tracker, meta).replace(pool_cache=str(ROOT / "results" / "pool"), num_workers=workers)
    if "init_weights_meta" in meta:
        parent = meta["init_weights_meta"]
        parent_run = reproduce(tracker, parent, out.with_name(out.name + "-parent"), device, workers)
        start = out.with_name(out.name + "-parent") / "shipped.safetensors"
        ship(parent_run, bool(parent.get("half")), start)  # the warm start began from the shipped form
        config = config.replace(init_weights=str(start))
    return train(config, out, device=device)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tracker", choices=("dimp", "atom", "siamfc"))
    parser.add_argument("--device", default=None)
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers (same batches for any number)")
    parser.add_argument("--no-ship", action="store_true", help="train only; leave data/weights alone")
    args = parser.parse_args(argv)

    meta = shipped_metadata(args.tracker)
    out = ROOT / "results" / "train" / f"{args.tracker}-reproduced"
    weights = reproduce(args.tracker, meta, out, args.device, args.workers)
    if not args.no_ship:
        ship(weights, bool(meta.get("half")))  # in fp16 if the shipped file is
        shutil.copy(out / "log.jsonl", ROOT / "data" / "weights" / f"{args.tracker}.log.jsonl")
    return 0


if __name__ == "__main__":
    sys.exit(main())
