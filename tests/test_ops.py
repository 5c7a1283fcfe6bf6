"""Tests for dimp_core.ops.prroi_pool2d (Precise RoI Pooling).

The reference is an independent numpy midpoint-rule integration of the bilinear surface,
evaluated from the textbook four-neighbour formula with zero padding (floor / fraction), not
from the closed-form hat integrals used by the implementation.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dimp_core.ops import prroi_pool2d

# Feature map shared by the value tests: non-square so that swapped axes are caught.
HEIGHT, WIDTH, CHANNELS = 7, 9, 3
SAMPLES_PER_BIN = 2000  # midpoint samples per bin and axis (error << 1e-4, see _midpoint_average)


def _interpolation_matrix(points: np.ndarray, size: int) -> np.ndarray:
    """Bilinear interpolation along one axis, as a (len(points), size) matrix.

    Row n holds the weights that give the interpolated value at ``points[n]`` from the samples
    at nodes 0..size-1: weight 1 - frac on floor(point), frac on floor(point) + 1. Nodes that
    fall outside the map are dropped, which is interpolation of the zero-padded map.
    """
    lower = np.floor(points).astype(np.int64)
    frac = points - lower
    matrix = np.zeros((len(points), size))
    rows = np.arange(len(points))
    for node, weight in ((lower, 1.0 - frac), (lower + 1, frac)):
        inside = (node >= 0) & (node < size)
        matrix[rows[inside], node[inside]] += weight[inside]
    return matrix


def _bilinear_at(feature: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Bilinear surface of a (C, H, W) zero-padded map at every point of the ys x xs grid."""
    channels, height, width = feature.shape
    padded = np.zeros((channels, height + 4, width + 4))
    padded[:, 2:-2, 2:-2] = feature
    # Points more than one cell outside the map only touch zero padding: clip them there.
    yy, xx = np.meshgrid(np.clip(ys, -2, height + 1), np.clip(xs, -2, width + 1), indexing="ij")
    y0, x0 = np.floor(yy).astype(np.int64), np.floor(xx).astype(np.int64)
    fy, fx = yy - y0, xx - x0
    y0, x0 = np.minimum(y0 + 2, height + 2), np.minimum(x0 + 2, width + 2)  # padded indices
    return (
        padded[:, y0, x0] * (1 - fy) * (1 - fx)
        + padded[:, y0, x0 + 1] * (1 - fy) * fx
        + padded[:, y0 + 1, x0] * fy * (1 - fx)
        + padded[:, y0 + 1, x0 + 1] * fy * fx
    )


def _midpoint_points(start: float, length: float, n_bins: int, samples: int) -> np.ndarray:
    """(n_bins, samples) midpoints of ``samples`` equal sub-intervals of each bin."""
    bin_size = length / n_bins
    offsets = (np.arange(samples) + 0.5) / samples  # (samples,)
    return start + (np.arange(n_bins)[:, None] + offsets[None, :]) * bin_size


def _midpoint_average(
    feature: np.ndarray,
    box: tuple[float, float, float, float],
    out_h: int,
    out_w: int,
    samples: int = SAMPLES_PER_BIN,
) -> np.ndarray:
    """Reference PrRoI pooling of one (C, H, W) map over one box given in feature coordinates.

    Each bin's average is the mean of the bilinear surface over samples x samples midpoints.
    The surface is bilinear on every unit cell, so the mean over the tensor grid of midpoints
    factorises into (mean of the y interpolation rows) @ F @ (mean of the x rows)^T; this is the
    same sum, only faster. Midpoint-rule error per kink of the piecewise-linear 1-D profile is
    at most |slope jump| * h^2 / 8 with h = bin / samples, far below 1e-4 here.
    """
    x1, y1, x2, y2 = box
    box_h, box_w = max(y2 - y1, 0.0), max(x2 - x1, 0.0)
    channels, height, width = feature.shape
    if box_h == 0.0 or box_w == 0.0:
        return np.zeros((channels, out_h, out_w))
    ys = _midpoint_points(y1, box_h, out_h, samples)  # (oh, samples)
    xs = _midpoint_points(x1, box_w, out_w, samples)  # (ow, samples)
    rows_y = _interpolation_matrix(ys.ravel(), height).reshape(out_h, samples, height).mean(axis=1)  # (oh, H)
    rows_x = _interpolation_matrix(xs.ravel(), width).reshape(out_w, samples, width).mean(axis=1)  # (ow, W)
    return np.einsum("ph,chw,qw->cpq", rows_y, feature, rows_x)  # (C, oh, ow)


