"""The ATOM tracker: an online-learned classifier for position, IoU-Net refinement for the box.

Paper: Danelljan et al., "ATOM: Accurate Tracking by Overlap Maximization" (CVPR 2019). Reference code:
pytracking ``pytracking/tracker/atom/atom.py`` with ``parameter/atom/default.py``. The classifier's
mathematics (model, loss, Gauss-Newton + conjugate gradient, Fourier upsampling) is in
:mod:`~dimp_core.trackers.atom_classifier`; this module is the online logic around it.

First frame: 23 augmented patches (identity, 4 shifts, flip, 5 blurs, 12 rotations) go through the frozen
backbone; the stride-16 features of each (RMS-normalised) plus 7 dropout copies of the identity sample's
are the 30 training samples, with Gaussian labels at each sample's target centre. The projection P and the
filter f start random and are learned jointly (6 Gauss-Newton x 10 CG iterations); then P is frozen and
the samples are stored projected. Every frame: crop 5 target sizes around the last position, score
s = f * (P x) (18 x 18), Fourier-upsample to one value per patch pixel (288 x 288), localise with the
same thresholds as DiMP (:mod:`~dimp_core.trackers.localization`), refine with the IoU-Net exactly as
DiMP (:mod:`~dimp_core.trackers.refinement`), store the frame in the memory and, every 10th frame or at
once after a hard negative, run 5 CG iterations on f (one linearisation) over the whole memory.

State is kept in image pixels with x before y: ``center`` (cx, cy) (pixel-index centre, x + (w - 1)/2),
``size`` (w, h), and ``scale`` = image pixels per patch pixel of the search patch.

``info`` after ``update``: ``score`` (maximum of the upsampled map), ``flag``, ``score_map`` = the
upsampled map on which the peak was found (288 x 288, index j looks at patch pixel j - 0.5, see
:mod:`~dimp_core.trackers.atom_classifier`), ``score_map_raw`` = the raw 18 x 18 scores f * (P x),
``candidates`` = the IoU-Net's refined boxes in image pixels (or None), ``frame`` = the search patch's
:class:`~dimp_core.geometry.PatchFrame`. ``init_losses`` holds the first frame's loss at each
Gauss-Newton step.

Deviations from pytracking, none of which changes the algorithm:

- Patch geometry uses :class:`~dimp_core.geometry.PatchFrame` both ways (labels, localisation, boxes), so
  image -> patch -> image is exact; the reference assumes the patch centre is the rounded position.
- The distractor test of ``localize_advanced`` measures distances from the previous target position, as
  DiMP does; ATOM measures them from the patch centre, which is that position rounded to a pixel.
- The search scale is clamped to the reference's scale bounds also on the IoU-Net path, as in our DiMP.
- Randomness (augmentation shifts, dropout, the initial P and f, jittered boxes) comes from a seeded
  ``torch.Generator``, so the same seed gives the same boxes.
- ATOM returns the flag 'normal' as None; here it is 'normal'.
- Scoring during the joint optimisation folds P into the filter, f * (P x) = (f P) * x (the same numbers,
  4x fewer operations).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from dimp_core.geometry import PatchFrame, cxcywh_to_xywh, sample_patch
from dimp_core.nets.dimpnet import ATOMNet, normalize_image
from dimp_core.trackers.atom_classifier import (
    apply_filter,
    fourier_upsample,
    gaussian_labels,
    label_centers,
    project,
    rms_normalize,
    train_filter,
    train_joint,
)
from dimp_core.trackers.augmentation import AugmentationParams, augment, dropout_copies
from dimp_core.trackers.base import Tracker
from dimp_core.trackers.localization import LocalizationParams, localize_advanced
from dimp_core.trackers.memory import SampleMemory
from dimp_core.trackers.refinement import RefinementParams, jittered_boxes, optimize_boxes, select_box

ATOM_AUGMENTATION = AugmentationParams(
    blur_sigmas=((2.0, 0.2), (0.2, 2.0), (3.0, 1.0), (1.0, 3.0), (2.0, 2.0)),
    rotations=(5.0, -5.0, 10.0, -10.0, 20.0, -20.0, 30.0, -30.0, 45.0, -45.0, -60.0, 60.0),
)  # with the default flip, 4 relative shifts, random shift 1/3 and expansion 2: 23 patches


@dataclass(frozen=True)
class ATOMParams:
    """ATOM tracking parameters (pytracking ``parameter/atom/default.py``)."""

    image_sample_size: int = 288  # search patch side (18 * 16)
    search_area_scale: float = 5.0  # patch side = 5 sqrt(w h) in the image
    # online classifier
    compressed_dim: int = 64  # D, output channels of the projection P
    filter_size: int = 4  # k, the filter f is D x k x k
    output_sigma_factor: float = 1 / 4  # label sigma = this * sqrt(first-frame target area in feature cells)
    filter_reg: float = 1e-1  # lambda_f
    projection_reg: float = 1e-4  # lambda_P
    mlu_min: float = 0.05  # output activation MLU(0.05) in the loss (the scores used for tracking are raw)
    # first frame
    augmentation: AugmentationParams = field(default_factory=lambda: ATOM_AUGMENTATION)
    dropout_copies: int = 7  # dropout copies of the identity sample's features
    dropout_p: float = 0.2
    init_gn_iter: int = 6  # Gauss-Newton iterations on (f, P) ...
    init_cg_iter: int = 10  # ... with this many CG iterations each (pytracking: init_CG_iter = 60 in total)
    # model update
    sample_memory_size: int = 250
    learning_rate: float = 0.01  # memory weight of a new sample
    init_samples_minimum_weight: float = 0.25  # first-frame samples keep >= 25 % of the total weight
    train_skipping: int = 10  # optimise f every 10th frame ...
    cg_iter: int = 5  # ... with one linearisation and 5 CG iterations
    hard_negative_cg_iter: int = 5  # CG iterations right after a hard negative
    hard_negative_learning_rate: float = 0.02
    update_classifier: bool = True
    # localisation and refinement
    score_upsample_factor: int = 1  # upsampled score map = this * image_sample_size per side
    score_nyquist_weight: float = 1.0  # 1.0: pytracking's Fourier series; 0.5: exact interpolation
    localization: LocalizationParams = field(default_factory=LocalizationParams)
    refinement: RefinementParams = field(default_factory=RefinementParams)
    use_iou_net: bool = True
    update_scale_when_uncertain: bool = True
    target_inside_ratio: float = 0.2  # the centre may leave the image by at most (0.5 - 0.2) target sizes
    seed: int = 0  # for the augmentation shifts, dropout, initial P and f, and jittered boxes


class ATOMTracker(Tracker):
    """ATOM's online tracking on top of an :class:`~dimp_core.nets.dimpnet.ATOMNet` (backbone + IoU-Net)."""

    name = "atom"

    def __init__(self, net: ATOMNet, params: ATOMParams = ATOMParams(), device: torch.device | str = "cpu",
                 name: str = "atom") -> None:
        super().__init__()
        self.net = net.to(device).eval()
        self.params, self.device, self.name = params, torch.device(device), name
        self.feature_layer = net.bb_regressor_layers[1]  # the stride-16 layer (ResNet-18 layer3)
        for p in self.net.parameters():
            p.requires_grad_(False)

    # ------------------------------------------------------------------- helpers

    def _features(self, patches: Tensor) -> tuple[dict[str, Tensor], Tensor]:
        """(B, 3, S, S) patches in [0, 255] -> backbone features and RMS-normalised x (B, C, h, w)."""
        feat = self.net.extract_backbone_features(normalize_image(patches.to(self.device)))
        return feat, rms_normalize(feat[self.feature_layer])

    def _labels(self, boxes: Tensor) -> Tensor:
        """Gaussian labels (M, h, w) at the centres of (M, 4) patch boxes."""
        return gaussian_labels(label_centers(boxes, self.stride), self.sigma, self.feature_size)

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
        boxes = frame.box_to_patch(self._box()).float() + torch.cat([shifts, torch.zeros_like(shifts)], dim=1)

        feat, x = self._features(patches)  # x: (M, C, h, w)
        if p.dropout_copies > 0:
            x = torch.cat([x, dropout_copies(x[0], p.dropout_copies, p.dropout_p, self.generator)])
            boxes = torch.cat([boxes, boxes[:1].expand(p.dropout_copies, 4)])
        boxes = boxes.to(self.device)

        # labels: sigma from the first-frame target size in feature cells, fixed for the sequence
        self.feature_size = (x.shape[-2], x.shape[-1])
        self.stride = p.image_sample_size / x.shape[-1]
        self.sigma = p.output_sigma_factor * math.sqrt(float(self.base_size.prod())) / self.stride

        # joint Gauss-Newton on the filter f and the projection P from a seeded random start
        c, d, k = x.shape[1], p.compressed_dim, p.filter_size
        P = torch.randn(d, c, 1, 1, generator=self.generator) / math.sqrt(c)  # standard deviation 1/sqrt(C)
        f = torch.randn(1, d, k, k, generator=self.generator) / (d * k * k)  # standard deviation 1/numel(f)
        weights = x.new_full((x.shape[0],), 1 / x.shape[0])
        self.filter, self.projection, self.init_losses = train_joint(
            x, self._labels(boxes), weights, f.to(self.device), P.to(self.device), p.filter_reg,
            p.projection_reg, p.mlu_min, p.init_gn_iter, p.init_cg_iter)
        self.memory = SampleMemory(project(x, self.projection), boxes, p.sample_memory_size, p.learning_rate,
                                   p.init_samples_minimum_weight)

        if p.use_iou_net:  # modulation from the identity sample only (iounet_augmentation False)
            iou_feat = tuple(t[:1] for t in self.net.iou_features(feat))
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
        x = project(x, self.projection)  # (1, D, h, w)
        raw = apply_filter(x, self.filter)[0]  # (h, w)
        up = p.score_upsample_factor
        scores = fourier_upsample(raw, (up * p.image_sample_size,) * 2, p.score_nyquist_weight)

        # localisation on the upsampled map: one cell = 1 / up patch pixels; index j looks at patch pixel
        # j / up - 0.5, i.e. the map's centre (size - 1) / 2 is half a cell right of the patch centre
        cell = frame.scale / up
        prev = (self.center - torch.tensor(frame.center, dtype=torch.float64)) / cell + 0.5
        loc = localize_advanced(scores.float().cpu(), (float(prev[0]), float(prev[1])),
                                (float(self.size[0] / cell), float(self.size[1] / cell)), p.localization)
        candidates = None
        if loc.flag != "not_found":
            disp = torch.tensor(loc.displacement, dtype=torch.float64) - 0.5
            new_center = torch.tensor(frame.center, dtype=torch.float64) + disp * cell
            inside = (p.target_inside_ratio - 0.5) * self.size
            self.center = torch.maximum(torch.minimum(new_center, self.image_size - inside), inside)
            if p.use_iou_net:
                candidates = self._refine(feat, frame, update_scale=p.update_scale_when_uncertain
                                          or loc.flag != "uncertain")

        if p.update_classifier:
            self._update_classifier(x[0], frame, loc.flag)
        self.info = {"score": loc.max_score, "flag": loc.flag, "score_map": scores.float().cpu().numpy(),
                     "score_map_raw": raw.float().cpu().numpy(), "candidates": candidates, "frame": frame}
        return self._box().numpy()

    def _update_classifier(self, sample: Tensor, frame: PatchFrame, flag: str) -> None:
        """Store the frame (unless lost or uncertain); every train_skipping-th frame or after a hard negative,
        refine f on the memory. As in the reference, the schedule does not depend on the flag otherwise."""
        p = self.params
        hard = flag == "hard_negative"
        if flag in ("normal", "hard_negative"):
            box_in_patch = frame.box_to_patch(self._box()).float().to(self.device)
            self.memory.add(sample, box_in_patch, p.hard_negative_learning_rate if hard else None)
        num_iter = p.hard_negative_cg_iter if hard else (p.cg_iter if (self.frame_num - 1) % p.train_skipping == 0
                                                         else 0)
        if num_iter > 0:
            samples, boxes, weights = self.memory.stored()
            self.filter, _ = train_filter(samples, self._labels(boxes), weights, self.filter, p.filter_reg,
                                          p.mlu_min, num_iter)

    def _refine(self, feat: dict[str, Tensor], frame: PatchFrame, update_scale: bool) -> np.ndarray | None:
        """IoU-Net refinement of position and size (as DiMP); returns the refined candidate boxes in image pixels."""
        p = self.params.refinement
        boxes = jittered_boxes(frame.box_to_patch(self._box()).float(), p, self.generator).to(self.device)
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
            self.scale = self._clamp_scale(math.sqrt(float(self.size.prod() / self.base_size.prod())))
        return candidates
