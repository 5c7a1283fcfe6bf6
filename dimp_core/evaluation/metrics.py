"""One-pass evaluation (OPE) metrics of one sequence: success, precision and normalised precision, and speed.

Definitions (``reference/baselines_eval_notebooks.md`` B.3, B.4, B.6), for predicted boxes p_i and
ground-truth boxes g_i, i = 0 .. N-1, all (x, y, w, h):

- IoU, the continuous convention of the got10k toolkit's ``rect_iou`` (no +1 pixel)::

      inter_i = max(0, min(p.x+p.w, g.x+g.w) - max(p.x, g.x)) * max(0, min(p.y+p.h, g.y+g.h) - max(p.y, g.y))
      IoU_i   = clip(inter_i / (p.w p.h + g.w g.h - inter_i + eps), 0, 1)

- centre c = (x + (w - 1) / 2, y + (h - 1) / 2) (got10k and pytracking); centre error e_i = |c(p_i) - c(g_i)|.
- normalised centre error (pytracking's definition): both centres divided component-wise by the
  ground-truth size, n_i = sqrt(((c_x(p) - c_x(g)) / g.w)^2 + ((c_y(p) - c_y(g)) / g.h)^2).
- success curve S(t) = #{i: IoU_i > t} / N on the 21 thresholds t = 0, 0.05, ..., 1; AUC = mean of S
  (OTB's "area under the curve", as got10k and pytracking compute it);
  success rate = S(0.5).
- precision curve P(t) = #{i: e_i <= t} / N, t = 0, 1, ..., 50 px; precision = P(20).
- normalised precision curve NP(t) = #{i: n_i <= t} / N, t = 0, 0.01, ..., 0.5; normalised precision = NP(0.20).
- speed (got10k's ``ExperimentOTB``): the mean of 1 / t_i over the frames with t_i > 0, frame 0 (the
  initialisation) included.

Conventions for special frames (the choices this module makes, and why):

- Frame 0 of the prediction is replaced by the ground truth (got10k, pytracking, OTB).
- A frame is *valid* when its ground-truth row is finite with w > 0 and h > 0 and, where the dataset says
  so, the target is visible (LaSOT: not fully occluded and not out of view; GOT-10k: not absent, cover > 0;
  the synthetic benchmark: ``visible.txt``).
- An invalid frame gets IoU = -1 and centre error = normalised centre error = +inf, so it fails every
  threshold, and the denominator N stays the full sequence length. This is pytracking's default
  (``exclude_invalid_frames=False``) and the official LaSOT toolkit's outcome (absent frames removed,
  rate divided by the full length): frames on which no tracker can be judged cost every tracker the same,
  and the numbers stay comparable with published LaSOT results. It also equals got10k's OTB experiment,
  where a NaN ground-truth row gives a NaN IoU and error that fail every comparison.
- Where pytracking differs, we follow got10k or the LaSOT toolkit: (a) pytracking calls a frame valid only
  when all four ground-truth numbers are > 0, which also drops targets touching the left or top border;
  we test only the size. (b) Outside LaSOT, pytracking gives invalid frames a normalised error of -1, which
  passes every threshold; we fail them, as pytracking itself does on LaSOT, so that NP and P treat the same
  frames alike. (c) pytracking replaces zero-size predictions by the previous frame's box; we score them as
  they are (IoU 0, centre error measured), as got10k does. (d) The IoU has no +1 pixel (pytracking and the
  LaSOT toolkit add one), as the project's convention is got10k's.
- A NaN prediction fails every threshold (its IoU and errors compare False); our trackers never return one.

With every frame valid, :func:`success_curve` and :func:`precision_curve` reproduce got10k's
``ExperimentOTB`` exactly (``tests/test_metrics.py`` checks it against the toolkit).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

IOU_THRESHOLDS = np.linspace(0.0, 1.0, 21)  # success plot, OTB
CENTER_THRESHOLDS = np.arange(0, 51, dtype=np.float64)  # precision plot, pixels
NORM_CENTER_THRESHOLDS = np.arange(0, 51, dtype=np.float64) / 100.0  # normalised precision plot
PRECISION_AT = 20  # index of 20 px in CENTER_THRESHOLDS and of 0.20 in NORM_CENTER_THRESHOLDS
SUCCESS_RATE_AT = 10  # index of IoU 0.5 in IOU_THRESHOLDS


def _as_boxes(boxes: ArrayLike) -> np.ndarray:
    b = np.asarray(boxes, dtype=np.float64)
    if b.ndim != 2 or b.shape[1] != 4:
        raise ValueError(f"boxes must be an (N, 4) array of (x, y, w, h), got shape {b.shape}")
    return b


# --------------------------------------------------------------------------- per-frame errors


def rect_iou(boxes1: ArrayLike, boxes2: ArrayLike) -> np.ndarray:
    """IoU of paired (x, y, w, h) boxes, continuous convention (got10k ``rect_iou``); (N, 4), (N, 4) -> (N,).

    >>> rect_iou([[0, 0, 10, 10]], [[5, 0, 10, 10]]).round(4)
    array([0.3333])
    """
    a, b = _as_boxes(boxes1), _as_boxes(boxes2)
    if a.shape != b.shape:
        raise ValueError(f"paired boxes must have the same shape, got {a.shape} and {b.shape}")
    inter_w = np.maximum(np.minimum(a[:, 0] + a[:, 2], b[:, 0] + b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0)
    inter_h = np.maximum(np.minimum(a[:, 1] + a[:, 3], b[:, 1] + b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0)
    inter = inter_w * inter_h
    union = a[:, 2] * a[:, 3] + b[:, 2] * b[:, 3] - inter
    return np.clip(inter / (union + np.finfo(np.float64).eps), 0.0, 1.0)


def box_centers(boxes: ArrayLike) -> np.ndarray:
    """Centres (x + (w - 1) / 2, y + (h - 1) / 2) of (N, 4) boxes -> (N, 2)."""
    b = _as_boxes(boxes)
    return b[:, :2] + (b[:, 2:] - 1.0) / 2.0


def center_error(pred: ArrayLike, gt: ArrayLike) -> np.ndarray:
    """Euclidean distance between the centres of paired boxes, in pixels; (N, 4), (N, 4) -> (N,).

    >>> center_error([[0, 0, 10, 10]], [[3, 4, 10, 10]])
    array([5.])
    """
    return np.linalg.norm(box_centers(pred) - box_centers(gt), axis=1)


def normalized_center_error(pred: ArrayLike, gt: ArrayLike) -> np.ndarray:
    """Centre error with both centres divided component-wise by the ground-truth (w, h) (pytracking)."""
    g = _as_boxes(gt)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.linalg.norm((box_centers(pred) - box_centers(g)) / g[:, 2:], axis=1)


def valid_frames(gt: ArrayLike, visible: ArrayLike | None = None) -> np.ndarray:
    """(N,) bool: the ground truth is finite with w, h > 0 and, when ``visible`` is given, the target is visible."""
    g = _as_boxes(gt)
    with np.errstate(invalid="ignore"):
        valid = np.all(np.isfinite(g), axis=1) & (g[:, 2] > 0) & (g[:, 3] > 0)
    if visible is not None:
        visible = np.asarray(visible, dtype=bool).reshape(-1)
        if visible.shape != valid.shape:
            raise ValueError(f"visible has {visible.size} flags for {len(valid)} frames")
        valid &= visible
    return valid


@dataclass(frozen=True, eq=False)
class FrameErrors:
    """Per-frame errors of one sequence, invalid frames already set to fail every threshold.

    Attributes:
        iou: (N,) IoU, -1 on invalid frames.
        center: (N,) centre error in pixels, +inf on invalid frames.
        norm_center: (N,) normalised centre error, +inf on invalid frames.
        valid: (N,) bool, the frames that could be judged.
    """

    iou: np.ndarray
    center: np.ndarray
    norm_center: np.ndarray
    valid: np.ndarray


def frame_errors(pred: ArrayLike, gt: ArrayLike, visible: ArrayLike | None = None) -> FrameErrors:
    """Per-frame errors of a predicted sequence against its ground truth, with the module's conventions.

    Frame 0 of ``pred`` is replaced by the ground truth; invalid frames (see :func:`valid_frames`) get
    IoU -1 and infinite centre errors.
    """
    p, g = _as_boxes(pred).copy(), _as_boxes(gt)
    if p.shape != g.shape:
        raise ValueError(f"{len(p)} predicted boxes for {len(g)} ground-truth boxes")
    p[0] = g[0]
    valid = valid_frames(g, visible)
    with np.errstate(invalid="ignore"):
        iou = np.where(valid, rect_iou(p, g), -1.0)
        center = np.where(valid, center_error(p, g), np.inf)
        norm_center = np.where(valid, normalized_center_error(p, g), np.inf)
    return FrameErrors(iou, center, norm_center, valid)


# --------------------------------------------------------------------------- curves and speed


def success_curve(iou: ArrayLike, thresholds: np.ndarray = IOU_THRESHOLDS) -> np.ndarray:
    """Fraction of frames with IoU > t for each threshold t; (N,) -> (T,). NaN fails."""
    iou = np.asarray(iou, dtype=np.float64).reshape(-1, 1)
    return np.mean(iou > thresholds[None, :], axis=0)


def precision_curve(errors: ArrayLike, thresholds: np.ndarray = CENTER_THRESHOLDS) -> np.ndarray:
    """Fraction of frames with error <= t for each threshold t; (N,) -> (T,). NaN fails."""
    errors = np.asarray(errors, dtype=np.float64).reshape(-1, 1)
    return np.mean(errors <= thresholds[None, :], axis=0)


def sequence_fps(times: ArrayLike | None) -> float | None:
    """got10k's speed of one sequence: mean of 1/t over the frames with t > 0; None without any."""
    if times is None:
        return None
    t = np.asarray(times, dtype=np.float64).reshape(-1)
    t = t[t > 0]
    return float(np.mean(1.0 / t)) if len(t) else None


