"""``dimp track SOURCE --box x,y,w,h``: run one tracker over a video file, an image folder or a camera.

Writes the result file (OTB convention, SPEC section 3: one ``x,y,w,h`` line per frame, ``%.2f``, the first
line the initial box) and optionally an annotated mp4. A camera runs until ``--max-frames`` or Ctrl-C;
the frames tracked so far are written either way.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterable
from pathlib import Path


def parse_box(text: str) -> tuple[float, float, float, float]:
    """'x,y,w,h' -> four floats; ValueError naming the expected format otherwise."""
    try:
        values = tuple(float(v) for v in text.replace(" ", "").split(","))
    except ValueError:
        values = ()
    if len(values) != 4:
        raise ValueError(f"--box must be x,y,w,h (four numbers separated by commas), got {text!r}")
    return values  # type: ignore[return-value]


def format_box(box: Iterable[float]) -> str:
    """One result-file line: 'x,y,w,h' with two decimals.

    Example:
        >>> format_box((1, 2.5, 30, 40.125))
        '1.00,2.50,30.00,40.12\\n'
    """
    return ",".join(f"{float(v):.2f}" for v in box) + "\n"


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from dimp_core.trackers import TRACKERS, build_tracker
    from dimp_core.video import VideoWriter, open_source

    box = parse_box(args.box)
    if args.tracker not in TRACKERS:
        raise ValueError(f"unknown tracker {args.tracker!r}; choose from {', '.join(TRACKERS)}")
    if args.max_frames is not None and args.max_frames < 1:
        raise ValueError(f"--max-frames must be at least 1, got {args.max_frames}")
    with open_source(args.source) as source:
        tracker = build_tracker(args.tracker, device=args.device, weights=args.weights)
        frames = iter(source)
        first = next(frames)
        tracker.init(first, box)  # a box outside the frame raises TrackerInputError (a ValueError) here

        out = Path(args.out) if args.out else Path("results") / args.tracker / f"{source.name}.txt"
        out.parent.mkdir(parents=True, exist_ok=True)
        known = [n for n in (source.num_frames, args.max_frames) if n is not None]
        progress = tqdm(total=min(known) if known else None, desc=f"{args.tracker} on {source.name}", unit="frame")
        writer = VideoWriter(args.video, source.fps) if args.video else None
        count, seconds = 1, 0.0
        with out.open("w") as result, progress:
            result.write(format_box(box))
            if writer is not None:
                writer.write(first, box, "init")
            progress.update()
            try:
                for frame in frames:
                    if args.max_frames is not None and count >= args.max_frames:
                        break
                    start = time.perf_counter()
                    current = tracker.update(frame)
                    seconds += time.perf_counter() - start
                    result.write(format_box(current))
                    if writer is not None:
                        writer.write(frame, current, tracker.info.get("flag"), tracker.info.get("score"))
                    count += 1
                    progress.update()
            except KeyboardInterrupt:  # how a camera is stopped: keep what was tracked
                pass
            finally:
                if writer is not None:
                    writer.close()
    speed = f", {(count - 1) / seconds:.1f} fps" if seconds > 0 else ""
    print(f"wrote {out} ({count} frames{speed})" + (f" and {args.video}" if args.video else ""))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("track", help="track one target through a video file, an image folder or a camera",
                       description="Initialise a tracker on the first frame with --box and track the target through "
                       "the rest; write one x,y,w,h line per frame (the first line the initial box) and, with "
                       "--video, an mp4 with the box, flag and score drawn on each frame.")
    p.add_argument("source", help="video file, folder of images (.jpg/.png/.bmp, natural order) or camera index (0)")
    p.add_argument("--box", required=True, help="first-frame target box x,y,w,h in pixels (0-indexed, top-left)")
    p.add_argument("--tracker", default="dimp", help="tracker name (default: %(default)s)")
    p.add_argument("--weights", default=None,
                   help="weights file, or 'random' for an untrained network (default: the shipped weights)")
    p.add_argument("--device", default=None, help="torch device (default: CUDA if available)")
    p.add_argument("--out", default=None, help="result file (default: results/<tracker>/<source name>.txt)")
    p.add_argument("--video", default=None, help="write an annotated mp4 here")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many frames (first included)")
    p.set_defaults(func=run)
