"""Boxes and image patches: the coordinate conventions every other module relies on.

Box formats (all floats, 0-indexed pixels, top-left origin, last dimension of size 4):

- ``xywh``:   (x, y, w, h), top-left corner and size. The public format (SPEC section 3).
- ``xyxy``:   (x0, y0, x1, y1) = (x, y, x + w, y + h). What RoI pooling takes.
- ``cxcywh``: (cx, cy, w, h), the centre and the size. What the online logic tracks.

The centre follows pytracking: a box (x, y, w, h) has its centre at (x + (w - 1) / 2, y + (h - 1) / 2),
i.e. pixel *indices* rather than the continuous midpoint, so that a box of width 1 is centred on its pixel.
``xywh_to_cxcywh`` and ``cxcywh_to_xywh`` are exact inverses.

Patches. The trackers look at a square image region of side ``scale * output_size`` pixels around the
target centre, resized to ``output_size`` (288 for DiMP). ``scale`` is therefore *image pixels per patch
pixel* everywhere in this package, and a displacement ``d`` measured in patch pixels is ``d * scale`` in
image pixels. Functions take (x, y) order, never pytracking's (row, col).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

# --------------------------------------------------------------------------- box formats


def _check_boxes(boxes: Tensor) -> None:
    if boxes.shape[-1:] != (4,):
        raise ValueError(f"boxes must have a last dimension of size 4, got shape {tuple(boxes.shape)}")


def xywh_to_xyxy(boxes: Tensor) -> Tensor:
    """(x, y, w, h) -> (x0, y0, x1, y1) with x1 = x + w, y1 = y + h.

    Example:
        >>> xywh_to_xyxy(torch.tensor([10.0, 20.0, 30.0, 40.0]))
        tensor([10., 20., 40., 60.])
    """
    _check_boxes(boxes)
    return torch.cat([boxes[..., :2], boxes[..., :2] + boxes[..., 2:]], dim=-1)


def xyxy_to_xywh(boxes: Tensor) -> Tensor:
    """(x0, y0, x1, y1) -> (x, y, w, h); the inverse of :func:`xywh_to_xyxy`.

    Example:
        >>> xyxy_to_xywh(torch.tensor([10.0, 20.0, 40.0, 60.0]))
        tensor([10., 20., 30., 40.])
    """
    _check_boxes(boxes)
    return torch.cat([boxes[..., :2], boxes[..., 2:] - boxes[..., :2]], dim=-1)


def xywh_to_cxcywh(boxes: Tensor) -> Tensor:
    """(x, y, w, h) -> (cx, cy, w, h) with cx = x + (w - 1) / 2 (pytracking's pixel-index centre).

    Example:
        >>> xywh_to_cxcywh(torch.tensor([10.0, 20.0, 31.0, 41.0]))
        tensor([25., 40., 31., 41.])
    """
    _check_boxes(boxes)
    return torch.cat([boxes[..., :2] + (boxes[..., 2:] - 1) / 2, boxes[..., 2:]], dim=-1)


def cxcywh_to_xywh(boxes: Tensor) -> Tensor:
    """(cx, cy, w, h) -> (x, y, w, h); the inverse of :func:`xywh_to_cxcywh`.

    Example:
        >>> cxcywh_to_xywh(torch.tensor([25.0, 40.0, 31.0, 41.0]))
        tensor([10., 20., 31., 41.])
    """
    _check_boxes(boxes)
    return torch.cat([boxes[..., :2] - (boxes[..., 2:] - 1) / 2, boxes[..., 2:]], dim=-1)


# --------------------------------------------------------------------------- overlap


def box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """Intersection over union of (x, y, w, h) boxes, elementwise with broadcasting.

    Continuous convention (no +1), as the got10k toolkit's ``rect_iou`` and the IoU-Net training targets:
    a box covers [x, x + w] x [y, y + h]. Boxes with zero area have IoU 0 with everything.

    .. math:: \\mathrm{IoU}(A, B) = |A \\cap B| / |A \\cup B|

    Args:
        boxes1: (..., 4) boxes.
        boxes2: (..., 4) boxes, broadcastable against ``boxes1``.

    Returns:
        (...) IoU in [0, 1].

    Example:
        >>> box_iou(torch.tensor([0.0, 0.0, 10.0, 10.0]), torch.tensor([5.0, 0.0, 10.0, 10.0]))
        tensor(0.3333)
    """
    _check_boxes(boxes1)
    _check_boxes(boxes2)
    a, b = xywh_to_xyxy(boxes1), xywh_to_xyxy(boxes2)
    inter_wh = (torch.minimum(a[..., 2:], b[..., 2:]) - torch.maximum(a[..., :2], b[..., :2])).clamp(min=0)
    inter = inter_wh[..., 0] * inter_wh[..., 1]
    area1 = boxes1[..., 2].clamp(min=0) * boxes1[..., 3].clamp(min=0)
    area2 = boxes2[..., 2].clamp(min=0) * boxes2[..., 3].clamp(min=0)
    union = area1 + area2 - inter
    return torch.where(union > 0, inter / union.clamp(min=torch.finfo(union.dtype).tiny), torch.zeros_like(inter))


# --------------------------------------------------------------------------- patches


def patch_geometry(center: tuple[float, float], scale: float, output_size: int) -> tuple[int, int, int, int, int]:
    """Integer crop window of :func:`sample_patch`, before resizing.

    Follows pytracking's ``sample_patch``: the image is first subsampled by the integer factor
    ``df = max(int(scale - 0.1), 1)`` (cheap anti-aliasing-free decimation for large targets), then a window
    of ``n = max(round(scale * output_size / df), 2)`` pixels is cut around the truncated centre ``c``:
    indices ``c - (n - 1) // 2 ... c + n // 2`` (for even ``n`` the window is half a pixel right of ``c``).

    Deviation: pytracking computes ``(n - 1) / 2`` on integer tensors. Under PyTorch 1.1 (the DiMP
    release) that was integer division, as here; newer PyTorch turns it into float division, which makes
    the window 289 px instead of 288 when it starts inside the image. We keep the intended 1.1 behaviour.

    Args:
        center: (cx, cy) in image pixels.
        scale: image pixels per patch pixel (> 0).
        output_size: side of the resized patch.

    Returns:
        (df, x0, y0, n_x, n_y): the decimation factor and the window's top-left corner and size, all in
        decimated-image pixels; the window is square so ``n_x == n_y``.

    Example:
        >>> patch_geometry((100.0, 50.0), 1.0, 288)
        (1, -43, -93, 288, 288)
    """
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    df = max(int(scale - 0.1), 1)
    n = max(int(round(scale * output_size / df)), 2)
    cx, cy = int(center[0]), int(center[1])  # truncation, as pytracking's pos.long()
    # decimated image keeps every df-th pixel starting at c mod df, so that c itself is kept
    cx_d, cy_d = (cx - cx % df) // df, (cy - cy % df) // df
    return df, cx_d - (n - 1) // 2, cy_d - (n - 1) // 2, n, n


@dataclass(frozen=True)
class PatchFrame:
    """Where a patch sits in its image: the image point under the patch centre and the patch's scale.

    Patch pixel p (index, 0..size-1) looks at image point ``center + (p - (size - 1) / 2) * scale``.
    This is what :func:`sample_patch` produced, derived from the integer crop window rather than the
    requested centre (pytracking's ``get_sample_location``, exact also when the image was decimated).
    """

    center: tuple[float, float]  # (cx, cy) in image pixels
    scale: float  # image pixels per patch pixel
    size: int  # patch side in pixels

    def box_to_patch(self, box: Tensor) -> Tensor:
        """(..., 4) image boxes (x, y, w, h) -> the same boxes in patch pixels."""
        c = xywh_to_cxcywh(box)
        offset = torch.tensor(self.center, dtype=box.dtype, device=box.device)
        centre = (c[..., :2] - offset) / self.scale + (self.size - 1) / 2
        return cxcywh_to_xywh(torch.cat([centre, c[..., 2:] / self.scale], dim=-1))

    def box_to_image(self, box: Tensor) -> Tensor:
        """(..., 4) patch boxes (x, y, w, h) -> image boxes; the inverse of :meth:`box_to_patch`."""
        c = xywh_to_cxcywh(box)
        offset = torch.tensor(self.center, dtype=box.dtype, device=box.device)
        centre = (c[..., :2] - (self.size - 1) / 2) * self.scale + offset
        return cxcywh_to_xywh(torch.cat([centre, c[..., 2:] * self.scale], dim=-1))


def sample_patch(
    image: Tensor, center: tuple[float, float], scale: float, output_size: int
) -> tuple[Tensor, PatchFrame]:
    """Crop a square region of side ``scale * output_size`` around ``center`` and resize it.

    The reference tracker's patch extraction (pytracking ``sample_patch`` with ``mode='replicate'``):
    integer decimation by ``df``, an integer crop window (see :func:`patch_geometry`) whose parts outside
    the image repeat the border pixels, then bilinear resizing (``align_corners=False``) to
    ``output_size x output_size``. Replicate padding is done by clamping indices, which also handles a
    window that lies entirely outside the image.

    Deviation: the returned frame's centre is that of the sampled pixels, (x0 + x1 - df) / 2 for a window
    [x0, x1) with stride df; pytracking uses (x0 + x1 - 1) / 2, which is off by (df - 1) / 2 pixels when
    the image was decimated.

    Args:
        image: (C, H, W) or (B, C, H, W) image, any dtype (uint8 is cropped before it is converted, which
            is faster); the output is float32.
        center: (cx, cy) in image pixels.
        scale: requested image pixels per patch pixel.
        output_size: side of the output patch in pixels.

    Returns:
        patch: (..., C, output_size, output_size) float32.
        frame: the :class:`PatchFrame` actually sampled (its scale is the window size / output size).

    Example:
        >>> img = torch.arange(16.0).reshape(1, 4, 4)
        >>> patch, frame = sample_patch(img, (0.0, 0.0), 1.0, 4)
        >>> patch[0]
        tensor([[ 0.,  0.,  1.,  2.],
                [ 0.,  0.,  1.,  2.],
                [ 4.,  4.,  5.,  6.],
                [ 8.,  8.,  9., 10.]])
        >>> frame
        PatchFrame(center=(0.5, 0.5), scale=1.0, size=4)
    """
    if image.dim() not in (3, 4):
        raise ValueError(f"image must be (C, H, W) or (B, C, H, W), got shape {tuple(image.shape)}")
    height, width = image.shape[-2:]
    df, x0, y0, nx, ny = patch_geometry(center, scale, output_size)
    off_x, off_y = int(center[0]) % df, int(center[1]) % df
    # replicate padding == clamped indices into the decimated image
    cols = (torch.arange(x0, x0 + nx) * df + off_x).clamp(off_x, off_x + ((width - 1 - off_x) // df) * df)
    rows = (torch.arange(y0, y0 + ny) * df + off_y).clamp(off_y, off_y + ((height - 1 - off_y) // df) * df)
    cols, rows = cols.clamp(0, width - 1).to(image.device), rows.clamp(0, height - 1).to(image.device)
    patch = image.index_select(-1, cols).index_select(-2, rows).float()  # (..., C, ny, nx)
    if (ny, nx) != (output_size, output_size):
        squeeze = patch.dim() == 3
        patch = F.interpolate(patch[None] if squeeze else patch, size=(output_size, output_size),
                              mode="bilinear", align_corners=False)
        patch = patch[0] if squeeze else patch
    # sampled pixels: x0 * df + off_x + k * df, k = 0..nx-1; their centre and spacing define the frame
    cx = (x0 * df + off_x) + (nx - 1) * df / 2
    cy = (y0 * df + off_y) + (ny - 1) * df / 2
    return patch, PatchFrame(center=(float(cx), float(cy)), scale=nx * df / output_size, size=output_size)
