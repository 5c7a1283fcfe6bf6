"""First-frame data augmentation: many training samples from the one annotated frame (DiMP, ATOM).

pytracking ``generate_init_samples`` and ``pytracking/features/augmentation.py``. One patch of twice the
sample size (576 px for DiMP) is cut around the rounded target centre; each transform is applied to it
and the central 288 px are cropped with an integer shift (replicate padding where the shift needs it).
The target box of each sample is the first-frame box moved by that shift; as in the reference, the
effect of a flip or a rotation on the box is ignored (the target sits at the centre of the patch).

Order (DiMP, 13 patches): identity; relative shifts of +-0.6 half-sizes (+-86 px); horizontal flip;
Gaussian blurs; rotations. Flips, blurs and rotations also get a random shift, U(-0.5, 0.5) times
``random_shift_factor`` (1/3) of the sample size. Shifts are (x, y) here (pytracking stores (y, x)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass(frozen=True)
class AugmentationParams:
    relative_shifts: tuple[tuple[float, float], ...] = ((0.6, 0.6), (-0.6, 0.6), (0.6, -0.6), (-0.6, -0.6))
    flip: bool = True
    blur_sigmas: tuple[tuple[float, float], ...] = ((3.0, 1.0), (1.0, 3.0), (2.0, 2.0))  # (sigma_y, sigma_x)
    rotations: tuple[float, ...] = (10.0, -10.0, 45.0, -45.0)  # degrees
    random_shift_factor: float = 1 / 3
    expansion_factor: float = 2.0  # augment on a patch this much larger than the sample


def crop_center(patch: Tensor, size: int, shift: tuple[int, int]) -> Tensor:
    """Crop ``size`` x ``size`` from the centre of (C, S, S) ``patch`` so that its content moves by ``shift``
    = (dx, dy) pixels; rows/cols beyond the patch replicate its border."""
    big = patch.shape[-1]
    start = (big - size) // 2
    rows = (torch.arange(size) + start - shift[1]).clamp(0, big - 1)
    cols = (torch.arange(size) + start - shift[0]).clamp(0, big - 1)
    return patch.index_select(-2, rows.to(patch.device)).index_select(-1, cols.to(patch.device))


def gaussian_blur(patch: Tensor, sigma: tuple[float, float]) -> Tensor:
    """Separable Gaussian blur of (C, H, W), half-widths ceil(2 sigma), zero padding (the border is cropped)."""
    out = patch[:, None]  # (C, 1, H, W)
    for axis, s in enumerate(sigma):  # axis 0: vertical (sigma_y), 1: horizontal (sigma_x)
        half = math.ceil(2 * s)
        x = torch.arange(-half, half + 1, dtype=patch.dtype, device=patch.device)
        k = torch.exp(-(x ** 2) / (2 * s ** 2))
        k = (k / k.sum()).reshape(1, 1, -1, 1) if axis == 0 else (k / k.sum()).reshape(1, 1, 1, -1)
        out = F.conv2d(out, k, padding=(half, 0) if axis == 0 else (0, half))
    return out[:, 0]


def rotate(patch: Tensor, angle_deg: float) -> Tensor:
    """Rotate (C, H, W) about its centre with OpenCV, replicating the border."""
    c, h, w = patch.shape
    matrix = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), angle_deg, 1.0)
    img = patch.permute(1, 2, 0).cpu().numpy().astype(np.float32)  # (H, W, C)
    out = cv2.warpAffine(img, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return torch.from_numpy(out.reshape(h, w, c)).permute(2, 0, 1).to(patch.device)


def augment(big_patch: Tensor, size: int, params: AugmentationParams,
            generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """All augmented samples of one expanded patch.

    Args:
        big_patch: (C, S, S) float patch, S = expansion_factor * size, centred on the target.
        size: output sample size (288).
        params: which transforms.
        generator: for the random shifts.

    Returns:
        samples (M, C, size, size) and shifts (M, 2) as (dx, dy) integer pixels; sample 0 is the identity.
    """

    def random_shift() -> tuple[int, int]:
        if params.random_shift_factor <= 0:
            return (0, 0)
        u = (torch.rand(2, generator=generator) - 0.5) * size * params.random_shift_factor  # (y, x)
        return (int(u[1]), int(u[0]))  # truncation toward zero, as .long()

    samples, shifts = [crop_center(big_patch, size, (0, 0))], [(0, 0)]
    for ry, rx in params.relative_shifts:  # pytracking lists (y, x)
        shift = (int(rx * size / 2), int(ry * size / 2))
        samples.append(crop_center(big_patch, size, shift))
        shifts.append(shift)
    if params.flip:
        shift = random_shift()
        samples.append(crop_center(big_patch.flip(-1), size, shift))
        shifts.append(shift)
    for sigma in params.blur_sigmas:
        shift = random_shift()
        samples.append(crop_center(gaussian_blur(big_patch, sigma), size, shift))
        shifts.append(shift)
    for angle in params.rotations:
        shift = random_shift()
        samples.append(crop_center(rotate(big_patch, angle), size, shift))
        shifts.append(shift)
    return torch.stack(samples), torch.tensor(shifts, dtype=torch.float32)


def dropout_copies(features: Tensor, num: int, p: float, generator: torch.Generator | None = None) -> Tensor:
    """``num`` copies of (C, H, W) features with whole channels dropped with probability p (dropout2d in
    training mode: survivors scaled by 1/(1 - p)); seeded, unlike ``F.dropout2d``."""
    keep = (torch.rand(num, features.shape[0], 1, 1, generator=generator) >= p).to(features)
    return features[None] * keep.to(features.device) / (1 - p)
