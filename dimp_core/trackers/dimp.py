"""The DiMP tracker: the online logic around the network (pytracking ``pytracking/tracker/dimp/dimp.py``).

First frame: 13 augmented patches (+ 2 dropout copies of the identity sample's features) -> the model
predictor learns the target filter in 10 steepest-descent iterations; the IoU-Net's modulation vector
comes from the identity sample. Every frame: crop 5 target sizes around the last position (288 px),
score with the filter, localise (:mod:`~dimp_core.trackers.localization`), refine position and size with
the IoU-Net (:mod:`~dimp_core.trackers.refinement`), store the frame in the sample memory and, every 20th
frame or right after a hard negative, run 2 (or 1) more optimiser iterations from the current filter.

State is kept in image pixels with x before y: ``center`` (cx, cy) (pixel-index centre, x + (w - 1)/2),
``size`` (w, h), and ``scale`` = image pixels per patch pixel of the search patch.

Deviations from pytracking, each for consistency or robustness (not visible in accuracy):

- Patch geometry uses :class:`~dimp_core.geometry.PatchFrame` both ways, so image -> patch -> image is an
  exact round trip (pytracking maps the refined box back with the continuous centre x + w/2 but forward
  with x + (w-1)/2, a half-patch-pixel drift per frame).
- The search scale is clamped to the reference's own scale bounds (10 px .. image size) also on the IoU
  path, so a target that shrinks to a few pixels or leaves the view cannot make the crop degenerate.
- Randomness (augmentation shifts, dropout, jittered boxes) comes from a seeded ``torch.Generator``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from dimp_core.geometry import PatchFrame, cxcywh_to_xywh, sample_patch
from dimp_core.nets.dimpnet import DiMPNet, normalize_image
from dimp_core.trackers.augmentation import AugmentationParams, augment, dropout_copies
from dimp_core.trackers.base import Tracker
from dimp_core.trackers.localization import LocalizationParams, localize_advanced
from dimp_core.trackers.memory import SampleMemory
from dimp_core.trackers.refinement import RefinementParams, jittered_boxes, optimize_boxes, select_box


@dataclass(frozen=True)
class DiMPParams:
    """DiMP-18/50 tracking parameters (pytracking ``parameter/dimp/dimp18.py``; both files are identical)."""

    image_sample_size: int = 288  # search patch side (18 * 16)
    search_area_scale: float = 5.0  # patch side = 5 sqrt(w h) in the image
    # first frame
    augmentation: AugmentationParams = field(default_factory=AugmentationParams)
    dropout_copies: int = 2  # dropout copies of the identity sample's classification features
    dropout_p: float = 0.2
    net_opt_iter: int = 10  # steepest-descent iterations on the first frame
    # model update
    sample_memory_size: int = 50
    learning_rate: float = 0.01  # memory weight of a new sample
    init_samples_minimum_weight: float = 0.25  # first-frame samples keep >= 25 % of the total weight
    train_skipping: int = 20  # optimise every 20th frame ...
    net_opt_update_iter: int = 2  # ... with 2 iterations
    net_opt_hn_iter: int = 1  # iterations right after a hard negative
    hard_negative_learning_rate: float = 0.02
    update_classifier: bool = True
    # localisation and refinement
    localization: LocalizationParams = field(default_factory=LocalizationParams)
    refinement: RefinementParams = field(default_factory=RefinementParams)
    use_iou_net: bool = True
    update_scale_when_uncertain: bool = True
    target_inside_ratio: float = 0.2  # the centre may leave the image by at most (0.5 - 0.2) target sizes
    seed: int = 0  # for the augmentation shifts, dropout and jittered boxes


class DiMPTracker(Tracker):
    """DiMP's online tracking on top of a :class:`~dimp_core.nets.dimpnet.DiMPNet`."""

    name = "dimp"

    def __init__(self, net: DiMPNet, params: DiMPParams = DiMPParams(), device: torch.device | str = "cpu",
                 name: str = "dimp") -> None:
        super().__init__()
        self.net = net.to(device).eval()
        self.params, self.device, self.name = params, torch.device(device), name
        for p in self.net.parameters():
            p.requires_grad_(False)

    # ------------------------------------------------------------------- helpers

    def _features(self, patches: Tensor) -> tuple[dict[str, Tensor], Tensor]:
        """(B, 3, S, S) patches in [0, 255] -> backbone features and classification features (B, 1, C, h, w)."""
        feat = self.net.extract_backbone_features(normalize_image(patches.to(self.device)))
        return feat, self.net.classification_features(feat, num_sequences=1)

    def _box(self) -> Tensor:
        return cxcywh_to_xywh(torch.cat([self.center, self.size]))

    def _clamp_scale(self, scale: float) -> float:
        return float(min(max(scale, self.min_scale), self.max_scale))

    # ------------------------------------------------------------------- first frame

    @torch.no_grad()
    def initialize(self, image: np.ndarray, box: np.ndarray) -> None:
        p = self.params
        self.generator = torch.Generator().manual_seed(p.seed)
        im = torch.from_numpy(image).permute(2, 0, 1)  # (3, H, W) uint8
        self.image_size = torch.tensor([image.shape[1], image.shape[0]], dtype=torch.float64)  # (W, H)
        self.center = torch.tensor([box[0] + (box[2] - 1) / 2, box[1] + (box[3] - 1) / 2], dtype=torch.float64)
        self.size = torch.tensor([box[2], box[3]], dtype=torch.float64)
        self.scale = math.sqrt(float(self.size.prod()) * p.search_area_scale ** 2) / p.image_sample_size
        self.base_size = self.size / self.scale
        self.min_scale = float((10 / self.base_size).max())
        self.max_scale = float((self.image_size / self.base_size).min())
        self.frame_num = 1

        # augmented samples from a patch of twice the size around the rounded centre
        big_size = int(p.image_sample_size * p.augmentation.expansion_factor)
        big_size += (big_size - p.image_sample_size) % 2
        center = (float(self.center[0].round()), float(self.center[1].round()))
        big, big_frame = sample_patch(im, center, self.scale, big_size)
        patches, shifts = augment(big, p.image_sample_size, p.augmentation, self.generator)
        frame = PatchFrame(big_frame.center, big_frame.scale, p.image_sample_size)  # the identity crop
        target_box = frame.box_to_patch(self._box()).float()
        boxes = target_box + torch.cat([shifts, torch.zeros_like(shifts)], dim=1)  # (M, 4)

        feat, x = self._features(patches)  # x: (M, 1, C, h, w)
        if p.dropout_copies > 0:
            drop = dropout_copies(x[0, 0], p.dropout_copies, p.dropout_p, self.generator)  # (n, C, h, w)
            x = torch.cat([x, drop[:, None]])
            boxes = torch.cat([boxes, boxes[:1].expand(p.dropout_copies, 4)])
        boxes = boxes.to(self.device)
        trace = self.net.classifier.predict_filter(x, boxes[:, None], num_iter=p.net_opt_iter, compute_losses=True)
        self.filter = trace.filter
        self.init_trace = trace  # for notebooks: every iterate, loss and step length
        self.memory = SampleMemory(x[:, 0], boxes, p.sample_memory_size, p.learning_rate,
                                   p.init_samples_minimum_weight)

        if p.use_iou_net:  # modulation from the identity sample only (iounet_augmentation False)
            iou_feat = tuple(f[:1] for f in self.net.iou_features(feat))
            modulation = self.net.bb_regressor.get_modulation(iou_feat, boxes[:1])
            self.modulation = tuple(m.reshape(1, -1) for m in modulation)
        self.info = {"score": 1.0, "flag": "normal"}

    # ------------------------------------------------------------------- every frame

    @torch.no_grad()
    def track(self, image: np.ndarray) -> np.ndarray:
        p = self.params
        self.frame_num += 1
        im = torch.from_numpy(image).permute(2, 0, 1)
        patch, frame = sample_patch(im, (float(self.center[0]), float(self.center[1])), self.scale,
                                    p.image_sample_size)
        feat, x = self._features(patch[None])
        scores = self.net.classifier.classify(self.filter, x)[0, 0]  # (19, 19)

        # localisation in score cells: one cell = image_sample_size / (score size - 1) patch pixels
        cell = frame.scale * p.image_sample_size / (scores.shape[-1] - 1)
        prev = (self.center - torch.tensor(frame.center, dtype=torch.float64)) / cell
        loc = localize_advanced(scores.float().cpu(), (float(prev[0]), float(prev[1])),
                                (float(self.size[0] / cell), float(self.size[1] / cell)), p.localization)
        candidates = None
        if loc.flag != "not_found":
            new_center = torch.tensor(frame.center, dtype=torch.float64) + torch.tensor(loc.displacement) * cell
            inside = (p.target_inside_ratio - 0.5) * self.size
            self.center = torch.maximum(torch.minimum(new_center, self.image_size - inside), inside)
            if p.use_iou_net:
                candidates = self._refine(feat, frame, update_scale=p.update_scale_when_uncertain
                                          or loc.flag != "uncertain")

        if p.update_classifier and loc.flag in ("normal", "hard_negative"):
            hard = loc.flag == "hard_negative"
            box_in_patch = frame.box_to_patch(self._box()).float().to(self.device)
            self.memory.add(x[0, 0], box_in_patch, p.hard_negative_learning_rate if hard else None)
            num_iter = p.net_opt_hn_iter if hard else (p.net_opt_update_iter
                                                       if (self.frame_num - 1) % p.train_skipping == 0 else 0)
            if num_iter > 0:
                samples, boxes, weights = self.memory.stored()
                trace = self.net.classifier.filter_optimizer(self.filter, samples[:, None], boxes[:, None],
                                                             sample_weight=weights, num_iter=num_iter,
                                                             compute_losses=False)
                self.filter = trace.filter

        self.info = {"score": loc.max_score, "flag": loc.flag, "score_map": scores.float().cpu().numpy(),
                     "candidates": candidates, "frame": frame}
        return self._box().numpy()

    def _refine(self, feat: dict[str, Tensor], frame: PatchFrame, update_scale: bool) -> np.ndarray | None:
        """IoU-Net refinement of position and size; returns the refined candidate boxes in image pixels."""
        p = self.params.refinement
        init_box = frame.box_to_patch(self._box()).float()
        boxes = jittered_boxes(init_box, p, self.generator).to(self.device)
        iou_feat = self.net.bb_regressor.get_iou_feat(self.net.iou_features(feat))
        refined, iou = optimize_boxes(self.net.bb_regressor, self.modulation, iou_feat, boxes, p)
        chosen = select_box(refined.cpu(), iou.cpu(), p)
        candidates = frame.box_to_image(refined.cpu().double()).numpy()
        if chosen is None:
            return candidates
        box = frame.box_to_image(chosen[0].double())
        self.center = box[:2] + (box[2:] - 1) / 2
        self.size = box[2:]
        if update_scale:
            new_scale = math.sqrt(float(self.size.prod() / self.base_size.prod()))
            self.scale = self._clamp_scale(new_scale)
        return candidates

