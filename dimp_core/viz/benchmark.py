"""Notebook 04: SiamFC, ATOM and DiMP (and OpenCV's CSRT/KCF) on the synthetic test split, and a distractor case.

The OPE runs, scores and success/precision plots come from :mod:`dimp_core.evaluation`; this module adds what
the notebook needs around them:

- :func:`subset`: the fast preset's benchmark, the first sequences cut to their first frames;
- :func:`available_trackers`: which trackers can run; a learned tracker needs its shipped weights, and one
  without them is skipped with the reason;
- :func:`plot_attribute_auc`: the per-attribute AUC of every tracker as a heat map;
- :func:`plot_differences`: the reference tracker's AUC lead over each other tracker with its paired-bootstrap
  interval (:mod:`dimp_core.evaluation.significance`);
- :func:`reusable_results`: which result files an earlier run left (``run_tracker`` skips them); those older
  than the tracker's weights are deleted, to be run again;
- :func:`scene_boxes`, :func:`distractor_distance`: per frame, how close the nearest look-alike is to the
  target, in target sizes sqrt(w h) between centres (the synthetic scene knows where its distractors are);
- :func:`first_approach`: the first frame where a distractor comes within half a target size;
- :func:`track_side_by_side`: several trackers in lock-step over a frame window, keeping every score map;
- :func:`score_map_extent` and :func:`plot_distractor_case`: both trackers' score maps drawn over the same
  image window of the same frame.

Score-map geometry (image pixels; ``frame`` is the search patch's :class:`~dimp_core.geometry.PatchFrame`, S the
patch side, n the map side): DiMP's n = 19 cells are spaced S / (n - 1) patch pixels (the stride 16) with
cell (n - 1) / 2 at the patch centre; ATOM's Fourier-upsampled map has one cell per S / n patch pixels and cell j
looks at patch pixel j - 0.5 (:mod:`~dimp_core.trackers.atom`). Cell j is thus at
``frame.center + (j - (n - 1) / 2 + offset) * cell`` with (cell, offset) = (scale S / (n - 1), 0) for DiMP and
(scale S / n, -1/2) for ATOM.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from collections.abc import Sequence as SequenceOf
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from dimp_core.data.benchmarks import Dataset, Sequence
from dimp_core.evaluation.metrics import rect_iou
from dimp_core.geometry import PatchFrame

LEARNED = ("dimp", "dimp18", "dimp50", "atom", "siamfc", "siamfc-alexnet")

# --------------------------------------------------------------------------- what to run


def subset(dataset: Dataset, num_sequences: int | None = None, num_frames: int | None = None) -> Dataset:
    """The first ``num_sequences`` sequences of ``dataset``, each cut to its first ``num_frames`` frames
    (None keeps all). Attribute labels are kept, although an event may fall after the cut."""
    if num_sequences is not None and num_sequences < 1:
        raise ValueError(f"num_sequences must be positive, got {num_sequences}")
    if num_frames is not None and num_frames < 2:
        raise ValueError(f"num_frames must be at least 2 (OPE needs an update frame), got {num_frames}")
    keep = dataset.sequences[:num_sequences]
    if num_frames is not None:
        keep = tuple(_cut(seq, num_frames) for seq in keep)
    return Dataset(dataset.name, tuple(keep))


def _cut(seq: Sequence, n: int) -> Sequence:
    if seq.video is not None:
        raise ValueError(f"{seq.name}: cutting a video-backed sequence is not supported")
    return dataclasses.replace(seq, frame_paths=seq.frame_paths[:n], ground_truth=seq.ground_truth[:n],
                               visible=None if seq.visible is None else seq.visible[:n])


def available_trackers(names: SequenceOf[str]) -> tuple[list[str], dict[str, str]]:
    """(trackers that can run, {skipped tracker: reason}). Learned trackers run on their shipped weights."""
    from dimp_core.trackers import TRACKERS, shipped_weights

    ok, skipped = [], {}
    for name in names:
        if name not in TRACKERS:
            raise ValueError(f"unknown tracker {name!r}; choose from {', '.join(TRACKERS)}")
        if name in LEARNED:
            try:
                shipped_weights(name)
            except FileNotFoundError as err:
                skipped[name] = str(err)
                continue
        ok.append(name)
    return ok, skipped


def reusable_results(dataset: Dataset, out_dir: str | Path, name: str) -> tuple[list[str], list[str]]:
    """Check the result files an earlier run left under ``out_dir`` for tracker ``name``: returns (sequences whose
    complete file ``run_tracker`` will reuse, sequences whose file was older than the tracker's shipped weights).
    Stale files are deleted, so that ``run_tracker`` runs those sequences again with the current weights."""
    from dimp_core.evaluation.runner import read_results, result_path, time_path
    from dimp_core.trackers import WEIGHTS_DIR

    weights = WEIGHTS_DIR / f"{name}.safetensors"
    reused, stale = [], []
    for seq in dataset:
        path = result_path(out_dir, name, seq.name)
        if not (path.is_file() and len(read_results(path)) == len(seq)):
            continue
        if weights.is_file() and path.stat().st_mtime < weights.stat().st_mtime:
            stale.append(seq.name)
            path.unlink()
            time_path(out_dir, name, seq.name).unlink(missing_ok=True)
        else:
            reused.append(seq.name)
    return reused, stale


# --------------------------------------------------------------------------- per-attribute table


def attribute_matrix(summary: Mapping[str, Any]) -> tuple[list[str], list[str], np.ndarray, list[int]]:
    """(trackers, attributes, AUC (trackers, attributes) in percent with NaN where absent, sequences per attribute)."""
    trackers = list(summary["trackers"])
    attributes = sorted({a for t in summary["trackers"].values() for a in t["attributes"]})
    auc = np.full((len(trackers), len(attributes)), np.nan)
    counts = [0] * len(attributes)
    for i, name in enumerate(trackers):
        for j, a in enumerate(attributes):
            entry = summary["trackers"][name]["attributes"].get(a)
            if entry is not None:
                auc[i, j] = entry["auc"]
                counts[j] = max(counts[j], entry["num_sequences"])
    return trackers, attributes, auc, counts


def plot_attribute_auc(summary: Mapping[str, Any]) -> Figure:
    """Heat map of the AUC per attribute (columns) and tracker (rows), each cell labelled with its value."""
    trackers, attributes, auc, counts = attribute_matrix(summary)
    fig = Figure(figsize=(1.0 + 0.75 * max(len(attributes), 4), 1.6 + 0.45 * len(trackers)))
    ax = fig.add_subplot()
    image = ax.imshow(auc, cmap="viridis", vmin=0, vmax=max(70.0, float(np.nanmax(auc, initial=0))), aspect="auto")
    for (i, j), value in np.ndenumerate(auc):
        if np.isfinite(value):
            ax.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=8,
                    color="white" if value < 45 else "black")
    ax.set_xticks(range(len(attributes)), [f"{a.replace('_', ' ')} ({c})" for a, c in zip(attributes, counts,
                                                                                      strict=True)],
                  rotation=40, ha="right", fontsize=8)
    ax.set_yticks(range(len(trackers)), trackers)
    ax.set_xlabel("attribute (number of sequences)")
    ax.set_ylabel("tracker")
    ax.set_title(f"Success AUC (%) per attribute on {summary['dataset']} ({summary['num_sequences']} sequences)")
    fig.colorbar(image, ax=ax, label="AUC (%)", fraction=0.03)
    fig.tight_layout()
    return fig


def plot_differences(differences: Mapping[str, Mapping[str, float]], reference: str) -> Figure:
    """One row per tracker: ``reference``'s AUC minus that tracker's (dot) and the 95 % interval (bar).

    ``differences[name]`` holds ``mean``, ``low``, ``high`` (AUC points) and ``p_higher``.
    """
    names = list(differences)
    fig = Figure(figsize=(7.0, 1.2 + 0.5 * max(len(names), 1)))
    ax = fig.add_subplot()
    for i, name in enumerate(names):
        d = differences[name]
        colour = "tab:green" if d["low"] > 0 else "tab:red" if d["high"] < 0 else "tab:gray"
        ax.plot([d["low"], d["high"]], [i, i], color=colour, linewidth=4, solid_capstyle="butt")
        ax.plot([d["mean"]], [i], "o", color="black")
        ax.annotate(f"{d['mean']:+.1f}  P(higher) {d['p_higher']:.2f}", (d["high"], i), xytext=(6, 0),
                    textcoords="offset points", va="center", fontsize=8)
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set_yticks(range(len(names)), names)
    ax.set_ylim(-0.6, len(names) - 0.4)
    ax.invert_yaxis()
    low = min([d["low"] for d in differences.values()] + [0.0])
    high = max([d["high"] for d in differences.values()] + [0.0])
    ax.set_xlim(low - 2, high + 0.35 * (high - low) + 8)
    ax.set_xlabel(f"AUC of {reference} minus AUC of the tracker (points); bar: 95 % paired-bootstrap interval")
    ax.set_title(f"How sure is the ranking?\ngreen: {reference} ahead, red: behind, grey: this benchmark cannot tell",
                 fontsize=10)
    fig.tight_layout()
    return fig


def plot_component_swap(data: Mapping[str, Any]) -> Figure:
    """The IoU-Net swap of ``experiments/component_swap.py``: AUC of each classifier / IoU-Net pair per run (left) and
    the paired effects with their 95 % intervals (right).

    ``data["runs"][run]["summary"]`` holds ``auc`` (label -> AUC) and ``effects`` (name -> ``mean``, ``low``,
    ``high``); the figure shows the labels ``dimp``, ``dimp+atom-iounet``, ``atom+dimp-iounet``, ``atom`` and the
    effects named ``classifier, ...``, ``IoU-Net, ...`` and ``first-frame ...``, all DiMP's part minus ATOM's
    (the other cells and effects of the JSON are left out).
    """
    runs = list(data["runs"])
    labels = ["dimp", "dimp+atom-iounet", "atom+dimp-iounet", "atom"]
    style = {"dimp": ("tab:blue", ""), "dimp+atom-iounet": ("tab:blue", "//"),
             "atom+dimp-iounet": ("tab:orange", "//"), "atom": ("tab:orange", "")}
    fig = Figure(figsize=(12.0, 4.2))
    ax, bx = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.1, 1.0]})
    width = 0.2
    for j, label in enumerate(labels):
        colour, hatch = style[label]
        values = [data["runs"][r]["summary"]["auc"][label] for r in runs]
        x = np.arange(len(runs)) + (j - 1.5) * width
        ax.bar(x, values, width, color=colour, hatch=hatch, edgecolor="white", label=label)
        for xi, v in zip(x, values, strict=True):
            ax.annotate(f"{v:.1f}", (xi, v), xytext=(0, 2), textcoords="offset points", ha="center", fontsize=7)
    every = [v for r in runs for v in data["runs"][r]["summary"]["auc"].values()]
    ax.set_ylim(min(every) - 14, max(every) + 3)  # room for the legend under the bars
    ax.set_xticks(range(len(runs)), [r.replace(", ", "\n") for r in runs])
    ax.set_ylabel("success AUC (%)")
    ax.set_title("classifier: blue DiMP, orange ATOM; hatched: the other tracker's IoU-Net", fontsize=9)
    ax.legend(fontsize=7, loc="lower center", ncols=4)
    effects = [e for e in data["runs"][runs[0]]["summary"]["effects"]
               if e.startswith(("classifier", "IoU-Net", "first-frame"))]  # DiMP's part minus ATOM's
    colours = ["tab:purple", "tab:green", "tab:brown", "tab:gray"]
    for i, effect in enumerate(effects):
        for k, r in enumerate(runs):
            e = data["runs"][r]["summary"]["effects"][effect]
            y = i + (k - (len(runs) - 1) / 2) * 0.16
            bx.plot([e["low"], e["high"]], [y, y], color=colours[k % len(colours)], linewidth=3,
                    solid_capstyle="butt", label=r if i == 0 else None)
            bx.plot([e["mean"]], [y], "o", color="black", markersize=3)
    bx.axvline(0.0, color="black", linewidth=0.8)
    bx.set_yticks(range(len(effects)), [e.replace(", ", "\n") for e in effects], fontsize=8)
    bx.invert_yaxis()
    bx.set_xlabel("DiMP's part minus ATOM's, AUC points (bar: 95 % paired interval)")
    bx.set_title("positive: DiMP's part is the better one", fontsize=9)
    bx.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=4)
    fig.tight_layout()
    return fig


def plot_first_frame_discrimination(results: Mapping[str, Any], distance: np.ndarray | None = None,
                                    title: str = "") -> Figure:
    """The one-shot test of :mod:`dimp_core.evaluation.discrimination` over one sequence, per tracker.

    Top: the distractor ratio of every tested frame (filled: the top score lies on the target, open: it lies
    elsewhere), with the localisation's hard-negative (0.5) and distractor (0.8) fractions. Bottom (when
    ``distance`` is given): the nearest look-alike's distance from the target, in target sizes.
    ``results[name]`` is a :class:`~dimp_core.evaluation.discrimination.FrameDiscrimination`.
    """
    rows = 2 if distance is not None else 1
    fig = Figure(figsize=(9.0, 2.6 * rows + 0.4))
    axes = fig.subplots(rows, 1, sharex=True, squeeze=False)[:, 0]
    ax = axes[0]
    for (name, r), colour in zip(results.items(), ("tab:orange", "tab:blue", "tab:green"), strict=False):
        ratio = np.clip(r.ratio, 0.0, 2.0)  # above 2 the exact value does not matter
        step = np.diff(r.frames).min() if len(r.frames) > 1 else 1
        line = np.where(np.diff(r.frames, prepend=r.frames[:1]) > step, np.nan, ratio)  # no line across gaps
        ax.plot(r.frames + 1, line, "-", color=colour, linewidth=1, alpha=0.6)
        ax.plot(r.frames[r.hit] + 1, ratio[r.hit], "o", color=colour, markersize=4,
                label=f"{name}: top score on the target in {100 * r.hit.mean():.0f} % of {len(r.hit)} frames")
        ax.plot(r.frames[~r.hit] + 1, ratio[~r.hit], "o", mfc="none", color=colour, markersize=6)
    for level, label in ((0.5, "hard negative"), (0.8, "distractor")):
        ax.axhline(level, color="gray", linestyle="--", linewidth=0.8)
        ax.annotate(label, (0, level), xycoords=("axes fraction", "data"), xytext=(3, 2),
                    textcoords="offset points", fontsize=7, color="gray")
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_ylim(0, 2.05)
    ax.set_ylabel("distractor ratio\n(open: miss)")
    ax.legend(fontsize=8, loc="upper right")
    ax.set_title(title or "The first-frame model alone, no online update", fontsize=10)
    if distance is not None:
        axes[1].plot(np.arange(1, len(distance) + 1), distance, color="black", linewidth=1)
        axes[1].axhline(0.5, color="gray", linestyle="--", linewidth=0.8)
        axes[1].set_ylabel("nearest look-alike\n(target sizes)")
        axes[1].set_ylim(0, min(float(np.nanmax(distance)), 6.0) + 0.2)
    axes[-1].set_xlabel("frame")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- the distractor case


def scene_boxes(seed: int, split: str, attributes: SequenceOf[str], num_frames: int
                ) -> tuple[np.ndarray, list[np.ndarray]]:
    """The target's (N, 4) boxes (x, y, w, h) and those of every look-alike distractor of a synthetic sequence,
    read from its scene (nothing is rendered)."""
    from dimp_core.data.synthetic import make_scene
    from dimp_core.data.synthetic_motion import bounding_boxes
    from dimp_core.data.synthetic_render import target_boxes

    scene = make_scene(seed, split, tuple(attributes), num_frames)
    distractors = [bounding_boxes(layer.affines, layer.sprite.hull) for layer in scene.layers
                   if layer.role == "distractor"]
    return target_boxes(scene), distractors


def distractor_distance(target: np.ndarray, distractors: SequenceOf[np.ndarray]) -> np.ndarray:
    """(N,) distance from the target's centre to the nearest distractor centre, in target sizes sqrt(w h).

    >>> distractor_distance(np.array([[0.0, 0, 10, 10]]), [np.array([[5.0, 0, 10, 10]]), np.array([[40.0, 0, 4, 4]])])
    array([0.5])
    """
    if not distractors:
        raise ValueError("the sequence has no distractors")
    centre = target[:, :2] + target[:, 2:] / 2  # (N, 2)
    dist = np.min([np.linalg.norm(d[:, :2] + d[:, 2:] / 2 - centre, axis=1) for d in distractors], axis=0)
    return dist / np.sqrt(target[:, 2] * target[:, 3])


def first_approach(distance: np.ndarray, visible: np.ndarray | None, threshold: float = 0.5) -> int:
    """The first frame where the target is visible and a distractor's centre is within ``threshold`` target
    sizes of the target's; the nearest such frame of the sequence when none comes that close."""
    ok = np.ones(len(distance), dtype=bool) if visible is None else np.asarray(visible, dtype=bool)
    close = np.flatnonzero(ok & (distance < threshold))
    return int(close[0]) if close.size else int(np.argmin(np.where(ok, distance, np.inf)))