def _feature(seed: int = 0, batch: int = 1, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, CHANNELS, HEIGHT, WIDTH, generator=generator, dtype=dtype)


# Boxes (x1, y1, x2, y2) in FEATURE coordinates; tests divide by the scale to get pixels.
# The map's nodes span x in [0, 8], y in [0, 6]; the surface is non-zero on (-1, 9) x (-1, 7).
BOXES = {
    "inside": (1.3, 0.7, 6.2, 5.4),
    "whole_map": (0.0, 0.0, 8.0, 6.0),
    "partly_outside_top_left": (-2.5, -1.2, 3.3, 4.1),
    "partly_outside_bottom_right": (5.5, 3.2, 11.7, 9.3),
    "overhanging_last_node": (8.2, 1.0, 9.5, 3.0),  # only the hats of column 8 reach it
    "entirely_beyond": (10.5, 8.2, 14.0, 12.5),
    "entirely_before": (-6.0, -5.0, -1.5, -1.2),
    "sub_cell": (2.3, 3.1, 2.7, 3.45),
    "zero_width": (2.0, 1.0, 2.0, 4.0),
    "zero_height": (1.5, 2.25, 4.5, 2.25),
    "inverted": (4.0, 4.0, 3.0, 5.0),  # width clamped to 0
}


def test_reference_factorisation_matches_pointwise_evaluation() -> None:
    """The fast reference equals a direct per-point evaluation of the surface on the same grid."""
    feature = _feature(seed=1)[0].numpy()
    box, out_h, out_w, samples = (-1.7, 0.4, 5.9, 7.8), 3, 2, 60
    ys = _midpoint_points(box[1], box[3] - box[1], out_h, samples)  # (oh, samples)
    xs = _midpoint_points(box[0], box[2] - box[0], out_w, samples)  # (ow, samples)
    surface = _bilinear_at(feature, ys.ravel(), xs.ravel())  # (C, oh * samples, ow * samples)
    direct = surface.reshape(CHANNELS, out_h, samples, out_w, samples).mean(axis=(2, 4))
    np.testing.assert_allclose(_midpoint_average(feature, box, out_h, out_w, samples), direct, atol=1e-12)


@pytest.mark.parametrize("scale", [1 / 8, 1 / 16, 1.0])
@pytest.mark.parametrize("output_size", [1, 3, 4, 5, (2, 3)])
@pytest.mark.parametrize("name", list(BOXES))
def test_matches_numerical_integration(name: str, output_size: int | tuple[int, int], scale: float) -> None:
    feature = _feature(seed=2)
    box = BOXES[name]
    rois = torch.tensor([[0.0, *(c / scale for c in box)]], dtype=torch.float64)
    out_h, out_w = (output_size, output_size) if isinstance(output_size, int) else output_size

    pooled = prroi_pool2d(feature, rois, output_size, spatial_scale=scale)

    assert pooled.shape == (1, CHANNELS, out_h, out_w)
    expected = _midpoint_average(feature[0].numpy(), box, out_h, out_w)
    np.testing.assert_allclose(pooled[0].numpy(), expected, atol=1e-4, rtol=0)
    if name in {"entirely_beyond", "entirely_before", "zero_width", "zero_height", "inverted"}:
        assert torch.count_nonzero(pooled) == 0


def test_float32_matches_float64() -> None:
    feature = _feature(seed=3)
    rois = torch.tensor([[0.0, 10.4, 5.6, 49.6, 43.2], [0.0, -20.0, 8.0, 30.0, 90.0]], dtype=torch.float64)
    expected = prroi_pool2d(feature, rois, 4, spatial_scale=1 / 8)
    pooled = prroi_pool2d(feature.float(), rois.float(), 4, spatial_scale=1 / 8)
    assert pooled.dtype == torch.float32
    torch.testing.assert_close(pooled.double(), expected, atol=1e-5, rtol=1e-5)


