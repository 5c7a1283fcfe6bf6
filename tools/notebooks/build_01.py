"""Write notebooks/01_quickstart.ipynb (no outputs). Run: .venv/bin/python tools/notebooks/build_01.py"""

from __future__ import annotations

from nbbuild import code, md, write

CELLS = [
    md("""
# 01 Quickstart: track a sequence with DiMP

DiMP learns a small convolution filter **f** for the target on the first frame and slides it over every later
frame: the peak of the score map **s = x \\* f** is where the target is. In this notebook we run the shipped
DiMP tracker over a synthetic sequence, look at its boxes, its score maps and its confidence over time, and
then set up the same tracker on a video of your own with a box you place yourself.
"""),
    code("""
preset = "fast"  # "fast" (tests, make report: the first 40 frames) | "full" (the whole sequence, 100-150 frames)
record_path = "records/01_quickstart.json"
figures_dir = "../figures"
video_path = None  # your own video file or folder of images; None uses the synthetic sequence's frames
""", tags=["parameters"]),
    code("""
%matplotlib inline
import json
from collections import Counter
from itertools import islice
from pathlib import Path

import numpy as np
import torch

from dimp_core.data.synthetic import make_sequence
from dimp_core.trackers import build_tracker
from dimp_core.viz import frames as vf
from dimp_core.viz.figures import savefig
from dimp_core.widgets import BoxDrawer

PRESETS = {"fast": {"num_frames": 40, "own_frames": 10}, "full": {"num_frames": None, "own_frames": 100}}
if preset not in PRESETS:
    raise ValueError(f"preset must be one of {list(PRESETS)}, got {preset!r}")
P = PRESETS[preset]
torch.set_num_threads(1)  # the networks are small: one thread is as fast, and much faster on a shared CPU
Path(record_path).parent.mkdir(parents=True, exist_ok=True)
record = {"preset": preset}
"""),
    md("""
## 1. A sequence

The synthetic benchmark (`dimp_core.data.synthetic`) renders real photos with a moving target, look-alike
distractors and a moving camera, and knows the exact ground-truth box `(x, y, w, h)` of every frame. One seed
fixes every pixel.
"""),
    code("""
seq = make_sequence(1, "test", attributes=("distractors", "camera_motion"), num_frames=P["num_frames"])
print(f"{seq.name}: {len(seq)} frames of {seq.frames[0].shape[1]} x {seq.frames[0].shape[0]} pixels, "
      f"attributes {seq.attributes}, first box {np.round(seq.boxes[0], 1)}")
"""),
    md("""
## 2. The tracker

Every tracker in `dimp_core` follows the got10k protocol: `init(frame, box)` on the first frame, then
`update(frame) -> box` on each later one, with `tracker.info` holding the score map, its maximum (the
confidence) and a flag (`normal`, `uncertain`, `hard_negative`, `not_found`).

On the first frame DiMP's **model predictor** learns the filter f from 15 augmented samples by minimising
$L(f) = \\frac{1}{|S|}\\sum_j \\|r(x_j * f, c_j)\\|^2 + \\lambda \\|f\\|^2$ (notebook 02 takes it apart).
On every later frame it computes $s = x * f$ on a search patch of 5 target sizes, takes the peak as the
target's position, and refines the box with the IoU-Net.
"""),
    code("""
tracker = build_tracker("dimp", device="cpu")  # the shipped weights, data/weights/dimp.safetensors
run = vf.track_frames(tracker, seq.frames, seq.boxes[0])
iou = run.iou(seq.boxes)
print(f"{len(run)} frames, mean IoU {iou.mean():.3f}, {len(run) / run.seconds.sum():.1f} frames/s on this CPU")
print("flags:", dict(Counter(run.flags[1:])))
"""),
    md("""
## 3. Boxes and score maps

Top: each frame with the predicted box (dashed red) and the ground truth (green). Bottom: the search region
with the score map over it. One score cell covers 16 pixels of the 288-pixel search patch; the frame of lowest
confidence is always among those shown.
"""),
    code("""
fig = vf.plot_frames(seq.frames, run, seq.boxes)
savefig(fig, figures_dir, "01_frames")
fig
"""),
    md("""
## 4. Confidence over time

The maximum of the score map is DiMP's confidence. Below 0.25 the target counts as lost (`not_found`) and
the model is not updated; a second strong peak makes the frame `hard_negative` or `uncertain`.
"""),
    code("""
fig = vf.plot_confidence(run, seq.boxes, seq.visible)
savefig(fig, figures_dir, "01_confidence")
fig
"""),
    code("""
scores = run.scores[1:]
lowest = int(np.nanargmin(run.scores))
print(f"confidence: mean {scores.mean():.2f}, lowest {scores.min():.2f} at frame {lowest} "
      f"(IoU there {iou[lowest]:.2f})")
print(f"frames below the not-found threshold 0.25: {int((scores < 0.25).sum())} of {len(scores)}")
"""),
    md("""
## 5. Your own video

Set `video_path` in the parameters cell to a video file or a folder of images, run the notebook in JupyterLab
and move the sliders until the green box covers your target on the first frame. The next cell tracks from
`drawer.box`. Without a video (and in headless runs) the drawer opens on the synthetic sequence with its
ground-truth box, and the figure stays as drawn.
"""),
    code("""
if video_path is None:
    own_frames, default_box = seq.frames[: P["own_frames"]], seq.boxes[0]
else:
    from dimp_core.video import open_source

    with open_source(video_path) as source:
        own_frames, default_box = list(islice(source, P["own_frames"])), None
drawer = BoxDrawer(own_frames[0], default_box)
savefig(drawer.figure, figures_dir, "01_first_box")
drawer.show()
"""),
    code("""
own_run = vf.track_frames(build_tracker("dimp", device="cpu"), own_frames, drawer.box)
print(f"tracked {len(own_run)} frames from the box {drawer.box}; last box {np.round(own_run.boxes[-1], 1)}")
fig = vf.plot_frames(own_frames, own_run, seq.boxes if video_path is None else None,
                     indices=vf.pick_frames(own_run, num=4))
savefig(fig, figures_dir, "01_own_video")
fig
"""),
    md("""
## Record
"""),
    code("""
record.update({
    "sequence": seq.name,
    "num_frames": len(run),
    "mean_iou": float(iou.mean()),
    "iou": iou.tolist(),
    "scores": [None if np.isnan(s) else float(s) for s in run.scores],
    "flags": run.flags,
    "min_score": float(np.nanmin(run.scores)),
    "fps_cpu": float(len(run) / run.seconds.sum()),
    "own_video": {"num_frames": len(own_run), "init_box": drawer.box.tolist(),
                  "boxes_finite": bool(np.isfinite(own_run.boxes).all())},
    "figures": ["01_frames.png", "01_confidence.png", "01_first_box.png", "01_own_video.png"],
})
Path(record_path).write_text(json.dumps(record, indent=1))
print(f"wrote {record_path}: mean IoU {record['mean_iou']:.3f} over {record['num_frames']} frames")
"""),
    md("""
## Summary

- A tracker is `init(frame, box)` then `update(frame) -> box`; `tracker.info` carries the score map, its
  maximum and a flag.
- DiMP's score map is the learned filter correlated with the frame's features, $s = x * f$; its peak is the
  target and its height is the confidence.
- The confidence is relative to the first frame (where the filter was fit, score about 1): it sags as the
  target's appearance drifts from the first frame even while the box stays right, and the 0.25 threshold
  is what turns it into a "target lost" decision.

## Exercises

1. Run with `preset = "full"`: does the confidence drop when a distractor crosses the target?
2. Track `make_sequence(3, "test", attributes=("distractors", "partial_occlusion"))`: watch the flags turn to
   `not_found` during the occlusion, and what happens afterwards.
3. Build the tracker with `build_tracker("dimp", net_opt_iter=2)` (fewer first-frame iterations): how do the
   first score maps change?
"""),
]


def main() -> None:
    write(CELLS, "01_quickstart")


if __name__ == "__main__":
    main()
