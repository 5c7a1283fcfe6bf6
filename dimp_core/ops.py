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

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

__all__ = ["prroi_layout", "prroi_pool2d", "prroi_pool2d_vjp"]


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


def _bin_weights(start: Tensor, end: Tensor, n_bins: int, size: int) -> tuple[Tensor, Tensor, Tensor]:
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
        offsets: (K, n_bins + 1, size) bin edge minus node position (for the backward pass).
    """
    bin_size = (end - start).clamp(min=0.0) / n_bins  # (K,)
    steps = torch.arange(n_bins + 1, device=start.device, dtype=start.dtype)  # (n_bins + 1,)
    edges = start[:, None] + bin_size[:, None] * steps  # (K, n_bins + 1)
    nodes = torch.arange(size, device=start.device, dtype=start.dtype)  # (size,)
    offsets = edges[:, :, None] - nodes  # (K, n_bins + 1, size)
    cumulative = _hat_integral(offsets)  # (K, n_bins + 1, size)
    weights = cumulative[:, 1:] - cumulative[:, :-1]  # (K, n_bins, size)
    return weights, bin_size, offsets


def _bin_weights_backward(grad_weights: Tensor, grad_bin_size: Tensor, offsets: Tensor, start: Tensor,
                          end: Tensor) -> tuple[Tensor, Tensor]:
    """Gradients of ``start`` and ``end`` (K,) from those of :func:`_bin_weights`' weights and bin size.

    d G(e - i) / d e = k(e - i) (the hat), each edge e_p = start + p * bin moves with start and bin, and
    bin = max(end - start, 0) / n_bins.
    """
    n_bins = grad_weights.shape[1]
    grad_cum = torch.nn.functional.pad(grad_weights, (0, 0, 1, 0)) - torch.nn.functional.pad(grad_weights, (0, 0, 0, 1))
    grad_edges = (grad_cum * (1.0 - offsets.abs()).clamp(min=0.0)).sum(dim=2)  # (K, n_bins + 1)
    steps = torch.arange(n_bins + 1, device=start.device, dtype=start.dtype)
    grad_bin = (grad_edges * steps).sum(dim=1) + grad_bin_size  # (K,)
    grad_length = grad_bin * ((end - start) >= 0).to(start.dtype) / n_bins  # clamp(min=0) passes ties, as torch
    return grad_edges.sum(dim=1) - grad_length, grad_length


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
            ``output_size`` is not positive, ``spatial_scale`` is not positive or, for maps on
            the CPU, a batch index is out of range (on a GPU the indices are not checked: reading
            them would make the host wait for the device; with a single feature map they are
            ignored, every roi pools map 0).

    Example:
        A map whose values grow linearly, F[i, j] = 4 i + j, has a linear interpolant inside
        the map, so each bin's average equals the value at the bin's centre:

        >>> features = torch.arange(16.0).reshape(1, 1, 4, 4)
        >>> rois = torch.tensor([[0.0, 0.0, 0.0, 6.0, 6.0]])  # the whole map at stride 2
        >>> prroi_pool2d(features, rois, output_size=2, spatial_scale=0.5)
        tensor([[[[ 3.7500,  5.2500],
                  [ 9.7500, 11.2500]]]])
    """
    oh, ow = _check_inputs(features, rois, output_size, spatial_scale)
    return _PrRoIPool.apply(features, rois, oh, ow, spatial_scale)


def prroi_pool2d_vjp(features: Tensor, rois: Tensor, output_size: int | tuple[int, int],
                     spatial_scale: float) -> tuple[Tensor, Callable[[Tensor], Tensor]]:
    """:func:`prroi_pool2d` and its vector-Jacobian product with respect to the rois, without autograd.

    Returns the pooled (K, C, oh, ow) and a function mapping a gradient of that shape to the gradient of the
    rois (K, 5) (zero in the batch-index column): what box refinement needs, at the cost of a few matrix
    products instead of an autograd graph.
    """
    oh, ow = _check_inputs(features, rois, output_size, spatial_scale)
    with torch.no_grad():
        out, saved = _forward(features, rois, oh, ow, spatial_scale)

    def vjp(grad_out: Tensor) -> Tensor:
        with torch.no_grad():
            return _backward(saved, out, grad_out, need_features=False, need_rois=True)[1]

    return out, vjp