def _edges_clear_of_integers(box: tuple[float, float, float, float], out_h: int, out_w: int) -> bool:
    """True if every bin edge is at least 0.05 away from an integer (G'' jumps there)."""
    x1, y1, x2, y2 = box
    edges = np.concatenate([np.linspace(y1, y2, out_h + 1), np.linspace(x1, x2, out_w + 1)])
    return bool(np.all(np.abs(edges - np.round(edges)) > 0.05))


GRAD_BOXES = [(1.3, 0.7, 6.2, 5.5), (-1.45, -0.35, 3.35, 2.5), (6.6, 4.2, 9.7, 7.55), (2.3, 3.1, 2.7, 3.45)]


def test_gradcheck_features_and_coordinates() -> None:
    out_h, out_w, scale = 2, 3, 0.5
    assert all(_edges_clear_of_integers(box, out_h, out_w) for box in GRAD_BOXES)
    generator = torch.Generator().manual_seed(4)
    features = torch.randn(2, 2, HEIGHT, WIDTH, generator=generator, dtype=torch.float64, requires_grad=True)
    coords = (torch.tensor(GRAD_BOXES, dtype=torch.float64) / scale).requires_grad_()  # (K, 4) pixels
    batch_index = torch.tensor([[0.0], [1.0], [1.0], [0.0]], dtype=torch.float64)  # (K, 1)

    def pool(feats: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        # The batch index is not differentiable, so it is attached outside gradcheck's inputs.
        return prroi_pool2d(feats, torch.cat([batch_index, boxes], dim=1), (out_h, out_w), scale)

    assert torch.autograd.gradcheck(pool, (features, coords), eps=1e-6, atol=1e-6, rtol=1e-4)


def test_batched_call_equals_per_roi_calls() -> None:
    features = _feature(seed=5, batch=2)
    rois = torch.tensor(
        [
            [1.0, 10.4, 5.6, 49.6, 43.2],
            [0.0, -20.0, 8.0, 30.0, 90.0],
            [1.0, 18.4, 24.8, 21.6, 27.6],
            [0.0, 16.0, 8.0, 16.0, 32.0],  # zero area
            [1.0, 0.0, 0.0, 72.0, 56.0],
            [0.0, 100.0, 80.0, 120.0, 96.0],  # beyond the map
        ],
        dtype=torch.float64,
    )
    batched = prroi_pool2d(features, rois, 3, spatial_scale=1 / 8)
    assert batched.shape == (len(rois), CHANNELS, 3, 3)
    for k, roi in enumerate(rois):
        b = int(roi[0])
        single = prroi_pool2d(features, roi[None], 3, spatial_scale=1 / 8)
        torch.testing.assert_close(batched[k : k + 1], single, atol=1e-12, rtol=0)
        alone = prroi_pool2d(features[b : b + 1], torch.cat([roi.new_zeros(1), roi[1:]])[None], 3, 1 / 8)
        torch.testing.assert_close(batched[k : k + 1], alone, atol=1e-12, rtol=0)


def test_empty_rois_give_empty_output() -> None:
    pooled = prroi_pool2d(_feature(), torch.zeros(0, 5, dtype=torch.float64), (2, 3), 1 / 16)
    assert pooled.shape == (0, CHANNELS, 2, 3)


@pytest.mark.parametrize("box", [(16.0, 8.0, 16.0, 32.0), (8.0, 12.0, 40.0, 12.0), (40.0, 40.0, 24.0, 48.0)])
def test_zero_area_gives_zero_output_and_finite_gradients(box: tuple[float, float, float, float]) -> None:
    features = _feature(seed=6).requires_grad_()
    rois = torch.tensor([[0.0, *box], [0.0, 10.4, 5.6, 49.6, 43.2]], dtype=torch.float64, requires_grad=True)
    pooled = prroi_pool2d(features, rois, 3, spatial_scale=1 / 8)
    assert torch.count_nonzero(pooled[0]) == 0
    assert torch.count_nonzero(pooled[1]) > 0
    pooled.square().sum().backward()
    assert features.grad is not None and rois.grad is not None
    assert torch.isfinite(features.grad).all()
    assert torch.isfinite(rois.grad).all()
    assert torch.count_nonzero(rois.grad[0]) == 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu() -> None:
    features = _feature(seed=7, batch=2, dtype=torch.float32)
    rois = torch.tensor([[1.0, 10.4, 5.6, 49.6, 43.2], [0.0, -20.0, 8.0, 30.0, 90.0]])
    expected = prroi_pool2d(features, rois, 4, 1 / 8)
    pooled = prroi_pool2d(features.cuda(), rois.cuda(), 4, 1 / 8)
    torch.testing.assert_close(pooled.cpu(), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    ("features", "rois", "output_size", "scale", "match"),
    [
        (torch.zeros(3, 7, 9), torch.zeros(1, 5), 3, 1.0, r"features must be 4-D"),
        (torch.zeros(1, 3, 7, 9, dtype=torch.long), torch.zeros(1, 5), 3, 1.0, r"features must be floating"),
        (torch.zeros(1, 3, 7, 9), torch.zeros(1, 4), 3, 1.0, r"rois must have shape \(K, 5\)"),
        (torch.zeros(1, 3, 7, 9), torch.zeros(5), 3, 1.0, r"rois must have shape \(K, 5\)"),
        (torch.zeros(1, 3, 7, 9), torch.zeros(1, 5), 0, 1.0, r"output_size must be"),
        (torch.zeros(1, 3, 7, 9), torch.zeros(1, 5), (3, -1), 1.0, r"output_size must be"),
        (torch.zeros(1, 3, 7, 9), torch.zeros(1, 5), (3, 3, 3), 1.0, r"output_size must be"),
        (torch.zeros(1, 3, 7, 9), torch.zeros(1, 5), 2.5, 1.0, r"output_size must be"),
        (torch.zeros(1, 3, 7, 9), torch.zeros(1, 5), 3, 0.0, r"spatial_scale must be positive"),
        (
            torch.zeros(2, 3, 7, 9),
            torch.tensor([[2.0, 0, 0, 8, 8]]),
            3,
            1.0,
            r"batch indices must lie in \[0, 1\]",
        ),
        (torch.zeros(2, 3, 7, 9), torch.tensor([[-1.0, 0, 0, 8, 8]]), 3, 1.0, r"batch indices"),
    ],
)
def test_bad_input_raises(features, rois, output_size, scale, match) -> None:
    with pytest.raises(ValueError, match=match):
        prroi_pool2d(features, rois, output_size, scale)


def test_gradcheck_single_map_fast_path() -> None:
    """One feature map (tracking): no per-roi copies, the same derivatives."""
    out_h, out_w, scale = 2, 3, 0.5
    generator = torch.Generator().manual_seed(5)
    features = torch.randn(1, 2, HEIGHT, WIDTH, generator=generator, dtype=torch.float64, requires_grad=True)
    coords = (torch.tensor(GRAD_BOXES, dtype=torch.float64) / scale).requires_grad_()

    def pool(feats: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        return prroi_pool2d(feats, torch.cat([torch.zeros(len(GRAD_BOXES), 1, dtype=torch.float64), boxes], dim=1),
                            (out_h, out_w), scale)

    assert torch.autograd.gradcheck(pool, (features, coords), eps=1e-6, atol=1e-6, rtol=1e-4)


def test_gradcheck_square_map_and_bins() -> None:
    """A square map with square bins (the IoU-Net's case) takes the path that treats both axes at once."""
    generator = torch.Generator().manual_seed(6)
    features = torch.randn(1, 2, 8, 8, generator=generator, dtype=torch.float64, requires_grad=True)
    coords = torch.tensor([[2.6, 1.4, 12.4, 11.0], [-2.9, -0.7, 6.7, 5.0]], dtype=torch.float64, requires_grad=True)

    def pool(feats: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        return prroi_pool2d(feats, torch.cat([torch.zeros(2, 1, dtype=torch.float64), boxes], dim=1), 3, 0.5)

    assert torch.autograd.gradcheck(pool, (features, coords), eps=1e-6, atol=1e-6, rtol=1e-4)
    expected = torch.tensor(_midpoint_average(features[0].detach().numpy(), (1.3, 0.7, 6.2, 5.5), 3, 3))
    torch.testing.assert_close(pool(features, coords)[0].detach(), expected, atol=1e-4, rtol=0)
