"""The target state and the steps DiMP and ATOM share: first-frame samples and IoU-Net refinement.

State in image pixels, x before y (pytracking keeps (row, col)): ``center`` (cx, cy) is the pixel-index
centre x + (w - 1) / 2, ``size`` (w, h), ``scale`` = image pixels per patch pixel of the search patch,
chosen so that the patch covers ``search_area_scale`` (5) target sizes: scale = 5 sqrt(w h) / 288.
``base_size`` is the size at scale 1, so that a new size gives a new scale sqrt(area / base area).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from dimp_core.geometry import PatchFrame, cxcywh_to_xywh, sample_patch
from dimp_core.trackers.augmentation import AugmentationParams, augment
from dimp_core.trackers.refinement import RefinementParams, jittered_boxes, select_box


@dataclass
class TargetState:
    center: Tensor  # (2,) float64 (cx, cy)
    size: Tensor  # (2,) float64 (w, h)
    scale: float  # image pixels per patch pixel
    base_size: Tensor  # size / scale on the first frame
    min_scale: float  # the reference's bounds: the target stays >= 10 px in the patch ...
    max_scale: float  # ... and the patch no larger than the image allows
    image_size: Tensor  # (W, H)

    @classmethod
    def from_box(cls, box: np.ndarray, image_shape: tuple[int, ...], search_area_scale: float,
                 sample_size: int) -> TargetState:
        """The first-frame state of box (x, y, w, h) (pytracking ``initialize``)."""
        size = torch.tensor([box[2], box[3]], dtype=torch.float64)
        scale = math.sqrt(float(size.prod()) * search_area_scale ** 2) / sample_size
        base = size / scale
        image_size = torch.tensor([image_shape[1], image_shape[0]], dtype=torch.float64)
        return cls(center=torch.tensor([box[0] + (box[2] - 1) / 2, box[1] + (box[3] - 1) / 2], dtype=torch.float64),
                   size=size, scale=scale, base_size=base, min_scale=float((10 / base).max()),
                   max_scale=float((image_size / base).min()), image_size=image_size)

    def box(self) -> Tensor:
        """(x, y, w, h) float64."""
        return cxcywh_to_xywh(torch.cat([self.center, self.size]))

    def move_to(self, new_center: Tensor, inside_ratio: float) -> None:
        """Move the centre, keeping it within the image up to (0.5 - inside_ratio) target sizes outside."""
        inside = (inside_ratio - 0.5) * self.size
        self.center = torch.maximum(torch.minimum(new_center, self.image_size - inside), inside)

    def set_box(self, box: Tensor, update_scale: bool) -> None:
        """Take an (x, y, w, h) box as the new centre and size, and (optionally) its scale, within the bounds."""
        self.center = box[:2] + (box[2:] - 1) / 2
        self.size = box[2:]
        if update_scale:
            scale = math.sqrt(float(self.size.prod() / self.base_size.prod()))
            self.scale = min(max(scale, self.min_scale), self.max_scale)


def first_frame_samples(image: Tensor, state: TargetState, sample_size: int, params: AugmentationParams,
                        generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Augmented first-frame patches and the target box in each (pytracking ``generate_init_samples``).

    One patch of ``expansion_factor`` x the sample size is cut around the rounded target centre at the
    state's scale; :func:`~dimp_core.trackers.augmentation.augment` crops the samples out of it.

    Args:
        image: (3, H, W) uint8 frame.

    Returns:
        patches (M, 3, S, S) in [0, 255] and boxes (M, 4) in patch pixels; sample 0 is the identity.
    """
    big_size = int(sample_size * params.expansion_factor)
    big_size += (big_size - sample_size) % 2
    center = (float(state.center[0].round()), float(state.center[1].round()))
    big, big_frame = sample_patch(image, center, state.scale, big_size)
    patches, shifts = augment(big, sample_size, params, generator)
    frame = PatchFrame(big_frame.center, big_frame.scale, sample_size)  # the identity crop
    boxes = frame.box_to_patch(state.box()).float() + torch.cat([shifts, torch.zeros_like(shifts)], dim=1)
    return patches, boxes


def iou_modulation(net: nn.Module, feat: dict[str, Tensor], box: Tensor) -> tuple[Tensor, Tensor]:
    """IoU-Net modulation vectors (1, D) each from the first sample's backbone features and its (1, 4) box."""
    iou_feat = tuple(f[:1] for f in net.iou_features(feat))
    modulation = net.bb_regressor.get_modulation(iou_feat, box)
    return modulation[0].reshape(1, -1), modulation[1].reshape(1, -1)


def iou_test_features(net: nn.Module, feat: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    """The IoU-Net's test-branch feature maps (1, D, H, W) of one frame's backbone features."""
    return net.bb_regressor.get_iou_feat(net.iou_features(feat))


def refine_target(optimize: Callable[[Tensor], tuple[Tensor, Tensor]], frame: PatchFrame, state: TargetState,
                  params: RefinementParams, generator: torch.Generator, update_scale: bool,
                  device: torch.device) -> np.ndarray:
    """IoU-Net refinement of the state's position and size (pytracking ``refine_target_box``).

    The current box and its jittered copies climb the predicted IoU (``optimize``: (P, 4) boxes in patch
    pixels -> refined boxes and their IoU, :func:`~dimp_core.trackers.refinement.optimize_boxes` on this
    frame's features); the mean of the top-k becomes the new box. Returns all refined candidate boxes in
    image pixels (for visualisation).
    """
    boxes = jittered_boxes(frame.box_to_patch(state.box()).float(), params, generator).to(device)
    refined, iou = optimize(boxes)
    refined, iou = refined.cpu(), iou.cpu()
    chosen = select_box(refined, iou, params)
    if chosen is not None:
        state.set_box(frame.box_to_image(chosen[0].double()), update_scale)
    return frame.box_to_image(refined.double()).numpy()