@dataclass
class TrackRun:
    """One tracker's pass over a window [start, stop) of a sequence: a row per frame, frame ``start`` the init."""

    start: int
    boxes: np.ndarray  # (T, 4) image xywh
    score_maps: list[np.ndarray | None] = field(default_factory=list)  # None on the init frame
    patch_frames: list[PatchFrame | None] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)

    def at(self, t: int) -> int:
        """Row of sequence frame ``t``."""
        if not self.start <= t < self.start + len(self.boxes):
            raise IndexError(f"frame {t} is outside the run [{self.start}, {self.start + len(self.boxes)})")
        return t - self.start


def track_side_by_side(trackers: Mapping[str, Any], seq: Sequence, start: int = 0, stop: int | None = None
                       ) -> dict[str, TrackRun]:
    """Run every tracker from the ground truth of frame ``start`` to frame ``stop`` - 1, in lock-step (each frame
    is read once), keeping each update's box, score map, search-patch frame and flag."""
    stop = len(seq) if stop is None else min(stop, len(seq))
    if not 0 <= start < stop - 1:
        raise ValueError(f"need at least two frames in [start, stop), got [{start}, {stop}) of {len(seq)}")
    runs = {name: TrackRun(start, np.zeros((stop - start, 4))) for name in trackers}
    for t in range(start, stop):
        image = seq.frame(t)
        for name, tracker in trackers.items():
            run = runs[name]
            if t == start:
                tracker.init(image, seq.ground_truth[start].copy())
                run.boxes[0] = seq.ground_truth[start]
                run.score_maps.append(None)
                run.patch_frames.append(None)
                run.flags.append("init")
                continue
            run.boxes[t - start] = tracker.update(image)
            run.score_maps.append(tracker.info.get("score_map"))
            run.patch_frames.append(tracker.info.get("frame"))
            run.flags.append(tracker.info.get("flag", "?"))
    return runs


