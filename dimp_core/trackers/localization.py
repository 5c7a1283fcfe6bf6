"""Where is the target in a score map, and can we trust it? ATOM's and DiMP's "advanced" localisation.

pytracking ``localize_advanced`` (``pytracking/tracker/dimp/dimp.py``, shared with ATOM). Given a score
map, the strongest peak is the target unless:

- it is below ``target_not_found_threshold`` (0.25): the target is lost (``not_found``);
- a second peak outside a neighbourhood of 2.2 target sizes around the first is almost as strong
  (> ``distractor_threshold`` 0.8 of it): the peak closer to the previous target position wins if only
  one of them is within ``displacement_scale`` (0.8) times half the map diagonal of it (``hard_negative``,
  the other peak is a distractor to learn from), otherwise the first peak is kept but marked ``uncertain``
  (no model update);
- a second peak is merely notable (> ``hard_negative_threshold`` 0.5 of the first, and above the
  not-found threshold): ``hard_negative``, update the model at once with a higher learning rate.

``window_output`` (off in DiMP-18/50 and ATOM's defaults, on in pytracking's VOT variants of DiMP) multiplies the
map by a centred cosine window before the first peak is taken: a motion prior that favours the previous
position (the map centre). As in pytracking's DiMP, which applies the window only together with
``perform_hn_without_windowing``, the second peak (hard negatives, distractors) is searched in the raw map, and
the first peak's score, the one compared with every threshold, is the windowed one.

Everything is measured in score-map cells, (x, y) order; displacements are from the map centre.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class LocalizationParams:
    target_not_found_threshold: float = 0.25  # raw max score below this: target lost
    distractor_threshold: float = 0.8  # second peak above this fraction of the first: a distractor
    hard_negative_threshold: float = 0.5  # second peak above this fraction: a hard negative
    target_neighborhood_scale: float = 2.2  # masked neighbourhood, in target sizes
    displacement_scale: float = 0.8  # (pytracking's "dispalcement_scale") times half the map diagonal
    window_output: bool = False  # cosine window on the map for the target peak (see the module docstring)


@dataclass(frozen=True)
class Localization:
    """Result of :func:`localize_advanced`: displacement (x, y) in cells from the map centre, the flag,
    the two peak scores and both peaks' displacements (for visualisation)."""

    displacement: tuple[float, float]
    flag: str
    max_score: float
    second_score: float
    peak1: tuple[float, float]
    peak2: tuple[float, float] | None


def _argmax2d(scores: Tensor) -> tuple[float, int, int]:
    """(max, row, col) of a 2-D map; the first maximum in row-major order, as torch.max."""
    value, index = torch.max(scores.reshape(-1), dim=0)
    row, col = divmod(int(index), scores.shape[-1])
    return float(value), row, col


def hann2d(height: int, width: int) -> Tensor:
    """Centred 2-D cosine window, pytracking's ``dcf.hann2d(centered=True)``: the outer product of
    w(n) = 0.5 (1 - cos(2 pi n / (N + 1))), n = 1..N, which is 1 at the centre of an odd-sized map."""

    def hann1d(size: int) -> Tensor:
        n = torch.arange(1, size + 1, dtype=torch.float32)
        return 0.5 * (1 - torch.cos(2 * math.pi * n / (size + 1)))

    return hann1d(height)[:, None] * hann1d(width)[None, :]  # (H, W)


def localize_advanced(scores: Tensor, prev_displacement: tuple[float, float], target_size: tuple[float, float],
                      params: LocalizationParams = LocalizationParams()) -> Localization:
    """Find the target peak in ``scores`` and classify the situation (see the module docstring).

    Args:
        scores: (H, W) raw score map (19 x 19 for DiMP).
        prev_displacement: (x, y) previous target centre relative to the map centre, in cells.
        target_size: (w, h) current target size in cells.
        params: the thresholds.

    Returns:
        A :class:`Localization`; ``displacement`` is the chosen peak's offset from the map centre in cells.
    """
    height, width = scores.shape
    centre = ((width - 1) / 2, (height - 1) / 2)
    raw = scores
    if params.window_output:
        scores = scores * hann2d(height, width).to(scores)
    max1, r1, c1 = _argmax2d(scores)
    disp1 = (c1 - centre[0], r1 - centre[1])
    if max1 < params.target_not_found_threshold:
        return Localization(disp1, "not_found", max1, float("nan"), disp1, None)

    # mask the target neighbourhood (Python's round, as the reference) and look for a second peak
    neigh_w = params.target_neighborhood_scale * target_size[0]
    neigh_h = params.target_neighborhood_scale * target_size[1]
    top, bottom = max(round(r1 - neigh_h / 2), 0), min(round(r1 + neigh_h / 2 + 1), height)
    left, right = max(round(c1 - neigh_w / 2), 0), min(round(c1 + neigh_w / 2 + 1), width)
    masked = raw.clone()  # hard negatives are searched without the window
    masked[top:bottom, left:right] = 0
    max2, r2, c2 = _argmax2d(masked)
    disp2 = (c2 - centre[0], r2 - centre[1])

    def result(disp: tuple[float, float], flag: str) -> Localization:
        return Localization(disp, flag, max1, max2, disp1, disp2)

    if max2 > params.distractor_threshold * max1:
        dist1 = math.hypot(disp1[0] - prev_displacement[0], disp1[1] - prev_displacement[1])
        dist2 = math.hypot(disp2[0] - prev_displacement[0], disp2[1] - prev_displacement[1])
        threshold = params.displacement_scale * math.sqrt(height * width) / 2
        if dist2 > threshold and dist1 < threshold:
            return result(disp1, "hard_negative")
        if dist2 < threshold and dist1 > threshold:
            return result(disp2, "hard_negative")
        return result(disp1, "uncertain")
    if max2 > params.hard_negative_threshold * max1 and max2 > params.target_not_found_threshold:
        return result(disp1, "hard_negative")
    return result(disp1, "normal")