def _check_inputs(features: Tensor, rois: Tensor, output_size: int | tuple[int, int],
                  spatial_scale: float) -> tuple[int, int]:
    """Validate the arguments of :func:`prroi_pool2d`; returns (oh, ow)."""
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
    batch = features.shape[0]
    if features.device.type == "cpu" and rois.shape[0] > 0:  # on a GPU the check would stall the pipeline
        batch_index = rois[:, 0].to(dtype=torch.long)  # (K,)
        if bool(((batch_index < 0) | (batch_index >= batch)).any()):
            raise ValueError(f"rois batch indices must lie in [0, {batch - 1}], got {rois[:, 0].tolist()}")
    return oh, ow


def _forward(features: Tensor, rois: Tensor, oh: int, ow: int, spatial_scale: float) -> tuple[Tensor, tuple]:
    """The pooled (K, C, oh, ow) and what the backward pass needs."""
    batch, channels, height, width = features.shape
    num_rois = rois.shape[0]
    # Box corners in feature-map coordinates (cell (i, j) sits at y = i, x = j).
    boxes = rois[:, 1:].to(device=features.device, dtype=features.dtype) * spatial_scale  # (K, 4)
    x1, y1, x2, y2 = boxes.unbind(dim=1)  # each (K,)
    if (oh, height) == (ow, width):  # a square grid and square bins (the IoU-Net's): both axes in one call
        w, b, o = _bin_weights(torch.cat([y1, x1]), torch.cat([y2, x2]), oh, height)
        (weights_y, weights_x), (bin_h, bin_w), (offsets_y, offsets_x) = w.chunk(2), b.chunk(2), o.chunk(2)
    else:
        weights_y, bin_h, offsets_y = _bin_weights(y1, y2, oh, height)  # (K, oh, H), (K,), (K, oh + 1, H)
        weights_x, bin_w, offsets_x = _bin_weights(x1, x2, ow, width)  # (K, ow, W), (K,), (K, ow + 1, W)

    # out[k, c] = Wy[k] @ F[b_k, c] @ Wx[k]^T as two matrix products. With one feature map (tracking) the
    # first product serves all rois at once and no per-roi copy of the map is made.
    batch_index, f_hcw = torch.empty(0), torch.empty(0)
    if batch == 1:
        f_hcw = features[0].transpose(0, 1).reshape(height, -1)  # (H, C*W); a view after prroi_layout
        rows = weights_y.reshape(num_rois * oh, height) @ f_hcw
    else:
        batch_index = rois[:, 0].to(device=features.device, dtype=torch.long)  # (K,)
        gathered = features[batch_index].transpose(1, 2).reshape(num_rois, height, -1)  # (K, H, C*W)
        rows = torch.bmm(weights_y, gathered)  # (K, oh, C*W)
    rows = rows.reshape(num_rois, oh * channels, width)  # (K, oh*C, W)
    integrals = torch.bmm(rows, weights_x.transpose(1, 2))  # (K, oh*C, ow)
    integrals = integrals.reshape(num_rois, oh, channels, ow).transpose(1, 2)  # (K, C, oh, ow)

    # Divide by the bin area; zero-area bins output 0. The safe denominator keeps both the
    # value and its gradient finite.
    area = (bin_h * bin_w)[:, None, None, None]  # (K, 1, 1, 1)
    nonzero = area > 0
    safe_area = torch.where(nonzero, area, torch.ones_like(area))
    out = torch.where(nonzero, integrals / safe_area, torch.zeros_like(integrals))
    saved = (features, boxes, weights_y, weights_x, offsets_y, offsets_x, bin_h, bin_w, rows, batch_index, f_hcw,
             spatial_scale, rois.dtype)
    return out, saved


