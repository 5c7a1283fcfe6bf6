"""``dimp profile --tracker dimp --device cpu --frames 50 --json OUT``: per-stage timings of one tracker."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def run(args: argparse.Namespace) -> int:
    import torch

    from dimp_core.profiling.runner import format_profile, profile_tracker

    if args.threads:
        torch.set_num_threads(args.threads)
    params = json.loads(args.set) if args.set else {}
    if args.preset:
        from dimp_core.trackers.dimp import preset_params

        if not args.tracker.startswith("dimp"):
            raise ValueError(f"--preset applies to the DiMP trackers, not {args.tracker!r}")
        params = {**preset_params(args.preset), **params}
    report = profile_tracker(args.tracker, device=args.device, frames=args.frames, sequences=args.sequences,
                             warmup=args.warmup, weights=args.weights, params=params, dataset=args.dataset,
                             clock=args.clock)
    report["preset"] = args.preset or "reference"
    print(format_profile(report))
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=1) + "\n")
        print(f"wrote {out}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("profile", help="per-stage timings of a tracker (JSON)",
                       description="Run a tracker over the first frames of a few benchmark sequences with stage "
                       "timing on (CUDA-synchronised on a GPU) and report, per stage (decode, patch extraction, "
                       "backbone, classification features, scoring, localisation, IoU features and refinement, "
                       "memory update, optimiser), the median and 90th percentile in ms, plus FPS of update(), "
                       "the device, library versions and the tracker's parameters. Warm-up frames are excluded.")
    p.add_argument("--tracker", default="dimp", help="dimp, dimp18, dimp50, atom, siamfc, ... (default: %(default)s)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: CUDA if available)")
    p.add_argument("--frames", type=int, default=50, help="frames per sequence, init included (default: %(default)s)")
    p.add_argument("--sequences", type=int, default=1, help="sequences of the dataset (default: %(default)s)")
    p.add_argument("--warmup", type=int, default=5, help="updates per sequence not timed (default: %(default)s)")
    p.add_argument("--weights", default=None, help="weights file or 'random' (default: the shipped weights)")
    p.add_argument("--preset", default=None, help="DiMP parameter preset: reference or fast")
    p.add_argument("--set", default=None, help='parameter overrides as JSON, e.g. \'{"channels_last": false}\'')
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--dataset", default="synth-test", help="dataset spec as for dimp eval (default: %(default)s)")
    p.add_argument("--clock", choices=("wall", "thread"), default="wall",
                   help="wall clock, or the thread's CPU time (CPU with --threads 1: what an idle core would take, "
                   "on a machine other jobs share) (default: %(default)s)")
    p.add_argument("--json", default=None, help="write the report to this JSON file")
    p.set_defaults(func=run)
