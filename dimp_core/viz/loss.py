"""DiMP's learned discriminative loss: its label, target mask and spatial weight, and its residual (notebook 03).

The loss of :class:`~dimp_core.nets.model_predictor.SteepestDescentGN` is learned as three functions of the
distance d from a score cell to the target centre c, each a 1x1 convolution over the triangular distance
bins rho_k(d) (:func:`~dimp_core.nets.model_predictor.distance_basis`):

.. math::
    y_c(d) = \\sum_k \\phi^y_k \\rho_k(d), \\quad m_c(d) = \\sigma\\big(\\sum_k \\phi^m_k \\rho_k(d)\\big), \\quad
    v_c(d) = \\sum_k \\phi^v_k \\rho_k(d)

and the per-pixel residual is r = v_c (m_c s + (1 - m_c) max(0, s) - y_c). Where m_c = 0 a negative score
costs nothing (a hinge): easy negatives have zero residual and no gradient. A plain L2 loss with Gaussian
labels, r = s - exp(-d^2 / (2 sigma^2)), pushes every background score to exactly 0, negative or not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor

from dimp_core.nets.dimpnet import DiMPNet
from dimp_core.nets.model_predictor import SteepestDescentGN, distance_basis, residual
from dimp_core.viz.figures import GT_COLOR
from dimp_core.viz.frames import draw_box

ZERO_RESIDUAL = 0.01  # |r| below 1 % of the target's label counts as zero


@dataclass(frozen=True)
class LossFunctions:
    """y(d), m(d), v(d) sampled at distances d (cells), each (D,) numpy."""

    distance: np.ndarray
    label: np.ndarray
    mask: np.ndarray
    weight: np.ndarray


def initial_optimizer(net: DiMPNet) -> SteepestDescentGN:
    """The model predictor's optimiser as the network's constructor initialises it (before any training)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # the optimiser's initialisation is deterministic; the seed only spares the RNG
        return DiMPNet(net.config, pretrained_backbone=False).classifier.filter_optimizer


def loss_functions(optimizer: SteepestDescentGN, distance: np.ndarray | Tensor) -> LossFunctions:
    """Evaluate the learned label, target mask and spatial weight at the given distances (in score cells).

    Each distance d becomes a 1 x 1 grid whose one cell lies d cells from the centre, so the values come
    from the optimiser's own :func:`distance_basis` and 1x1 convolutions.
    """
    d = torch.as_tensor(np.asarray(distance, dtype=np.float32))
    center = torch.stack([torch.zeros_like(d), -d], dim=1)  # (D, 2) (row, col): cell (0, 0) is d cells away
    rho = distance_basis(center, (1, 1), optimizer.num_dist_bins, optimizer.bin_displacement)  # (D, K, 1, 1)
    with torch.no_grad():
        values = [fn(rho).reshape(-1).numpy() for fn in (optimizer.label_map_predictor,
                                                         optimizer.target_mask_predictor,
                                                         optimizer.spatial_weight_predictor)]
    return LossFunctions(d.numpy(), *values)


def distance_map(box: Tensor, output_size: tuple[int, int], stride: int = 16) -> Tensor:
    """(Ho, Wo) distance in cells from every score cell to the target centre c = (box centre) / stride
    (the centre :meth:`SteepestDescentGN.loss_maps` uses for an even filter)."""
    b = box.reshape(4).double()
    cx, cy = float((b[0] + b[2] / 2) / stride), float((b[1] + b[3] / 2) / stride)
    rows = torch.arange(output_size[0], dtype=torch.float64).reshape(-1, 1)
    cols = torch.arange(output_size[1], dtype=torch.float64).reshape(1, -1)
    return torch.sqrt((rows - cy) ** 2 + (cols - cx) ** 2).float()


@dataclass(frozen=True)
class ResidualMaps:
    """Per-pixel residuals of one score map under the learned loss and under L2 with Gaussian labels.

    All (Ho, Wo) numpy: ``scores`` s, ``distance`` d (cells), the learned ``label``, ``mask``, ``weight``,
    ``learned`` = v (m s + (1 - m) max(0, s) - y), ``gauss_label`` = exp(-d^2 / (2 sigma^2)) and
    ``l2`` = s - gauss_label.
    """

    scores: np.ndarray
    distance: np.ndarray
    label: np.ndarray
    mask: np.ndarray
    weight: np.ndarray
    learned: np.ndarray
    gauss_label: np.ndarray
    l2: np.ndarray

    def background(self, radius: float) -> np.ndarray:
        """Boolean map of the cells at least ``radius`` cells from the target centre."""
        return self.distance >= radius

    def zero_fraction(self, which: str, radius: float, tol: float = ZERO_RESIDUAL) -> float:
        """Fraction of background cells (d >= radius) whose ``which`` ('learned' or 'l2') residual is below tol."""
        r = {"learned": self.learned, "l2": self.l2}[which]
        return float(np.mean(np.abs(r[self.background(radius)]) < tol))

    def background_loss(self, which: str, radius: float) -> float:
        """sum r^2 over the background cells (d >= radius): what they add to the loss."""
        r = {"learned": self.learned, "l2": self.l2}[which]
        return float((r[self.background(radius)] ** 2).sum())


