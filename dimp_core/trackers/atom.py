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

The target state (centre, size, scale) is a :class:`~dimp_core.trackers.target.TargetState`, shared with DiMP,
as are the first-frame patches and the IoU-Net refinement.

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

from dimp_core.geometry import PatchFrame, sample_patch
from dimp_core.nets.dimpnet import ATOMNet, normalize_image
from dimp_core.profiling import accel
from dimp_core.profiling.timer import stage
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
from dimp_core.trackers.augmentation import AugmentationParams, dropout_copies
from dimp_core.trackers.base import Tracker
from dimp_core.trackers.localization import LocalizationParams, localize_advanced
from dimp_core.trackers.memory import SampleMemory
from dimp_core.trackers.refinement import RefinementParams, optimize_boxes
from dimp_core.trackers.target import (
    TargetState,
    first_frame_samples,
    iou_modulation,
    iou_test_features,
    refine_target,
)

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
    # speed knobs, as DiMPParams' (rounding only)
    fuse_batchnorm: bool = True  # BatchNorm folded into the convolutions of an inference copy of the network
    channels_last: bool = True  # NHWC weights and patches


class ATOMTracker(Tracker):
    """ATOM's online tracking on top of an :class:`~dimp_core.nets.dimpnet.ATOMNet` (backbone + IoU-Net)."""

    name = "atom"

    def __init__(self, net: ATOMNet, params: ATOMParams = ATOMParams(), device: torch.device | str = "cpu",
                 name: str = "atom") -> None:
        super().__init__()
        self.params, self.device, self.name = params, torch.device(device), name
        self.net = accel.inference_copy(net, self.device, params.fuse_batchnorm, params.channels_last)
        self.feature_layer = net.bb_regressor_layers[1]  # the stride-16 layer (ResNet-18 layer3)

    # ------------------------------------------------------------------- helpers

    def _features(self, patches: Tensor) -> tuple[dict[str, Tensor], Tensor]:
        """(B, 3, S, S) patches in [0, 255] -> backbone features and RMS-normalised x (B, C, h, w)."""
        images = normalize_image(patches.to(self.device))
        if self.params.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with stage("backbone"):
            feat = self.net.extract_backbone_features(images)
        with stage("classification_features"):
            return feat, rms_normalize(feat[self.feature_layer])

    def _labels(self, boxes: Tensor) -> Tensor:
        """Gaussian labels (M, h, w) at the centres of (M, 4) patch boxes."""
        return gaussian_labels(label_centers(boxes, self.stride), self.sigma, self.feature_size)

    # ------------------------------------------------------------------- first frame

    @torch.no_grad()
    def initialize(self, image: np.ndarray, box: np.ndarray) -> None:
        p = self.params
        self.generator = torch.Generator().manual_seed(p.seed)
        self.state = TargetState.from_box(box, image.shape, p.search_area_scale, p.image_sample_size)
        self.frame_num = 1
        patches, boxes = first_frame_samples(torch.from_numpy(image).permute(2, 0, 1), self.state,
                                             p.image_sample_size, p.augmentation, self.generator)

        feat, x = self._features(patches)  # x: (M, C, h, w)
        if p.dropout_copies > 0:
            x = torch.cat([x, dropout_copies(x[0], p.dropout_copies, p.dropout_p, self.generator)])
            boxes = torch.cat([boxes, boxes[:1].expand(p.dropout_copies, 4)])
        boxes = boxes.to(self.device)

        # labels: sigma from the first-frame target size in feature cells, fixed for the sequence
        self.feature_size = (x.shape[-2], x.shape[-1])
        self.stride = p.image_sample_size / x.shape[-1]
        self.sigma = p.output_sigma_factor * math.sqrt(float(self.state.base_size.prod())) / self.stride

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
            self.modulation = iou_modulation(self.net, feat, boxes[:1])
        self.info = {"score": 1.0, "flag": "normal"}

    # ------------------------------------------------------------------- every frame

    @torch.no_grad()
    def score_patch(self, image: np.ndarray, center: tuple[float, float]) -> tuple[Tensor, PatchFrame]:
        """The current classifier's raw scores (upsampled, S x S) on a search patch centred on ``center`` (x, y) at
        the current scale, and where that patch sits. For analysis: the tracker's state is left as it is."""
        p = self.params
        im = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)
        patch, frame = sample_patch(im, center, self.state.scale, p.image_sample_size)
        _, x = self._features(patch[None])
        raw = apply_filter(project(x, self.projection), self.filter)[0]  # (h, w)
        up = (p.score_upsample_factor * p.image_sample_size,) * 2
        return fourier_upsample(raw, up, p.score_nyquist_weight).float().cpu(), frame

    @torch.no_grad()
    def track(self, image: np.ndarray) -> np.ndarray:
        p, state = self.params, self.state
        self.frame_num += 1
        with stage("patch_extraction"):
            im = torch.from_numpy(image).permute(2, 0, 1)
            patch, frame = sample_patch(im, (float(state.center[0]), float(state.center[1])), state.scale,
                                        p.image_sample_size)
        feat, x = self._features(patch[None])
        with stage("scoring"):
            x = project(x, self.projection)  # (1, D, h, w)
            raw = apply_filter(x, self.filter)[0]  # (h, w)
            up = p.score_upsample_factor
            scores = fourier_upsample(raw, (up * p.image_sample_size,) * 2, p.score_nyquist_weight)

        # localisation on the upsampled map: one cell = 1 / up patch pixels; index j looks at patch pixel
        # j / up - 0.5, i.e. the map's centre (size - 1) / 2 is half a cell right of the patch centre
        cell = frame.scale / up
        prev = (state.center - torch.tensor(frame.center, dtype=torch.float64)) / cell + 0.5
        with stage("localization"):
            loc = localize_advanced(scores.float().cpu(), (float(prev[0]), float(prev[1])),
                                    (float(state.size[0] / cell), float(state.size[1] / cell)), p.localization)
        candidates = None
        if loc.flag != "not_found":
            disp = torch.tensor(loc.displacement, dtype=torch.float64) - 0.5
            state.move_to(torch.tensor(frame.center, dtype=torch.float64) + disp * cell, p.target_inside_ratio)
            if p.use_iou_net:
                update_scale = p.update_scale_when_uncertain or loc.flag != "uncertain"
                with stage("iou_features"):
                    iou_feat = iou_test_features(self.net, feat)
                with stage("iou_refinement"):
                    candidates = refine_target(
                        lambda boxes: optimize_boxes(self.net.bb_regressor, self.modulation, iou_feat, boxes,
                                                     p.refinement),
                        frame, state, p.refinement, self.generator, update_scale, self.device)

        if p.update_classifier:
            self._update_classifier(x[0], frame, loc.flag)
        self.info = {"score": loc.max_score, "flag": loc.flag, "score_map": scores.float().cpu().numpy(),
                     "score_map_raw": raw.float().cpu().numpy(), "candidates": candidates, "frame": frame}
        return state.box().numpy()

    def _update_classifier(self, sample: Tensor, frame: PatchFrame, flag: str) -> None:
        """Store the frame (unless lost or uncertain); every train_skipping-th frame or after a hard negative,
        refine f on the memory. As in the reference, the schedule does not depend on the flag otherwise."""
        p = self.params
        hard = flag == "hard_negative"
        if flag in ("normal", "hard_negative"):
            with stage("memory_update"):
                box_in_patch = frame.box_to_patch(self.state.box()).float().to(self.device)
                self.memory.add(sample, box_in_patch, p.hard_negative_learning_rate if hard else None)
        num_iter = p.hard_negative_cg_iter if hard else (p.cg_iter if (self.frame_num - 1) % p.train_skipping == 0
                                                         else 0)
        if num_iter > 0:
            with stage("optimizer"):
                samples, boxes, weights = self.memory.stored()
                self.filter, _ = train_filter(samples, self._labels(boxes), weights, self.filter, p.filter_reg,
                                              p.mlu_min, num_iter)
