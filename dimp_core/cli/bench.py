"""``dimp bench --frames 60 --out bench.json``: dimp, atom, siamfc, CSRT and KCF on the same real frames, one JSON."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def _names(spec: str, what: str) -> list[str]:
    names = [n.strip() for n in spec.split(",") if n.strip()]
    if not names:
        raise ValueError(f"{what} needs at least one name")
    return names


def run(args: argparse.Namespace) -> int:
    import torch

    from dimp_core.profiling.bench import bench, format_bench, real_clips
    from dimp_core.trackers import TRACKERS

    trackers = _names(args.trackers, "--trackers")
    unknown = [n for n in trackers if n not in TRACKERS]
    if unknown:
        raise ValueError(f"unknown tracker(s) {', '.join(unknown)}; choose from {', '.join(TRACKERS)}")
    sizes = [int(n) for n in _names(args.batched, "--batched")] if args.batched else []
    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be at least 1, got {args.threads}")
        torch.set_num_threads(args.threads)
        import cv2

        cv2.setNumThreads(args.threads)  # CSRT and KCF get the same number of threads as torch
    if args.warmup < 0:
        raise ValueError(f"--warmup must be at least 0, got {args.warmup}")
    clips = real_clips(_names(args.sequences, "--sequences"), args.frames)
    report = bench(trackers, clips, device=args.device, warmup=args.warmup)
    report["arguments"] = {k: v for k, v in vars(args).items() if k not in ("func", "command")}
    if sizes:
        from dimp_core.profiling.batched import batched_network

        report["batched"] = {"what": "the network part of one frame for N targets in one batch, with dimp's "
                             "defaults (an upper bound on batched tracking per target)", "records":
                             batched_network(sizes, clips[0].frames[0], clips[0].boxes[0], device=report["device"],
                                             repeats=args.batched_repeats)}
    print(format_bench(report))
    for r in report.get("batched", {}).get("records", []):
        print(f"batched N={r['n']:3d}: {r['ms_per_step']:.1f} ms a step, {r['fps_per_target']:.1f} FPS per target"
              f"{' (CUDA graph)' if r['cuda_graph'] else ''}")
    out = Path(args.out) if args.out else Path("results") / f"bench-{report['device'].split(':')[0]}-" \
        f"{time.strftime('%Y-%m-%d')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


# the defaults of dimp_core.profiling.bench (TRACKERS, CLIPS), spelt out so that `dimp --help` imports no torch
TRACKERS = ("dimp", "atom", "siamfc", "opencv-csrt", "opencv-kcf")
CLIPS = ("bikes-cyclist", "carphone-face")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="FPS, per-stage ms and memory of every tracker on the same real frames (JSON)",
                       description="Track the same real clips (real-val's video entries, decoded once into memory) "
                       "with each tracker, the order rotating from clip to clip, and write one JSON: FPS of update() "
                       "(warm-up excluded), its ratio to OpenCV CSRT measured in the same run, first-frame ms, "
                       "per-stage ms (backbone, classification features, optimiser steps, scoring, localisation, "
                       "IoU-Net features, refinement, memory update, Python glue), peak memory (resident set; on "
                       "CUDA, torch.cuda.max_memory_allocated), AUC per clip, the device and library versions.")
    p.add_argument("--trackers", default=",".join(TRACKERS), help="comma-separated trackers (default: %(default)s)")
    p.add_argument("--sequences", default=",".join(CLIPS),
                   help="comma-separated real-val video clips (default: %(default)s)")
    p.add_argument("--frames", type=int, default=None, help="first N frames of each clip (default: all)")
    p.add_argument("--warmup", type=int, default=3, help="updates per clip not timed (default: %(default)s)")
    p.add_argument("--device", default=None, help="torch device of the learned trackers (default: CUDA if available)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch and OpenCV threads (default: each library's choice)")
    p.add_argument("--batched", default=None, metavar="N,N,...",
                   help="also time dimp's network step for N targets in one batch, e.g. 1,8,32")
    p.add_argument("--batched-repeats", type=int, default=10, help="timed batched steps per N (default: %(default)s)")
    p.add_argument("--out", default=None, help="JSON path (default: results/bench-<device>-<date>.json)")
    p.set_defaults(func=run)
