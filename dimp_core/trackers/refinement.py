"""Box refinement by overlap maximisation: gradient ascent on the IoU-Net's predicted IoU (ATOM, DiMP).

pytracking ``refine_target_box`` / ``optimize_boxes_default``. Starting from the current box and
``num_init_random_boxes`` jittered copies, every box takes ``box_refinement_iter`` steps

.. math:: B \\leftarrow B + \\gamma \\, \\frac{\\partial \\mathrm{IoU}(B)}{\\partial B} \\circ (w, h, w, h)

in (x, y, w, h) patch coordinates (the gradient scaled by the box size, so a step is relative). Boxes
with extreme aspect ratios are dropped, and the mean of the ``iounet_k`` boxes with the highest predicted
IoU is the new target box. All boxes are refined in one batch on the one feature map of the frame: one
forward and one backward pass per step (``batched=False`` refines them one by one, the naive way, to show
what batching buys). The modulated test features z_test * c(x0, B0) do not depend on the boxes and are
computed once per frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from dimp_core.nets.iounet import IoUNet


@dataclass(frozen=True)
class RefinementParams:
    num_init_random_boxes: int = 9  # jittered boxes besides the current one
    box_jitter_pos: float = 0.1  # centre jitter, times sqrt(w h)
    box_jitter_sz: float = 0.5  # size jitter, times sqrt(w h)
    box_refinement_iter: int = 5  # gradient-ascent steps
    box_refinement_step_length: float = 1.0  # gamma
    box_refinement_step_decay: float = 1.0  # gamma is multiplied by this after each step
    maximal_aspect_ratio: float = 6.0  # keep boxes with 1/6 < w/h < 6
    iounet_k: int = 3  # average of the top-k boxes
    batched: bool = True  # all boxes in one forward/backward pass per step (False: one box at a time)


def jittered_boxes(box: Tensor, params: RefinementParams, generator: torch.Generator | None = None) -> Tensor:
    """The current box and ``num_init_random_boxes`` random perturbations of it, (1 + n, 4) as (x, y, w, h).

    u ~ U(-0.5, 0.5)^4 times sqrt(w h) (jitter_pos, jitter_pos, jitter_sz, jitter_sz) is added to
    (cx, cy, w, h) (continuous centre x + w/2); sizes are kept >= min(w, h) / 3.
    """
    n = params.num_init_random_boxes
    if n <= 0:
        return box.reshape(1, 4)
    side = box[2:].prod().sqrt()
    factor = side * torch.tensor([params.box_jitter_pos] * 2 + [params.box_jitter_sz] * 2, dtype=box.dtype)
    noise = (torch.rand(n, 4, generator=generator, dtype=box.dtype) - 0.5) * factor.to(box.device).cpu()
    noise = noise.to(box.device)
    size = (box[2:] + noise[:, 2:]).clamp(min=float(box[2:].min()) / 3)
    centre = box[:2] + box[2:] / 2 + noise[:, :2]
    return torch.cat([box.reshape(1, 4), torch.cat([centre - size / 2, size], dim=1)])


def optimize_boxes(iounet: IoUNet, modulation: tuple[Tensor, Tensor], iou_feat: tuple[Tensor, Tensor],
                   boxes: Tensor, params: RefinementParams) -> tuple[Tensor, Tensor]:
    """Gradient ascent on the predicted IoU of each box.

    The gradient dIoU/dB comes in closed form (:meth:`~dimp_core.nets.iounet.IoUNet.predict_iou_and_box_grad`,
    the numbers autograd would give), so this runs the same in ``torch.inference_mode`` and records nothing.

    Args:
        iounet: the IoU-Net (eval mode).
        modulation: two (1, D) modulation vectors of the target.
        iou_feat: two (1, D, H, W) test-branch feature maps of the current patch.
        boxes: (P, 4) starting boxes in patch pixels.

    Returns:
        (P, 4) refined boxes and (P,) the IoU predicted for each at the last forward pass (before its last
        step, as the reference).
    """
    modulated = iounet.modulate(modulation, iou_feat)  # (1, D, H, W) each, fixed for the frame
    if params.batched:
        return _ascend(iounet, modulated, boxes, params)
    out = [_ascend(iounet, modulated, box[None], params) for box in boxes]  # one box at a time
    return torch.cat([o[0] for o in out]), torch.cat([o[1] for o in out])


def _ascend(iounet: IoUNet, modulated: tuple[Tensor, Tensor], boxes: Tensor,
            params: RefinementParams) -> tuple[Tensor, Tensor]:
    """``box_refinement_iter`` gradient-ascent steps of (P, 4) boxes on one frame's modulated features."""
    step = params.box_refinement_step_length
    out = boxes.reshape(1, -1, 4)
    iou = torch.zeros(boxes.shape[0], device=boxes.device)
    for _ in range(params.box_refinement_iter):
        pred, grad = iounet.predict_iou_and_box_grad(modulated, out)  # (1, P), (1, P, 4)
        out = out + step * grad * out[:, :, 2:].repeat(1, 1, 2)
        iou = pred.reshape(-1)
        step *= params.box_refinement_step_decay
    return out.reshape(-1, 4), iou


def select_box(boxes: Tensor, iou: Tensor, params: RefinementParams) -> tuple[Tensor, Tensor] | None:
    """Drop degenerate boxes and average the top-k; None if no box survives."""
    boxes = boxes.clone()
    boxes[:, 2:] = boxes[:, 2:].clamp(min=1)
    aspect = boxes[:, 2] / boxes[:, 3]
    keep = (aspect < params.maximal_aspect_ratio) & (aspect > 1 / params.maximal_aspect_ratio)
    boxes, iou = boxes[keep], iou[keep]
    if boxes.shape[0] == 0:
        return None
    k = min(params.iounet_k, boxes.shape[0])
    top = torch.topk(iou, k).indices
    return boxes[top].mean(dim=0), iou[top].mean()
