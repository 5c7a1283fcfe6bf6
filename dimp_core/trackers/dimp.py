"""The DiMP tracker: the online logic around the network (pytracking ``pytracking/tracker/dimp/dimp.py``).

First frame: 13 augmented patches (+ 2 dropout copies of the identity sample's features) -> the model
predictor learns the target filter in 10 steepest-descent iterations; the IoU-Net's modulation vector
comes from the identity sample. Every frame: crop 5 target sizes around the last position (288 px),
score with the filter, localise (:mod:`~dimp_core.trackers.localization`), refine position and size with
the IoU-Net (:mod:`~dimp_core.trackers.refinement`), store the frame in the sample memory and, every 20th
frame or right after a hard negative, run 2 (or 1) more optimiser iterations from the current filter.

The target state (centre, size, scale) is a :class:`~dimp_core.trackers.target.TargetState`, shared with ATOM.

Deviations from pytracking, each for consistency or robustness (not visible in accuracy):

- Patch geometry uses :class:`~dimp_core.geometry.PatchFrame` both ways, so image -> patch -> image is an
  exact round trip (pytracking maps the refined box back with the continuous centre x + w/2 but forward
  with x + (w-1)/2, a half-patch-pixel drift per frame).
- The search scale is clamped to the reference's own scale bounds (10 px .. image size) also on the IoU
  path, so a target that shrinks to a few pixels or leaves the view cannot make the crop degenerate.
- Randomness (augmentation shifts, dropout, jittered boxes) comes from a seeded ``torch.Generator``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from dimp_core.geometry import sample_patch
from dimp_core.nets.dimpnet import DiMPNet, normalize_image
from dimp_core.trackers.augmentation import AugmentationParams, dropout_copies
from dimp_core.trackers.base import Tracker
from dimp_core.trackers.localization import LocalizationParams, localize_advanced
from dimp_core.trackers.memory import SampleMemory
from dimp_core.trackers.refinement import RefinementParams
from dimp_core.trackers.target import TargetState, first_frame_samples, iou_modulation, refine_target


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

    # ------------------------------------------------------------------- first frame

    @torch.no_grad()
    def initialize(self, image: np.ndarray, box: np.ndarray) -> None:
        p = self.params
        self.generator = torch.Generator().manual_seed(p.seed)
        self.state = TargetState.from_box(box, image.shape, p.search_area_scale, p.image_sample_size)
        self.frame_num = 1

        patches, boxes = first_frame_samples(torch.from_numpy(image).permute(2, 0, 1), self.state,
                                             p.image_sample_size, p.augmentation, self.generator)
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
            self.modulation = iou_modulation(self.net, feat, boxes[:1])
        self.info = {"score": 1.0, "flag": "normal"}

    # ------------------------------------------------------------------- every frame

    @torch.no_grad()
    def track(self, image: np.ndarray) -> np.ndarray:
        p, state = self.params, self.state
        self.frame_num += 1
        im = torch.from_numpy(image).permute(2, 0, 1)
        patch, frame = sample_patch(im, (float(state.center[0]), float(state.center[1])), state.scale,
                                    p.image_sample_size)
        feat, x = self._features(patch[None])
        scores = self.net.classifier.classify(self.filter, x)[0, 0]  # (19, 19)

        # localisation in score cells: one cell = image_sample_size / (score size - 1) patch pixels
        cell = frame.scale * p.image_sample_size / (scores.shape[-1] - 1)
        centre = torch.tensor(frame.center, dtype=torch.float64)
        prev = (state.center - centre) / cell
        loc = localize_advanced(scores.float().cpu(), (float(prev[0]), float(prev[1])),
                                (float(state.size[0] / cell), float(state.size[1] / cell)), p.localization)
        candidates = None
        if loc.flag != "not_found":
            state.move_to(centre + torch.tensor(loc.displacement) * cell, p.target_inside_ratio)
            if p.use_iou_net:
                update_scale = p.update_scale_when_uncertain or loc.flag != "uncertain"
                candidates = refine_target(self.net, self.modulation, feat, frame, state, p.refinement,
                                           self.generator, update_scale)

        if p.update_classifier and loc.flag in ("normal", "hard_negative"):
            hard = loc.flag == "hard_negative"
            box_in_patch = frame.box_to_patch(state.box()).float().to(self.device)
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
        return state.box().numpy()