@dataclass(frozen=True, eq=False)
class SequenceScores:
    """The curves of one tracker on one sequence (fractions in [0, 1]) and its speed.

    Attributes:
        success: (21,) success curve on :data:`IOU_THRESHOLDS`.
        precision: (51,) precision curve on :data:`CENTER_THRESHOLDS`.
        norm_precision: (51,) normalised precision curve on :data:`NORM_CENTER_THRESHOLDS`.
        fps: frames per second (:func:`sequence_fps`), None when no times were recorded.
    """

    success: np.ndarray
    precision: np.ndarray
    norm_precision: np.ndarray
    fps: float | None = None

    @property
    def auc(self) -> float:
        """Success AUC, the mean of the success curve."""
        return float(np.mean(self.success))


def score_sequence(pred: ArrayLike, gt: ArrayLike, visible: ArrayLike | None = None,
                   times: ArrayLike | None = None) -> SequenceScores:
    """All curves of one predicted sequence; see the module docstring for the conventions."""
    errors = frame_errors(pred, gt, visible)
    return SequenceScores(success=success_curve(errors.iou),
                          precision=precision_curve(errors.center, CENTER_THRESHOLDS),
                          norm_precision=precision_curve(errors.norm_center, NORM_CENTER_THRESHOLDS),
                          fps=sequence_fps(times))