def window_iou(run: TrackRun, seq: Sequence) -> np.ndarray:
    """(T,) IoU of a run's boxes with the ground truth; NaN where the target is not visible."""
    gt = seq.ground_truth[run.start : run.start + len(run.boxes)]
    iou = rect_iou(run.boxes, gt)
    if seq.visible is not None:
        iou = np.where(seq.visible[run.start : run.start + len(run.boxes)], iou, np.nan)
    return iou


def score_map_extent(kind: str, shape: tuple[int, int], frame: PatchFrame) -> tuple[float, float, float, float]:
    """imshow ``extent`` (left, right, bottom, top) in image pixels of a (h, w) score map of tracker ``kind``
    (``dimp`` or ``atom``) computed on the search patch ``frame`` (the module docstring's geometry).

    >>> frame = PatchFrame((100.0, 100.0), 1.0, 288)  # patch pixel p looks at image 100 + (p - 143.5)
    >>> score_map_extent("dimp", (19, 19), frame)  # cells 16 px apart, cell 9 at the centre
    (-52.0, 252.0, 252.0, -52.0)
    >>> score_map_extent("atom", (288, 288), frame)  # one cell per pixel, cell j at patch pixel j - 0.5
    (-44.5, 243.5, 243.5, -44.5)
    """
    if kind not in ("dimp", "atom"):
        raise ValueError(f"score-map geometry is known for 'dimp' and 'atom', not {kind!r}")
    edges = []
    for axis, n in ((0, shape[1]), (1, shape[0])):  # x from the columns, y from the rows
        cell = frame.scale * frame.size / (n - 1) if kind == "dimp" else frame.scale * frame.size / n
        offset = 0.0 if kind == "dimp" else -0.5
        first = frame.center[axis] + (0 - (n - 1) / 2 + offset) * cell
        last = frame.center[axis] + ((n - 1) - (n - 1) / 2 + offset) * cell
        edges.append((first - cell / 2, last + cell / 2))
    (left, right), (top, bottom) = edges
    return left, right, bottom, top


