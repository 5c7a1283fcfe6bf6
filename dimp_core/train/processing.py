"""Turning sampled frames into training examples: jittered crops, Gaussian labels, IoU proposals.

pytracking ``ltr/data/processing.py`` (``DiMPProcessing``) and ``processing_utils.py``, with the DiMP
training settings (``ltr/train_settings/dimp/dimp18.py``):

- jitter: size = wh * exp(N(0, 1) * scale_jitter), centre += sqrt(jittered area) * centre_jitter * U(-0.5, 0.5)
  per axis (train: 3 / 0.25, test: 4.5 / 0.5);
- crop: a square of 5 sqrt(w h) of the *jittered* box, resized to 288 px. We crop with the tracker's own
  :func:`~dimp_core.geometry.sample_patch` (centred, replicate border), as the 2019 release's
  ``jittered_center_crop`` did, so training and tracking see identical patches;
- colour: grayscale with probability 0.05 (all frames of a sample), brightness x U(0.8, 1.2) per frame set;
- labels: a Gaussian of sigma = 1/4 / 5 * 18 = 0.9 cells on the 19 x 19 score grid, peaked at the target's
  continuous centre / 16;
- proposals: 8 per test frame, (cx, cy, w, h) ~ N(gt, sqrt(w h) * sigma) with sigma drawn from
  (0.01, 0.05, 0.1, 0.2, 0.3), rounded, retried (sigma x 0.9) until IoU > 0.1; the target is 2 IoU - 1.

All randomness comes from a ``numpy.random.Generator`` passed in, so a seed fixes every example.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from dimp_core.geometry import box_iou, sample_patch


@dataclass(frozen=True)
class ProcessingParams:
    output_size: int = 288  # crop side in pixels
    search_area_factor: float = 5.0  # crop side = 5 sqrt(w h) of the jittered box
    center_jitter: tuple[float, float] = (3.0, 4.5)  # (train, test)
    scale_jitter: tuple[float, float] = (0.25, 0.5)  # (train, test)
    feature_stride: int = 16
    filter_size: int = 4
    label_sigma_factor: float = 1 / 4 / 5  # output_sigma_factor / search_area_factor
    proposals_per_frame: int = 8
    proposal_sigmas: tuple[float, ...] = (0.01, 0.05, 0.1, 0.2, 0.3)
    proposal_min_iou: float = 0.1
    grayscale_probability: float = 0.05
    brightness_jitter: float = 0.2


def jitter_box(box: np.ndarray, center_jitter: float, scale_jitter: float, rng: np.random.Generator) -> np.ndarray:
    """A randomly moved and resized copy of (x, y, w, h) (pytracking ``_get_jittered_box``)."""
    size = box[2:] * np.exp(rng.standard_normal(2) * scale_jitter)
    max_offset = math.sqrt(size[0] * size[1]) * center_jitter
    centre = box[:2] + 0.5 * box[2:] + max_offset * (rng.random(2) - 0.5)
    return np.concatenate([centre - 0.5 * size, size])


def crop_frame(image: np.ndarray, box: np.ndarray, jittered: np.ndarray,
               params: ProcessingParams) -> tuple[Tensor, Tensor]:
    """Crop 5 sqrt(w h) of the jittered box around its centre; returns (3, S, S) float patch in [0, 255] and
    the true box in patch pixels."""
    side = math.ceil(params.search_area_factor * math.sqrt(jittered[2] * jittered[3]))
    centre = (float(jittered[0] + jittered[2] / 2), float(jittered[1] + jittered[3] / 2))
    im = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)
    patch, frame = sample_patch(im, centre, side / params.output_size, params.output_size)
    return patch, frame.box_to_patch(torch.as_tensor(box, dtype=torch.float64)).float()


def gaussian_label(boxes: Tensor, params: ProcessingParams) -> Tensor:
    """Gaussian labels on the score grid for (N, 4) patch boxes -> (N, Ho, Wo), Ho = feature size + 1 for an even
    filter. Peak at the continuous box centre divided by the stride; sigma = label_sigma_factor * feature size."""
    feat = params.output_size // params.feature_stride
    size = feat + (params.filter_size + 1) % 2
    sigma = params.label_sigma_factor * feat
    centre = (boxes[:, :2] + boxes[:, 2:] / 2) / params.feature_stride  # (N, 2) as (x, y) in cells
    k = torch.arange(size, dtype=boxes.dtype)
    gx = torch.exp(-0.5 * ((k[None] - centre[:, :1]) / sigma) ** 2)  # (N, Wo)
    gy = torch.exp(-0.5 * ((k[None] - centre[:, 1:]) / sigma) ** 2)  # (N, Ho)
    return gy[:, :, None] * gx[:, None, :]


def perturb_box(box: Tensor, params: ProcessingParams, rng: np.random.Generator) -> tuple[Tensor, float]:
    """One IoU-Net proposal around ``box`` (x, y, w, h) and its IoU with it (pytracking ``perturb_box``)."""
    sigma = params.proposal_sigmas[rng.integers(len(params.proposal_sigmas))]
    factor = math.sqrt(float(box[2] * box[3])) * sigma
    cx, cy = float(box[0] + box[2] / 2), float(box[1] + box[3] / 2)
    proposal, iou = box, 1.0
    for _ in range(100):
        x, y, w, h = rng.normal([cx, cy, float(box[2]), float(box[3])], factor)
        w = w if w > 1 else float(box[2]) * rng.uniform(0.15, 0.5)
        h = h if h > 1 else float(box[3]) * rng.uniform(0.15, 0.5)
        proposal = torch.tensor([x - w / 2, y - h / 2, w, h]).round()
        proposal[2:] = torch.where(proposal[2:] <= 1, box[2:] * float(rng.uniform(0.15, 0.5)), proposal[2:])
        iou = float(box_iou(box, proposal))
        if iou > params.proposal_min_iou:
            break
        factor *= 0.9
    return proposal, iou


def colour_jitter(patches: Tensor, grayscale: bool, params: ProcessingParams, rng: np.random.Generator) -> Tensor:
    """(N, 3, S, S) patches in [0, 255]: optional grayscale, then one brightness factor for the set."""
    if grayscale:
        gray = (patches * torch.tensor([0.299, 0.587, 0.114]).reshape(1, 3, 1, 1)).sum(dim=1, keepdim=True)
        patches = gray.expand_as(patches)
    factor = rng.uniform(1 - params.brightness_jitter, 1 + params.brightness_jitter)
    return (patches * factor).clamp(0, 255)


@dataclass
class Example:
    """One training example: train and test crops of a sequence with their boxes, labels and proposals."""

    train_images: Tensor  # (Ntr, 3, S, S) in [0, 255]
    train_boxes: Tensor  # (Ntr, 4) patch pixels
    test_images: Tensor  # (Nte, 3, S, S)
    test_boxes: Tensor  # (Nte, 4)
    test_labels: Tensor  # (Nte, Ho, Wo)
    test_proposals: Tensor  # (Nte, P, 4)
    proposal_iou: Tensor  # (Nte, P) target 2 IoU - 1


def make_example(train_frames: list[np.ndarray], train_boxes: np.ndarray, test_frames: list[np.ndarray],
                 test_boxes: np.ndarray, params: ProcessingParams, rng: np.random.Generator) -> Example:
    """Process one sampled frame set (images H x W x 3 uint8 RGB, boxes (N, 4) image xywh)."""
    grayscale = rng.random() < params.grayscale_probability
    out = {}
    for mode, (frames, boxes) in enumerate([(train_frames, train_boxes), (test_frames, test_boxes)]):
        crops = [crop_frame(f, b, jitter_box(b, params.center_jitter[mode], params.scale_jitter[mode], rng), params)
                 for f, b in zip(frames, boxes, strict=True)]
        images = colour_jitter(torch.stack([c[0] for c in crops]), grayscale, params, rng)
        out[mode] = (images, torch.stack([c[1] for c in crops]))
    test_boxes_t = out[1][1]
    proposals = [[perturb_box(b, params, rng) for _ in range(params.proposals_per_frame)] for b in test_boxes_t]
    return Example(
        train_images=out[0][0], train_boxes=out[0][1], test_images=out[1][0], test_boxes=test_boxes_t,
        test_labels=gaussian_label(test_boxes_t, params),
        test_proposals=torch.stack([torch.stack([p for p, _ in row]) for row in proposals]),
        proposal_iou=torch.tensor([[2 * iou - 1 for _, iou in row] for row in proposals]),
    )


def collate(examples: list[Example]) -> Example:
    """Stack examples along a new sequence dimension: images (N, S, 3, H, W), boxes (N, S, 4), ..."""
    def stack(name: str) -> Tensor:
        return torch.stack([getattr(e, name) for e in examples], dim=1)

    return Example(**{name: stack(name) for name in Example.__dataclass_fields__})
