"""Precise RoI Pooling in pure PyTorch.

Precise RoI Pooling (PrRoI pooling) was introduced with IoU-Net in

    B. Jiang, R. Luo, J. Mao, T. Xiao, Y. Jiang,
    "Acquisition of Localization Confidence for Accurate Object Detection", ECCV 2018.

It treats the discrete feature map as a continuous function by bilinear interpolation and
averages that function exactly over each output bin (no sampling points), which makes the
output a smooth function of the box coordinates. The paper's pooling equation, written with
row index i and column index j, is

    PrPool(bin, F) = 1 / ((x2 - x1) * (y2 - y1)) * ∫_{y1}^{y2} ∫_{x1}^{x2} f(y, x) dx dy,
    f(y, x) = Σ_{i,j} F[i, j] * IC(y, x, i, j),
    IC(y, x, i, j) = k(y - i) * k(x - j),    k(t) = max(0, 1 - |t|),

where (x1, y1, x2, y2) are the bin's corners in feature-map coordinates, F[i, j] is the
feature value at cell (i, j) and IC is the bilinear interpolation coefficient. Following the
official CUDA kernel (vacancy/PreciseRoIPooling):

* box coordinates are multiplied by ``spatial_scale`` with no half-pixel offset, so cell
  (i, j) (row i, column j) sits at the continuous point (y = i, x = j);
* the map is zero outside its extent (f is the interpolant of the zero-padded map);
* the box width and height are clamped at 0 and the box is split into oh x ow equal bins;
* a bin of zero area outputs 0.

Because the bilinear coefficient IC is a product of hats k, the double integral factorises.
With G(t) = ∫_{-∞}^{t} k(s) ds, the integral of node i's hat over [a, b] is G(b - i) - G(a - i),
so for bin edges y_0 < ... < y_oh and x_0 < ... < x_ow

    Wy[p, i] = G(y_{p+1} - i) - G(y_p - i),    Wx[q, j] = G(x_{q+1} - j) - G(x_q - j),
    out[p, q] = (Wy @ F @ Wx^T)[p, q] / (bin_h * bin_w).

Everything is built from differentiable tensor operations, so autograd gives exact gradients
with respect to both the features and the box coordinates, on any device.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["prroi_pool2d"]


def _hat_integral(t: Tensor) -> Tensor:
    """Integral of the hat kernel k(s) = max(0, 1 - |s|) from -inf to ``t``.

    G(t) = 0 for t < -1, (t + 1)^2 / 2 for -1 <= t < 0, 1 - (1 - t)^2 / 2 for 0 <= t < 1
    and 1 for t >= 1. Its derivative is the hat itself, so G is continuously differentiable.

    Args:
        t: Tensor of any shape.

    Returns:
        G(t), same shape and dtype as ``t``.
    """
    # Clamping makes G constant (zero gradient) outside [-1, 1]; both polynomial branches
    # are finite everywhere, so torch.where never mixes in a NaN gradient.
    t = t.clamp(-1.0, 1.0)
    return torch.where(t < 0, 0.5 * (t + 1.0) ** 2, 1.0 - 0.5 * (1.0 - t) ** 2)


def _bin_weights(start: Tensor, end: Tensor, n_bins: int, size: int) -> tuple[Tensor, Tensor]:
    """Integrals of each grid node's hat over each bin, along one axis.

    The interval [start, end] (its length clamped at 0) is split into ``n_bins`` equal bins;
    entry [k, p, i] is the integral over bin p of roi k of the hat centred on node i.

    Args:
        start: (K,) interval starts in feature-map coordinates.
        end: (K,) interval ends in feature-map coordinates.
        n_bins: number of bins along this axis.
        size: number of grid nodes along this axis (the map's height or width).

    Returns:
        weights: (K, n_bins, size) hat integrals; a row sums to the bin length when the bin
            lies within [0, size - 1], where the hats add up to 1.
        bin_size: (K,) length of one bin (0 for degenerate intervals).
    """
    bin_size = (end - start).clamp(min=0.0) / n_bins  # (K,)
    steps = torch.arange(n_bins + 1, device=start.device, dtype=start.dtype)  # (n_bins + 1,)
    edges = start[:, None] + bin_size[:, None] * steps  # (K, n_bins + 1)
    nodes = torch.arange(size, device=start.device, dtype=start.dtype)  # (size,)
    cumulative = _hat_integral(edges[:, :, None] - nodes)  # (K, n_bins + 1, size)
    weights = cumulative[:, 1:] - cumulative[:, :-1]  # (K, n_bins, size)
    return weights, bin_size


def _parse_output_size(output_size: int | tuple[int, int]) -> tuple[int, int]:
    """Return (oh, ow) from an int or a pair of ints, raising ValueError if not positive."""
    if isinstance(output_size, int) and not isinstance(output_size, bool):
        size = (output_size, output_size)
    else:
        try:
            size = tuple(output_size)
        except TypeError:
            size = ()
    if len(size) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size):
        raise ValueError(
            f"output_size must be a positive int or a pair of positive ints, got {output_size!r}"
        )
    return size  # type: ignore[return-value]


def prroi_pool2d(
    features: Tensor,
    rois: Tensor,
    output_size: int | tuple[int, int],
    spatial_scale: float,
) -> Tensor:
    """Precise RoI Pooling: the exact average of the bilinear feature surface over each bin.

    Args:
        features: (B, C, H, W) floating-point feature maps.
        rois: (K, 5) boxes as (batch index, x1, y1, x2, y2) in input-image pixels; the batch
            index selects the feature map, the corners are multiplied by ``spatial_scale``.
            Boxes may lie partly or entirely outside the map (it is zero there).
        output_size: oh = ow = ``output_size``, or a pair (oh, ow).
        spatial_scale: factor from input pixels to feature cells, e.g. 1/16 for stride 16.

    Returns:
        (K, C, oh, ow) pooled features, in the dtype and on the device of ``features``.
        Differentiable with respect to ``features`` and the box coordinates ``rois[:, 1:]``.

    Raises:
        ValueError: if ``features`` is not a 4-D floating-point tensor, ``rois`` is not (K, 5),
            ``output_size`` is not positive, ``spatial_scale`` is not positive or a batch index
            is out of range (this check reads the indices, a host sync on GPU).

    Example:
        A map whose values grow linearly, F[i, j] = 4 i + j, has a linear interpolant inside
        the map, so each bin's average equals the value at the bin's centre:

        >>> features = torch.arange(16.0).reshape(1, 1, 4, 4)
        >>> rois = torch.tensor([[0.0, 0.0, 0.0, 6.0, 6.0]])  # the whole map at stride 2
        >>> prroi_pool2d(features, rois, output_size=2, spatial_scale=0.5)
        tensor([[[[ 3.7500,  5.2500],
                  [ 9.7500, 11.2500]]]])
    """
    if features.dim() != 4:
        raise ValueError(f"features must be 4-D (B, C, H, W), got shape {tuple(features.shape)}")
    if not features.is_floating_point():
        raise ValueError(f"features must be floating point, got {features.dtype}")
    if rois.dim() != 2 or rois.shape[1] != 5:
        raise ValueError(
            f"rois must have shape (K, 5) = (batch index, x1, y1, x2, y2), got {tuple(rois.shape)}"
        )
    oh, ow = _parse_output_size(output_size)
    if not spatial_scale > 0:
        raise ValueError(f"spatial_scale must be positive, got {spatial_scale!r}")

    batch, _, height, width = features.shape
    batch_index = rois[:, 0].to(device=features.device, dtype=torch.long)  # (K,)
    if rois.shape[0] > 0 and bool(((batch_index < 0) | (batch_index >= batch)).any()):
        raise ValueError(f"rois batch indices must lie in [0, {batch - 1}], got {rois[:, 0].tolist()}")

    # Box corners in feature-map coordinates (cell (i, j) sits at y = i, x = j).
    boxes = rois[:, 1:].to(device=features.device, dtype=features.dtype) * spatial_scale  # (K, 4)
    x1, y1, x2, y2 = boxes.unbind(dim=1)  # each (K,)

    weights_y, bin_h = _bin_weights(y1, y2, oh, height)  # (K, oh, H), (K,)
    weights_x, bin_w = _bin_weights(x1, x2, ow, width)  # (K, ow, W), (K,)

    gathered = features[batch_index]  # (K, C, H, W)
    rows = torch.einsum("kph,kchw->kcpw", weights_y, gathered)  # (K, C, oh, W)
    integrals = torch.einsum("kcpw,kqw->kcpq", rows, weights_x)  # (K, C, oh, ow)

    # Divide by the bin area; zero-area bins output 0. The safe denominator keeps both the
    # value and its gradient finite (torch.where alone would still back-propagate inf * 0).
    area = (bin_h * bin_w)[:, None, None, None]  # (K, 1, 1, 1)
    nonzero = area > 0
    safe_area = torch.where(nonzero, area, torch.ones_like(area))
    return torch.where(nonzero, integrals / safe_area, torch.zeros_like(integrals))