def tracker_kind(tracker: Any) -> str:
    """``dimp`` or ``atom``: which score-map geometry a tracker object uses."""
    from dimp_core.trackers.atom import ATOMTracker
    from dimp_core.trackers.dimp import DiMPTracker

    if isinstance(tracker, DiMPTracker):
        return "dimp"
    if isinstance(tracker, ATOMTracker):
        return "atom"
    raise TypeError(f"no score-map geometry for {type(tracker).__name__}")


def _box(ax: Any, box: np.ndarray, colour: str, label: str, style: str = "-") -> None:
    ax.add_patch(Rectangle((box[0], box[1]), box[2], box[3], fill=False, ec=colour, lw=1.8, ls=style, label=label))


def plot_distractor_case(seq: Sequence, t: int, runs: Mapping[str, TrackRun], kinds: Mapping[str, str],
                         distractors: SequenceOf[np.ndarray], distance: np.ndarray, window: float = 5.0) -> Figure:
    """The frame ``t`` with the ground truth, the distractors and each tracker's box, then each tracker's score
    map over the same image window (a square of ``window`` sqrt(w h) around the true target), and below the
    IoU of each tracker over the run with the distractor distance."""
    image = seq.frame(t)
    colours = {name: f"C{i}" for i, name in enumerate(runs)}
    gt = seq.ground_truth[t]
    gt_centre = gt[:2] + gt[2:] / 2
    half = window * float(np.sqrt(gt[2] * gt[3])) / 2

    fig = Figure(figsize=(4.4 * (1 + len(runs)), 6.4), layout="constrained")
    grid = fig.add_gridspec(2, 1 + len(runs), height_ratios=(2.5, 1.3))
    panels = [fig.add_subplot(grid[0, i]) for i in range(1 + len(runs))]
    for ax in panels:
        ax.set_facecolor("0.85")  # outside the image
        ax.imshow(image, extent=(-0.5, image.shape[1] - 0.5, image.shape[0] - 0.5, -0.5))
    ax = panels[0]
    _box(ax, gt, "lime", "ground truth")
    for k, d in enumerate(distractors):
        _box(ax, d[t], "orange", "distractor" if k == 0 else "_", "--")
    for name, run in runs.items():
        _box(ax, run.boxes[run.at(t)], colours[name], f"{name} ({run.flags[run.at(t)]})", ":")
    ax.set_title(f"{seq.name}, frame {t + 1}: nearest look-alike {distance[t]:.2f} target sizes away", fontsize=9)
    ax.legend(loc="lower left", fontsize=7, framealpha=0.8)

    for ax, (name, run) in zip(panels[1:], runs.items(), strict=True):
        scores = run.score_maps[run.at(t)]
        extent = score_map_extent(kinds[name], scores.shape, run.patch_frames[run.at(t)])
        shown = ax.imshow(scores, extent=extent, cmap="inferno", alpha=0.65, interpolation="nearest")
        fig.colorbar(shown, ax=ax, fraction=0.046, label=f"{name} score")
        row, col = np.unravel_index(int(np.argmax(scores)), scores.shape)
        l, r, b, tp = extent
        peak = (l + (col + 0.5) * (r - l) / scores.shape[1], tp + (row + 0.5) * (b - tp) / scores.shape[0])
        ax.plot(*peak, "c+", ms=16, mew=2.5, label=f"map maximum ({scores.max():.2f})")
        ax.plot(*gt_centre, "x", color="lime", ms=11, mew=2.5, label="target centre")
        for k, d in enumerate(distractors):
            ax.plot(*(d[t, :2] + d[t, 2:] / 2), "x", color="orange", ms=11, mew=2.5,
                    label="distractor centre" if k == 0 else "_")
        ax.set_title(f"{name}: score map ({scores.shape[0]}x{scores.shape[1]}) on its search area", fontsize=9)
        ax.legend(loc="lower left", fontsize=7, framealpha=0.8)
    for ax in panels:
        ax.set(xlim=(gt_centre[0] - half, gt_centre[0] + half), ylim=(gt_centre[1] + half, gt_centre[1] - half),
               xlabel="x (image pixels)")
    panels[0].set_ylabel("y (image pixels)")

    ax = fig.add_subplot(grid[1, :])
    first = next(iter(runs.values()))
    frames = np.arange(first.start, first.start + len(first.boxes))
    for name, run in runs.items():
        ax.plot(frames + 1, window_iou(run, seq), color=colours[name], lw=1.8, label=f"{name} IoU")
    ax.axvline(t + 1, color="gray", ls="--", lw=1, label=f"frame {t + 1}")
    ax.set(xlabel="frame", ylabel="IoU with ground truth", ylim=(0, 1), xlim=(frames[0] + 1, frames[-1] + 1),
           title="Overlap over the run (gaps: target hidden) and distance to the nearest look-alike")
    twin = ax.twinx()
    twin.plot(frames + 1, distance[frames], color="orange", ls="--", lw=1.2, label="distractor distance")
    twin.set_ylabel("distance (target sizes)")
    twin.set_ylim(0, max(3.0, float(np.nanmax(distance[frames]))))
    lines = ax.get_legend_handles_labels()
    twin_lines = twin.get_legend_handles_labels()
    ax.legend(lines[0] + twin_lines[0], lines[1] + twin_lines[1], loc="upper right", fontsize=7, ncol=4)
    return fig
