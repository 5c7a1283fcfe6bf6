"""``dimp track SOURCE [--box x,y,w,h]``: run one tracker over a video file, an image folder or a camera.

Writes the result file (OTB convention, SPEC section 3: one ``x,y,w,h`` line per frame, ``%.2f``, the first
line the initial box), the same boxes as CSV with the tracker's confidence and flag per frame
(``frame,x,y,w,h,score,flag``; frame 0 is the initial box, flag ``init``, no score) and optionally an
annotated mp4. Without ``--box`` the first box is drawn with the mouse (``cv2.selectROI``) when a display
and an OpenCV build with a GUI are there; otherwise the error says to pass ``--box``. A camera runs until
``--max-frames`` or Ctrl-C; the frames tracked so far are written either way.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

import numpy as np

CSV_HEADER = "frame,x,y,w,h,score,flag"
CSV_FLAGS = ("init", "normal", "uncertain", "hard_negative", "not_found")  # "init", then trackers.FLAGS
NO_BOX = "no --box given, and the first box cannot be drawn with the mouse here ({why}); pass --box x,y,w,h (pixels)"


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


def format_csv_row(frame: int, box: Iterable[float], score: float | None, flag: str) -> str:
    """One CSV line ``frame,x,y,w,h,score,flag``; an unknown score (the first frame) is left empty.

    Example:
        >>> format_csv_row(3, (1, 2, 30, 40), 0.8125, "normal")
        '3,1.00,2.00,30.00,40.00,0.8125,normal\\n'
    """
    known = score is not None and math.isfinite(score)
    return f"{frame},{format_box(box).strip()},{f'{score:.4f}' if known else ''},{flag}\n"


class ResultFiles:
    """The result file (``x,y,w,h`` lines) and the CSV of one run, written a frame at a time."""

    def __init__(self, txt: Path, csv: Path) -> None:
        self.txt, self.csv = Path(txt), Path(csv)
        for path in (self.txt, self.csv):
            path.parent.mkdir(parents=True, exist_ok=True)
        self._txt, self._csv = self.txt.open("w"), self.csv.open("w")
        self._csv.write(CSV_HEADER + "\n")
        self.count = 0

    def write(self, box: Iterable[float], score: float | None, flag: str) -> None:
        """Append frame ``count``'s box (x, y, w, h), confidence and flag."""
        box = [float(v) for v in box]
        self._txt.write(format_box(box))
        self._csv.write(format_csv_row(self.count, box, score, flag))
        self.count += 1

    def close(self) -> None:
        self._txt.close()
        self._csv.close()

    def __enter__(self) -> ResultFiles:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


def has_display() -> bool:
    """Whether a window can be opened at all: a desktop OS, or an X11/Wayland display on Linux."""
    return sys.platform in ("win32", "darwin") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def select_box(frame: np.ndarray) -> tuple[float, float, float, float]:
    """Draw the first box on RGB ``frame`` with the mouse (``cv2.selectROI``: drag, then ENTER or SPACE).

    Raises ValueError saying to pass ``--box`` when there is no display, the OpenCV build has no GUI (the
    headless wheels) or the selection was cancelled.
    """
    import cv2

    if not has_display():
        raise ValueError(NO_BOX.format(why="no display: DISPLAY is not set"))
    window = "dimp track: drag a box around the target, then ENTER or SPACE (c cancels)"
    try:
        x, y, w, h = cv2.selectROI(window, cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), showCrosshair=True)
        cv2.destroyWindow(window)
    except cv2.error as err:
        why = "this OpenCV build cannot open a window, e.g. a headless wheel"
        raise ValueError(NO_BOX.format(why=why)) from err
    if w <= 0 or h <= 0:
        raise ValueError("no box drawn (the selection was cancelled); draw one, or pass --box x,y,w,h")
    return float(x), float(y), float(w), float(h)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from dimp_core.trackers import TRACKERS, build_tracker
    from dimp_core.video import VideoWriter, open_source

    box = parse_box(args.box) if args.box is not None else None
    if args.tracker not in TRACKERS:
        raise ValueError(f"unknown tracker {args.tracker!r}; choose from {', '.join(TRACKERS)}")
    if args.max_frames is not None and args.max_frames < 1:
        raise ValueError(f"--max-frames must be at least 1, got {args.max_frames}")
    with open_source(args.source) as source:
        frames = iter(source)
        first = next(frames)
        if box is None:
            box = select_box(first)
        tracker = build_tracker(args.tracker, device=args.device, weights=args.weights)
        tracker.init(first, box)  # a box outside the frame raises TrackerInputError (a ValueError) here

        out = Path(args.out) if args.out else Path("results") / args.tracker / f"{source.name}.txt"
        csv = Path(args.csv) if args.csv else out.with_suffix(".csv")
        known = [n for n in (source.num_frames, args.max_frames) if n is not None]
        progress = tqdm(total=min(known) if known else None, desc=f"{args.tracker} on {source.name}", unit="frame")
        writer = VideoWriter(args.video, source.fps) if args.video else None
        seconds = 0.0
        with ResultFiles(out, csv) as results, progress:
            results.write(box, None, "init")
            if writer is not None:
                writer.write(first, box, "init")
            progress.update()
            try:
                for frame in frames:
                    if args.max_frames is not None and results.count >= args.max_frames:
                        break
                    start = time.perf_counter()
                    current = tracker.update(frame)
                    seconds += time.perf_counter() - start
                    score, flag = tracker.info.get("score"), tracker.info.get("flag", "normal")
                    results.write(current, score, flag)
                    if writer is not None:
                        writer.write(frame, current, flag, score)
                    progress.update()
            except KeyboardInterrupt:  # how a camera is stopped: keep what was tracked
                pass
            finally:
                if writer is not None:
                    writer.close()
    count = results.count
    speed = f", {(count - 1) / seconds:.1f} fps" if seconds > 0 else ""
    print(f"wrote {out} and {csv} ({count} frames{speed})" + (f" and {args.video}" if args.video else ""))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("track", help="track one target through a video file, an image folder or a camera",
                       description="Initialise a tracker on the first frame and track the target through the rest; "
                       "write one x,y,w,h line per frame (the first line the initial box), a CSV "
                       f"({CSV_HEADER}) and, with --video, an mp4 with the box, flag and score drawn on each frame. "
                       "Without --box, draw the first box with the mouse (needs a display and an OpenCV with GUI).")
    p.add_argument("source", help="video file, folder of images (.jpg/.png/.bmp, natural order) or camera index (0)")
    p.add_argument("--box", default=None,
                   help="first-frame target box x,y,w,h in pixels (0-indexed, top-left); default: draw it")
    p.add_argument("--tracker", default="dimp", help="tracker name (default: %(default)s)")
    p.add_argument("--weights", default=None,
                   help="weights file, or 'random' for an untrained network (default: the shipped weights)")
    p.add_argument("--device", default=None, help="torch device (default: CUDA if available)")
    p.add_argument("--out", default=None, help="result file (default: results/<tracker>/<source name>.txt)")
    p.add_argument("--csv", default=None, help=f"per-frame {CSV_HEADER} file (default: the result file's .csv)")
    p.add_argument("--video", default=None, help="write an annotated mp4 here")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many frames (first included)")
    p.set_defaults(func=run)
