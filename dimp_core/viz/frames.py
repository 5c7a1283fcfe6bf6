"""A tracking run kept frame by frame, and its figures: frames with boxes, score maps, confidence (notebook 01).

Figures and the annotated video take one run (its box dashed red, its score maps) and optionally ``others``,
more runs on the same frames (e.g. OpenCV CSRT beside DiMP) drawn in the colours of :data:`OTHER_COLORS`.

The score map of a frame lives on the search patch: cell (i, j) of an H x W map looks at the image point
``frame.center + ((j - (W - 1) / 2), (i - (H - 1) / 2)) * cell`` with ``cell = frame.scale * patch_size / (W - 1)``
image pixels (the trackers' own localisation convention), so it can be drawn over the image.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from dimp_core.evaluation.metrics import rect_iou
from dimp_core.geometry import PatchFrame
from dimp_core.trackers.base import FLAGS, Tracker
from dimp_core.trackers.localization import LocalizationParams
from dimp_core.viz.figures import GT_COLOR, PRED_COLOR

FLAG_COLORS = {"normal": "#2ca02c", "uncertain": "#ff7f0e", "hard_negative": "#9467bd", "not_found": "#d62728"}
# the boxes of further runs, and the colours' names for titles (video.TRACK_COLORS after red)
OTHER_COLORS = {"#1f77b4": "blue", "#ff7f0e": "orange", "#9467bd": "purple"}


@dataclass(frozen=True)
class TrackingRun:
    """What a tracker reported on every frame of one sequence.

    Attributes:
        boxes: (N, 4) (x, y, w, h); the first is the initial box.
        scores: (N,) the maximum of the score map (``info['score']``); NaN on the first frame.
        flags: N flags (``'init'`` on the first frame).
        score_maps: N score maps (None on the first frame, or for trackers without one).
        patch_frames: N :class:`PatchFrame` of the search patch each score map was computed on (or None).
        seconds: (N,) time of ``init`` / ``update``.
    """

    boxes: np.ndarray
    scores: np.ndarray
    flags: list[str]
    score_maps: list[np.ndarray | None]
    patch_frames: list[PatchFrame | None]
    seconds: np.ndarray

    def __len__(self) -> int:
        return len(self.boxes)

    def iou(self, gt: np.ndarray) -> np.ndarray:
        """(N,) IoU of each box with the ground truth ``gt`` (N, 4)."""
        return rect_iou(self.boxes, gt)


def track_frames(tracker: Tracker, frames: Sequence[np.ndarray], init_box: np.ndarray) -> TrackingRun:
    """Run ``tracker`` once over ``frames`` from ``init_box`` (x, y, w, h), keeping ``tracker.info`` of every frame."""
    if len(frames) < 1:
        raise ValueError("need at least one frame")
    boxes, scores, flags, maps, patch_frames, seconds = [], [], [], [], [], []
    for i, frame in enumerate(frames):
        start = time.perf_counter()
        if i == 0:
            tracker.init(frame, init_box)
            box, score, flag, info = np.asarray(init_box, dtype=np.float64), float("nan"), "init", {}
        else:
            box = tracker.update(frame)
            info = tracker.info
            score, flag = float(info.get("score", float("nan"))), str(info.get("flag", "normal"))
        seconds.append(time.perf_counter() - start)
        boxes.append(np.array(box, dtype=np.float64))  # a copy: a tracker may reuse its array
        scores.append(score)
        flags.append(flag)
        maps.append(info.get("score_map"))
        patch_frames.append(info.get("frame"))
    return TrackingRun(np.array(boxes), np.array(scores), flags, maps, patch_frames, np.array(seconds))


def summarize(run: TrackingRun, gt: np.ndarray | None = None, visible: np.ndarray | None = None) -> str:
    """One line: frames, speed, mean IoU over the frames where the target is visible (with ``gt``), flags."""
    text = f"{len(run)} frames, {(len(run) - 1) / max(run.seconds[1:].sum(), 1e-9):.1f} frames/s after the first"
    if gt is not None:
        seen = np.ones(len(run), bool) if visible is None else np.asarray(visible, dtype=bool)
        text += f", mean IoU {run.iou(gt)[seen].mean():.3f}"
        text += f" over the {int(seen.sum())} frames with the target visible" if not seen.all() else ""
    counts: dict[str, int] = {}
    for flag in run.flags[1:]:
        counts[flag] = counts.get(flag, 0) + 1
    return f"{text}; flags {counts}"


def pick_frames(run: TrackingRun, num: int = 6) -> list[int]:
    """``num`` frames to show: evenly spread over 1..N-1, one of them the frame of lowest confidence."""
    n = len(run)
    if n < 2:
        return [0]
    picked = {int(round(i)) for i in np.linspace(1, n - 1, num)}
    scores = np.where(np.isnan(run.scores), np.inf, run.scores)
    lowest = int(np.argmin(scores))
    if lowest not in picked:
        picked.remove(min(picked, key=lambda i: abs(i - lowest)))
        picked.add(lowest)
    return sorted(picked)


def score_map_extent(frame: PatchFrame, shape: tuple[int, int]) -> tuple[float, float, float, float]:
    """(left, right, bottom, top) in image pixels of an H x W score map computed on the patch ``frame``,
    for ``imshow(..., extent=...)`` over the image."""
    h, w = shape
    cell = frame.scale * frame.size / (w - 1)
    cx, cy = frame.center
    return (cx - w / 2 * cell, cx + w / 2 * cell, cy + h / 2 * cell, cy - h / 2 * cell)


def draw_box(ax: Axes, box: np.ndarray, color: str, label: str | None = None, linestyle: str = "-") -> Rectangle:
    """Draw (x, y, w, h) on ``ax`` (image pixel coordinates) and return the patch."""
    rect = Rectangle((box[0], box[1]), box[2], box[3], fill=False, edgecolor=color, linewidth=2,
                     linestyle=linestyle, label=label)
    ax.add_patch(rect)
    return rect


def plot_frames(frames: Sequence[np.ndarray], run: TrackingRun, gt: np.ndarray | None = None,
                indices: Sequence[int] | None = None, tracker_name: str = "DiMP",
                others: Mapping[str, TrackingRun] | None = None) -> Figure:
    """Top row: frames with the predicted (and ground-truth) box, and the boxes of the ``others`` runs. Bottom
    row: the search region with ``run``'s score map drawn over it (peak = where the tracker believes the target
    is), titled with the max score and flag."""
    others = dict(others or {})
    indices = list(pick_frames(run) if indices is None else indices)
    aspect = frames[indices[0]].shape[0] / frames[indices[0]].shape[1]  # the top row keeps the frames' shape
    fig = Figure(figsize=(2.6 * len(indices) + 0.8, 2.6 * (aspect + 1) + 0.8), layout="constrained")
    axes = fig.subplots(2, len(indices), squeeze=False, height_ratios=(aspect, 1))
    image = None
    for col, i in enumerate(indices):
        top, bottom = axes[0, col], axes[1, col]
        for ax in (top, bottom):
            ax.imshow(frames[i])
            if gt is not None:
                draw_box(ax, gt[i], GT_COLOR, "ground truth")
            draw_box(ax, run.boxes[i], PRED_COLOR, tracker_name, "--")
            ax.set(xticks=[], yticks=[])
        for (name, other), color in zip(others.items(), OTHER_COLORS, strict=False):
            draw_box(top, other.boxes[i], color, name)
        top.set_title(f"frame {i}")
        smap, pframe = run.score_maps[i], run.patch_frames[i]
        if smap is None or pframe is None:
            bottom.set_title("first frame: no score map")
            continue
        ext = score_map_extent(pframe, smap.shape)
        image = bottom.imshow(smap, extent=ext, cmap="jet", alpha=0.45, vmin=-0.2, vmax=1.0,
                              interpolation="bilinear")
        bottom.set(xlim=(ext[0], ext[1]), ylim=(ext[2], ext[3]))
        bottom.set_title(f"max score {run.scores[i]:.2f} ({run.flags[i]})", fontsize="small",
                         color=FLAG_COLORS.get(run.flags[i], "black"))
    axes[0, 0].legend(loc="upper left", fontsize="x-small")
    axes[0, 0].set_ylabel("frame with boxes")
    axes[1, 0].set_ylabel("search region + scores")
    if image is not None:
        fig.colorbar(image, ax=list(axes[1]), fraction=0.02, pad=0.01, label="score")
    if others:
        names = ", ".join(f"{name} ({color})" for name, color in zip(others, OTHER_COLORS.values(), strict=False))
        gt_text = " vs ground truth (green)" if gt is not None else ""
        fig.suptitle(f"{tracker_name} (dashed red) and {names}{gt_text}; {tracker_name}'s score maps below")
    else:
        boxes = ("predicted (dashed red) vs ground-truth (green) boxes" if gt is not None
                 else "predicted boxes (dashed red)")
        fig.suptitle(f"{tracker_name}: {boxes}, and the score maps")
    return fig


def plot_confidence(run: TrackingRun, gt: np.ndarray | None = None, visible: np.ndarray | None = None,
                    not_found_threshold: float = LocalizationParams().target_not_found_threshold,
                    tracker_name: str = "DiMP", others: Mapping[str, TrackingRun] | None = None) -> Figure:
    """Confidence (max score) over time, coloured by flag, with the not-found threshold; below (with ``gt``) the
    IoU of ``run`` and of the ``others`` runs, each with its mean over the frames where the target is visible."""
    t = np.arange(len(run))
    fig = Figure(figsize=(10, 5.5 if gt is not None else 3.2), layout="constrained")
    axes = fig.subplots(2 if gt is not None else 1, 1, sharex=True, squeeze=False)[:, 0]
    ax = axes[0]
    ax.plot(t, run.scores, color="0.5", linewidth=1)
    for flag in FLAGS:
        sel = np.array([f == flag for f in run.flags])
        if sel.any():
            ax.scatter(t[sel], run.scores[sel], s=18, color=FLAG_COLORS[flag], label=flag, zorder=3)
    ax.axhline(not_found_threshold, color=FLAG_COLORS["not_found"], linestyle=":", label="not-found threshold")
    top = max(1.1, float(np.nanmax(run.scores)) + 0.1) if np.isfinite(run.scores).any() else 1.1
    ax.set(ylabel="max score", title=f"{tracker_name}: confidence over time", ylim=(0, top))
    ax.legend(fontsize="small", ncol=5, loc="upper right")
    ax.grid(True, alpha=0.3)
    if gt is not None:
        seen = np.ones(len(run), bool) if visible is None else np.asarray(visible, dtype=bool)
        runs = {tracker_name: run, **(others or {})}
        for (name, each), color in zip(runs.items(), (PRED_COLOR, *OTHER_COLORS), strict=False):
            iou = each.iou(gt)
            axes[1].plot(t, iou, color=color, label=f"{name} (mean {np.mean(iou[seen]):.2f})")
        where = " (means over the frames where it is visible)" if not seen.all() else ""
        axes[1].set(ylabel="IoU", ylim=(0, 1.02), title=f"overlap with the ground truth{where}")
        axes[1].grid(True, alpha=0.3)
    for ax in axes:
        if visible is not None and not np.all(visible):
            ax.fill_between(t, 0, 1, where=~np.asarray(visible, dtype=bool), color="0.85", step="mid",
                            transform=ax.get_xaxis_transform(), label="target not visible")
    if gt is not None:
        axes[1].legend(fontsize="small", loc="lower left")
    axes[-1].set_xlabel("frame")
    return fig


def write_video(path: str | Path, frames: Sequence[np.ndarray], run: TrackingRun, gt: np.ndarray | None = None,
                visible: np.ndarray | None = None, fps: float | None = None, tracker_name: str = "DiMP",
                others: Mapping[str, TrackingRun] | None = None) -> Path:
    """An annotated mp4 of ``run`` (and ``others``) over ``frames`` (:func:`dimp_core.video.write_annotated_video`):
    each tracker's box in its figure colour, learned trackers captioned with their max score and flag."""
    from dimp_core.video import write_annotated_video

    runs = {tracker_name: run, **(others or {})}
    captions = {name: ["first box" if flag == "init" else f"{score:.2f} {flag}" if smap is not None else ""
                       for score, flag, smap in zip(r.scores, r.flags, r.score_maps, strict=True)]
                for name, r in runs.items()}
    return write_annotated_video(path, frames, {name: r.boxes for name, r in runs.items()}, captions, gt, visible, fps)