def residual_maps(optimizer: SteepestDescentGN, scores: Tensor, box: Tensor, gauss_sigma: float,
                  filter_size: int = 4) -> ResidualMaps:
    """Residuals of ``scores`` (Ho, Wo) for the target ``box`` (x, y, w, h) in patch pixels.

    The learned loss comes from ``optimizer.loss_maps`` and :func:`residual` (without the sample weight
    sqrt(w_j), the same for every cell); the L2 loss is :func:`residual` with m = 1, v = 1 and Gaussian labels
    of std ``gauss_sigma`` cells (DiMP's initial label).
    """
    size = (scores.shape[-2], scores.shape[-1])
    s = scores.reshape(1, 1, *size).float()
    with torch.no_grad():
        label, mask, weight = optimizer.loss_maps(box.reshape(1, 1, 4).float(), size, filter_size)
        learned = residual(s, label, mask, weight)
        d = distance_map(box, size, optimizer.feat_stride)
        gauss = torch.exp(-0.5 * (d / gauss_sigma) ** 2).reshape(1, 1, *size)
        ones = torch.ones_like(s)
        l2 = residual(s, gauss, ones, ones)
    return ResidualMaps(*(t.reshape(size).numpy() for t in (s, d, label, mask, weight, learned, gauss, l2)))


# --------------------------------------------------------------------------- figures


def plot_loss_functions(initial: LossFunctions, trained: LossFunctions) -> Figure:
    """y(d), m(d) and v(d): the network's initialisation (dashed) and the shipped trained weights (solid)."""
    fig = Figure(figsize=(12, 3.6), layout="constrained")
    axes = fig.subplots(1, 3)
    panels = [("label", "label y_c(d)", "Learned label"), ("mask", "target mask m_c(d)", "Learned target mask"),
              ("weight", "spatial weight v_c(d)", "Learned spatial weight")]
    for ax, (key, ylabel, title) in zip(axes, panels, strict=True):
        ax.plot(initial.distance, getattr(initial, key), "--", color="C0", label="initial (network constructor)")
        ax.plot(trained.distance, getattr(trained, key), "-", color="C3", label="trained (shipped weights)")
        ax.axhline(0, color="0.6", linewidth=0.8)
        ax.set(xlabel="distance d to the target centre (score cells)", ylabel=ylabel, title=title)
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize="small")
    return fig


def plot_residual_maps(maps: ResidualMaps, patch: np.ndarray, box: np.ndarray, radius: float,
                       title: str = "train frame", initial: ResidualMaps | None = None) -> Figure:
    """The patch, its score map, the residual under the learned loss (and, with ``initial``, under the loss
    at its initialisation) and under L2, all residuals on one colour scale; the background (d >= radius)
    lies outside the dotted circle."""
    panels = [(maps, "learned", "learned loss (trained)")]
    if initial is not None:
        panels.append((initial, "learned", "learned loss (initial)"))
    panels.append((maps, "l2", "L2, Gaussian labels"))
    fig = Figure(figsize=(3.7 * (2 + len(panels)), 3.9), layout="constrained")
    axes = fig.subplots(1, 2 + len(panels))
    axes[0].imshow(patch)
    draw_box(axes[0], box, GT_COLOR, "target")
    axes[0].set(xticks=[], yticks=[], title=title)
    lim = float(np.abs(maps.scores).max())
    image = axes[1].imshow(maps.scores, cmap="RdBu_r", vmin=-lim, vmax=lim)
    axes[1].set_title("score map s = x * f")
    fig.colorbar(image, ax=axes[1], shrink=0.85)
    rlim = max(float(np.abs(getattr(m, key)).max()) for m, key, _ in panels)
    for ax, (m, key, name) in zip(axes[2:], panels, strict=True):
        image = ax.imshow(getattr(m, key), cmap="RdBu_r", vmin=-rlim, vmax=rlim)
        ax.set_title(f"residual r, {name}\n{100 * m.zero_fraction(key, radius):.0f}% of background cells "
                     f"|r| < {ZERO_RESIDUAL:g}", fontsize="medium")
    fig.colorbar(image, ax=list(axes[2:]), shrink=0.85, label="residual r")
    for ax in axes[1:]:
        ax.contour(maps.distance, levels=[radius], colors="k", linewidths=1, linestyles=":")
        ax.set(xticks=[], yticks=[])
    fig.suptitle(f"Per-pixel residuals on a real score map (dotted circle: background starts at d = {radius:g} cells)")
    return fig


def plot_pixel_losses(optimizer: SteepestDescentGN, distances: tuple[float, ...], gauss_sigma: float,
                      scores: np.ndarray | None = None) -> Figure:
    """The loss of one pixel, r^2, as a function of its score s, at a few distances d: learned vs L2.

    Far from the target the learned loss is flat for s < 0 (hinge): an easy negative costs nothing.
    """
    s = np.linspace(-1.0, 1.5, 251) if scores is None else np.asarray(scores)
    funcs = loss_functions(optimizer, np.asarray(distances))
    fig = Figure(figsize=(4.2 * len(distances), 3.6), layout="constrained")
    axes = fig.subplots(1, len(distances), squeeze=False)[0]
    st = torch.as_tensor(s, dtype=torch.float32)
    for ax, d, y, m, v in zip(axes, funcs.distance, funcs.label, funcs.mask, funcs.weight, strict=True):
        full = [torch.full_like(st, float(value)) for value in (y, m, v)]
        learned = residual(st, *full).numpy() ** 2
        gauss = float(np.exp(-0.5 * (d / gauss_sigma) ** 2))
        ones = torch.ones_like(st)
        l2 = residual(st, torch.full_like(st, gauss), ones, ones).numpy() ** 2
        ax.plot(s, learned, color="C3", label=f"learned: y={y:.2f}, m={m:.2f}, v={v:.2f}")
        ax.plot(s, l2, "--", color="C0", label=f"L2: Gaussian label {gauss:.2f}")
        ax.axvline(0, color="0.6", linewidth=0.8)
        ax.set(xlabel="score s of the pixel", ylabel="pixel loss r^2", title=f"a pixel at d = {d:g} cells",
               ylim=(0, None))
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small", loc="upper center")
    return fig