def _backward(saved: tuple, out: Tensor, grad_out: Tensor, need_features: bool,
              need_rois: bool) -> tuple[Tensor | None, Tensor | None]:
    """Gradients of the features (B, C, H, W) and of the rois (K, 5) from that of the output (K, C, oh, ow)."""
    (features, boxes, weights_y, weights_x, offsets_y, offsets_x, bin_h, bin_w, rows, batch_index, f_hcw,
     spatial_scale, rois_dtype) = saved
    batch, channels, height, width = features.shape
    num_rois, oh, ow = out.shape[0], out.shape[2], out.shape[3]
    area = (bin_h * bin_w)[:, None, None, None]
    nonzero = area > 0
    safe_area = torch.where(nonzero, area, torch.ones_like(area))
    grad_int = torch.where(nonzero, grad_out / safe_area, torch.zeros_like(grad_out))  # (K, C, oh, ow)
    # R[k, p, c, w] = sum_q dI[k, c, p, q] Wx[k, q, w]
    r = torch.bmm(grad_int.reshape(num_rois, channels * oh, ow), weights_x)  # (K, C*oh, W)
    r = r.reshape(num_rois, channels, oh, width).transpose(1, 2).reshape(num_rois, oh, channels * width)

    grad_features = grad_rois = None
    if need_features:
        if batch == 1:  # dF[c, h, w] = sum_{k, p} Wy[k, p, h] R[k, p, c, w]
            g = weights_y.reshape(num_rois * oh, height).t() @ r.reshape(num_rois * oh, -1)  # (H, C*W)
            grad_features = g.reshape(1, height, channels, width).transpose(1, 2)
        else:
            g = torch.bmm(weights_y.transpose(1, 2), r)  # (K, H, C*W)
            grad_features = features.new_zeros(batch, height, channels * width).index_add_(0, batch_index, g)
            grad_features = grad_features.reshape(batch, height, channels, width).transpose(1, 2)
        grad_features = grad_features.contiguous()
    if need_rois:
        # dWy[k, p, h] = sum_{c, w} R[k, p, c, w] F[b_k, c, h, w]
        if batch == 1:
            grad_wy = (r.reshape(num_rois * oh, -1) @ f_hcw.t()).reshape(num_rois, oh, height)
        else:
            f_t = features[batch_index].permute(0, 1, 3, 2).reshape(num_rois, channels * width, height)
            grad_wy = torch.bmm(r, f_t)  # (K, oh, H)
        # dWx[k, q, w] = sum_{c, p} dI[k, c, p, q] rows[k, p, c, w]
        grad_wx = torch.bmm(grad_int.permute(0, 3, 2, 1).reshape(num_rois, ow, oh * channels), rows)
        # the area: out = I / (bin_h bin_w), d out / d area = -out / area
        grad_area = torch.where(nonzero, -(grad_out * out).sum(dim=(1, 2, 3), keepdim=True) / safe_area,
                                torch.zeros_like(area))[:, 0, 0, 0]  # (K,)
        x1, y1, x2, y2 = boxes.unbind(dim=1)
        if grad_wy.shape == grad_wx.shape:  # both axes in one call, as in the forward pass
            grad_bins = torch.cat([grad_area * bin_w, grad_area * bin_h])
            g1, g2 = _bin_weights_backward(torch.cat([grad_wy, grad_wx]), grad_bins, torch.cat([offsets_y, offsets_x]),
                                           torch.cat([y1, x1]), torch.cat([y2, x2]))
            (gy1, gx1), (gy2, gx2) = g1.chunk(2), g2.chunk(2)
        else:
            gy1, gy2 = _bin_weights_backward(grad_wy, grad_area * bin_w, offsets_y, y1, y2)
            gx1, gx2 = _bin_weights_backward(grad_wx, grad_area * bin_h, offsets_x, x1, x2)
        grad_boxes = torch.stack([gx1, gy1, gx2, gy2], dim=1) * spatial_scale  # (K, 4)
        grad_rois = torch.cat([torch.zeros_like(grad_boxes[:, :1]), grad_boxes], dim=1).to(rois_dtype)
    return grad_features, grad_rois


def prroi_layout(features: Tensor) -> Tensor:
    """The same (B, C, H, W) values stored row by row (memory order B, H, C, W), the layout in which
    :func:`prroi_pool2d` reads a single feature map without copying it. Worth it for a map pooled many times
    (box refinement pools one map 2 x 5 times per frame)."""
    return features.transpose(1, 2).contiguous().transpose(1, 2)


class _PrRoIPool(torch.autograd.Function):
    """The pooling with a hand-written backward pass (the derivatives autograd would find, in a handful of
    matrix products instead of ~50 small autograd nodes; refinement runs it 10 times per frame)."""

    @staticmethod
    def forward(ctx: Any, features: Tensor, rois: Tensor, oh: int, ow: int, spatial_scale: float) -> Tensor:
        out, saved = _forward(features, rois, oh, ow, spatial_scale)
        tensors, meta = saved[:-2], saved[-2:]
        ctx.save_for_backward(*tensors, out)
        ctx.meta = meta
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        *tensors, out = ctx.saved_tensors
        grad_features, grad_rois = _backward((*tensors, *ctx.meta), out, grad_out, ctx.needs_input_grad[0],
                                             ctx.needs_input_grad[1])
        return grad_features, grad_rois, None, None, None
