"""How discriminative is a tracker's first-frame model on later frames? A one-shot detection test.

A tracking AUC mixes everything: the classifier, the box refinement, the online updates, and the chaos of a
single wrong frame (one jump to a look-alike can cost a whole sequence). This test isolates the classifier.
Initialise the tracker on frame 0; then, with no online update, score a search patch centred on the ground-truth
target in every ``every``-th frame where the target is visible, and ask:

- **hit**: does the highest score lie on the target, i.e. inside its ground-truth box?
- **distractor ratio** r = max(scores outside 2.2 target sizes) / max(scores within them), the quantity the
  localisation compares with 0.8 and 0.5 (:mod:`~dimp_core.trackers.localization`): r < 0.5 is a clean map,
  r > 1 a map whose strongest peak is elsewhere.

Every tracker is scored on the same frames at the same patch positions, so per-sequence differences pair up
(:func:`dimp_core.evaluation.significance.paired_bootstrap`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

NEIGHBOURHOOD = 2.2  # target sizes masked around the target, as ``target_neighborhood_scale``


@dataclass(frozen=True)
class FrameDiscrimination:
    """Per tested frame: its index, whether the top score is on the target, and the distractor ratio."""

    frames: np.ndarray  # (K,) int
    hit: np.ndarray  # (K,) bool
    ratio: np.ndarray  # (K,) float

    def summary(self) -> dict[str, float]:
        return {"frames": int(len(self.frames)), "hit_rate": float(self.hit.mean()) if len(self.hit) else np.nan,
                "median_ratio": float(np.median(self.ratio)) if len(self.ratio) else np.nan}


def _offsets(n: int, sample_size: int) -> torch.Tensor:
    """Patch-pixel offset from the patch centre of each of the ``n`` score-map cells along one axis."""
    return (torch.arange(n, dtype=torch.float64) - (n - 1) / 2) * sample_size / (n - 1)


def score_map_test(scores: torch.Tensor, scale: float, sample_size: int, target_size: np.ndarray
                   ) -> tuple[bool, float]:
    """(hit, distractor ratio) of an (H, W) score map whose centre is the target centre.

    ``scale`` is image pixels per patch pixel and ``target_size`` the (w, h) ground truth in image pixels.
    """
    height, width = scores.shape
    dy = _offsets(height, sample_size)[:, None] * scale  # (H, 1) image pixels from the target centre
    dx = _offsets(width, sample_size)[None, :] * scale  # (1, W)
    peak = int(torch.argmax(scores))
    row, col = divmod(peak, width)
    hit = abs(float(dx[0, col])) <= target_size[0] / 2 and abs(float(dy[row, 0])) <= target_size[1] / 2
    near = (dx.abs() <= NEIGHBOURHOOD * target_size[0] / 2) & (dy.abs() <= NEIGHBOURHOOD * target_size[1] / 2)
    inside, outside = scores[near].max(), scores[~near]
    if outside.numel() == 0:  # the neighbourhood covers the whole patch: nothing to confuse the target with
        return hit, 0.0
    return hit, float(outside.max() / inside) if float(inside) > 0 else float("inf")


def first_frame_discrimination(tracker: Any, seq: Any, every: int = 5) -> FrameDiscrimination:
    """Initialise ``tracker`` (a learned tracker with ``score_patch``) on ``seq``'s first frame and test every
    ``every``-th later frame where the target is visible and annotated (see the module docstring)."""
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    gt = np.asarray(seq.ground_truth, dtype=np.float64)
    tracker.init(seq.frame(0), gt[0])
    sample_size = tracker.params.image_sample_size
    frames, hits, ratios = [], [], []
    for k in range(every, len(seq), every):
        if not np.isfinite(gt[k]).all() or (seq.visible is not None and not seq.visible[k]):
            continue
        center = (float(gt[k, 0] + (gt[k, 2] - 1) / 2), float(gt[k, 1] + (gt[k, 3] - 1) / 2))
        scores, frame = tracker.score_patch(seq.frame(k), center)
        hit, ratio = score_map_test(scores, frame.scale, sample_size, gt[k, 2:])
        frames.append(k)
        hits.append(hit)
        ratios.append(ratio)
    return FrameDiscrimination(np.asarray(frames, dtype=int), np.asarray(hits, dtype=bool),
                               np.asarray(ratios, dtype=float))
