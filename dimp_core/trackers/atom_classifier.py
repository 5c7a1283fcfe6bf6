"""ATOM's online target classifier: a factorised convolution learned with Gauss-Newton and conjugate gradient.

Paper: Danelljan et al., "ATOM: Accurate Tracking by Overlap Maximization" (CVPR 2019), sections "Target
Classification" and "Online Learning". Reference code: pytracking ``pytracking/tracker/atom/atom.py`` and
``optim.py``, ``pytracking/libs/optimization.py`` (``GaussNewtonCG``, ``ConjugateGradient``), ``dcf.py`` and
``fourier.py``. The generic optimiser there (``TensorList``, problem classes) is here three functions on
one flat parameter vector theta: :func:`linearize`, :func:`conjugate_gradient` and :func:`gauss_newton_cg`.

The classifier is two convolutions, a 1x1 projection P and a k x k filter f, then an activation phi:

.. math:: s(x) = \\phi(f * (P x)), \\qquad \\phi = \\mathrm{MLU}_{0.05}

learned from samples x_j with Gaussian labels y_j and weights w_j by minimising

.. math:: L(f, P) = \\sum_j w_j \\| \\phi(f * (P x_j)) - y_j \\|^2 + \\lambda_f \\|f\\|^2 + \\lambda_P \\|P\\|^2

Symbols:

==============  ====================  ======================================================================
paper           code                  shape
==============  ====================  ======================================================================
x_j             ``x``                 (N, C, H, W)   RMS-normalised backbone features (C = 256 for layer3)
P               ``P``                 (D, C, 1, 1)   projection, D = ``compressed_dim`` (64)
f               ``f``                 (1, D, k, k)   the filter (k = 4)
s               ``scores``            (N, H, W)      raw scores f * (P x), even k: last row/col dropped
y_j             ``y``                 (N, H, W)      Gaussian labels
w_j             ``weights``           (N,)           sample weights
lambda_f        ``filter_reg``        ()             0.1
lambda_P        ``projection_reg``    ()             1e-4
r(theta)        ``residuals``         (R,)           sqrt(w_j) (phi(s_j) - y_j), sqrt(lambda_f) f, sqrt(lambda_P) P
J               (never formed)        (R, n)         dr/dtheta; only J v and J^T u are computed, by autograd
==============  ====================  ======================================================================

Score-map geometry (the reference's half-cell convention): with padding k // 2 and the last row and
column dropped, raw score cell i is centred on patch pixel ``stride * i - 0.5`` (pixel-index coordinates,
patch centre at (S - 1) / 2), so a target centred in the patch has its label peak at cell H / 2 (9 of 18).
:func:`fourier_upsample` keeps that alignment: upsampled index j looks at patch pixel ``j / u - 0.5`` for an
upsampling factor u relative to patch pixels.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

# --------------------------------------------------------------------------- the model


def rms_normalize(x: Tensor) -> Tensor:
    """x / sqrt(mean(x^2)) per sample (pytracking ``normalize_power=2``). (N, C, H, W) -> same."""
    return x / (x.square().mean(dim=(1, 2, 3), keepdim=True) + 1e-10).sqrt()


def mlu(s: Tensor, min_val: float) -> Tensor:
    """MLU activation: phi(s) = s for s >= 0, min_val (exp(s / min_val) - 1) below (ELU of a leaky ReLU)."""
    return F.elu(F.leaky_relu(s, 1 / min_val), min_val)


def project(x: Tensor, P: Tensor) -> Tensor:
    """P x: the 1x1 projection. (N, C, H, W), (D, C, 1, 1) -> (N, D, H, W)."""
    return F.conv2d(x, P)


def fold_projection(f: Tensor, P: Tensor) -> Tensor:
    """The filter f P with f * (P x) = (f P) * x: both are linear, so the projection folds into the filter.

    Scoring with the folded filter costs C k^2 multiply-adds per score cell instead of C D + D k^2 (4x fewer
    for C = 256, D = 64, k = 4), which is what makes the joint optimisation of the first frame cheap.
    (1, D, k, k), (D, C, 1, 1) -> (1, C, k, k).
    """
    return torch.einsum("odab,dc->ocab", f, P[:, :, 0, 0])


def apply_filter(x: Tensor, f: Tensor) -> Tensor:
    """Raw scores s = f * x, padding k // 2; an even k gives one extra row/col, which is dropped.

    Args:
        x: (N, D, H, W) projected features.
        f: (1, D, k, k) filter.

    Returns:
        (N, H, W) scores (18 x 18 for an 18 x 18 feature map and k = 4).
    """
    kh, kw = f.shape[-2:]
    s = F.conv2d(x, f, padding=(kh // 2, kw // 2))[:, 0]  # (N, H + 1 - kh % 2, W + 1 - kw % 2)
    return s[:, : x.shape[-2], : x.shape[-1]]


def label_centers(boxes: Tensor, stride: float) -> Tensor:
    """Target centres (x, y) in score cells from (M, 4) patch boxes (x, y, w, h): (x + (w - 1) / 2 + 0.5) / stride."""
    return (boxes[:, :2] + (boxes[:, 2:] - 1) / 2 + 0.5) / stride


def gaussian_labels(centers: Tensor, sigma: float, size: tuple[int, int]) -> Tensor:
    """y(r, c) = exp(-((c - c_x)^2 + (r - c_y)^2) / (2 sigma^2)), one map per centre.

    Args:
        centers: (M, 2) centres (x, y) in score cells.
        sigma: standard deviation in cells.
        size: (H, W) of the score map.

    Returns:
        (M, H, W) labels.
    """
    rows = torch.arange(size[0], dtype=centers.dtype, device=centers.device)
    cols = torch.arange(size[1], dtype=centers.dtype, device=centers.device)
    gy = torch.exp(-((rows[None] - centers[:, 1:2]) ** 2) / (2 * sigma**2))  # (M, H)
    gx = torch.exp(-((cols[None] - centers[:, 0:1]) ** 2) / (2 * sigma**2))  # (M, W)
    return gy[:, :, None] * gx[:, None, :]


# --------------------------------------------------------------------------- the optimiser


def conjugate_gradient(A: Callable[[Tensor], Tensor], b: Tensor, num_iter: int,
                       precond: Tensor | None = None) -> Tensor:
    """Solve A d = b for a symmetric positive definite A by preconditioned CG from d = 0 (Polak-Ribiere).

    .. math:: z_i = M^{-1} r_i, \\quad
              \\beta_i = \\max\\Big(0, \\frac{r_i^T z_i - r_{i-1}^T z_i}{r_{i-1}^T z_{i-1}}\\Big), \\quad
              p_i = z_i + \\beta_i p_{i-1}, \\quad \\alpha_i = \\frac{r_i^T z_i}{p_i^T A p_i}

    Stops early when r^T z = 0 (solved exactly). pytracking ``ConjugateGradientBase.run_CG`` with
    ``fletcher_reeves=False``, ``standard_alpha=True`` and no direction forgetting.

    Args:
        A: the linear map d -> A d on (n,) vectors.
        b: (n,) right-hand side.
        num_iter: CG iterations.
        precond: (n,) diagonal of M^{-1} (None: no preconditioning).

    Returns:
        (n,) the solution estimate d.
    """
    d = torch.zeros_like(b)
    r = b.clone()  # residual b - A d
    p = r_prev = rho_prev = None
    for _ in range(num_iter):
        z = r if precond is None else precond * r
        rho = r @ z
        if rho == 0:
            break
        if p is None:
            p = z
        else:
            beta = ((rho - r_prev @ z) / rho_prev).clamp(min=0)
            p = z + beta * p
        q = A(p)
        alpha = rho / (p @ q)
        d = d + alpha * p
        r_prev, rho_prev = r, rho
        r = r - alpha * q
    return d


def linearize(residual_fn: Callable[[Tensor], Tensor],
              theta: Tensor) -> tuple[Tensor, Tensor, Callable[[Tensor], Tensor]]:
    """r(theta), the gradient J^T r and the Gauss-Newton matrix-vector product v -> J^T J v at theta.

    J is never formed. J^T u is one backward pass; J v is the derivative of J^T u with respect to u (the
    "double backward" trick: J^T u is linear in u), so each product costs two backward passes.
    """
    with torch.enable_grad():
        theta = theta.detach().requires_grad_(True)
        r = residual_fn(theta)  # (R,)
        u = torch.zeros_like(r, requires_grad=True)
        (jt_u,) = torch.autograd.grad(r, theta, u, create_graph=True)  # J^T u, a graph linear in u
        (jt_r,) = torch.autograd.grad(r, theta, r.detach(), retain_graph=True)  # J^T r

    def normal_matrix(v: Tensor) -> Tensor:
        with torch.enable_grad():
            (jv,) = torch.autograd.grad(jt_u, u, v, retain_graph=True)  # J v
            (jt_jv,) = torch.autograd.grad(r, theta, jv, retain_graph=True)  # J^T J v
        return jt_jv

    return r.detach(), jt_r.detach(), normal_matrix


def gauss_newton_cg(residual_fn: Callable[[Tensor], Tensor], theta: Tensor, num_gn_iter: int, num_cg_iter: int,
                    precond: Tensor | None = None) -> tuple[Tensor, list[float]]:
    """Minimise ||r(theta)||^2 by Gauss-Newton: linearise r at theta and solve the normal equations by CG.

    .. math:: J^T J \\, d = -J^T r, \\qquad \\theta \\leftarrow \\theta + d, \\qquad J = \\partial r / \\partial \\theta

    pytracking ``GaussNewtonCG.run`` (``ConjugateGradient.run`` is the case of one linearisation).

    Args:
        residual_fn: theta (n,) -> residuals (R,), differentiable.
        theta: (n,) starting point.
        num_gn_iter: linearisations.
        num_cg_iter: CG iterations per linearisation.
        precond: (n,) diagonal of M^{-1} for CG.

    Returns:
        The new theta (n,) and the loss ||r||^2 at each linearisation point and at the end (num_gn_iter + 1).
    """
    losses = []
    for _ in range(num_gn_iter):
        r, gradient, normal_matrix = linearize(residual_fn, theta)
        losses.append(float(r.square().sum()))
        theta = theta.detach() + conjugate_gradient(normal_matrix, -gradient, num_cg_iter, precond)
    with torch.no_grad():
        losses.append(float(residual_fn(theta).square().sum()))
    return theta, losses


# --------------------------------------------------------------------------- the two learning problems


def _data_residuals(scores: Tensor, y: Tensor, weights: Tensor, min_val: float) -> Tensor:
    """sqrt(w_j) (phi(s_j) - y_j), flattened. (N, H, W), (N, H, W), (N,) -> (N H W,)."""
    return (weights.sqrt()[:, None, None] * (mlu(scores, min_val) - y)).reshape(-1)


def train_joint(x: Tensor, y: Tensor, weights: Tensor, f: Tensor, P: Tensor, filter_reg: float,
                projection_reg: float, min_val: float, num_gn_iter: int,
                num_cg_iter: int) -> tuple[Tensor, Tensor, list[float]]:
    """First frame: Gauss-Newton on (f, P) jointly, theta = (vec f, vec P), preconditioner diag(1 / lambda).

    Args:
        x: (N, C, H, W) features; y: (N, H, W) labels; weights: (N,).
        f: (1, D, k, k) and P: (D, C, 1, 1) starting values.
        filter_reg, projection_reg: lambda_f and lambda_P.
        min_val: the MLU's minimum.
        num_gn_iter, num_cg_iter: 6 and 10 in the reference.

    Returns:
        f, P and the loss L at each linearisation point and at the end.
    """
    n_f = f.numel()

    def residuals(theta: Tensor) -> Tensor:
        f_, P_ = theta[:n_f].reshape(f.shape), theta[n_f:].reshape(P.shape)
        data = _data_residuals(apply_filter(x, fold_projection(f_, P_)), y, weights, min_val)
        return torch.cat([data, math.sqrt(filter_reg) * theta[:n_f], math.sqrt(projection_reg) * theta[n_f:]])

    precond = torch.cat([f.new_full((n_f,), 1 / filter_reg), P.new_full((P.numel(),), 1 / projection_reg)])
    theta, losses = gauss_newton_cg(residuals, torch.cat([f.reshape(-1), P.reshape(-1)]), num_gn_iter,
                                    num_cg_iter, precond)
    return theta[:n_f].reshape(f.shape), theta[n_f:].reshape(P.shape), losses


def train_filter(x: Tensor, y: Tensor, weights: Tensor, f: Tensor, filter_reg: float, min_val: float,
                 num_cg_iter: int) -> tuple[Tensor, list[float]]:
    """Model update: one Gauss-Newton linearisation in f alone (P fixed, x already projected), no preconditioner.

    Args:
        x: (N, D, H, W) projected samples; y: (N, H, W) labels; weights: (N,); f: (1, D, k, k).

    Returns:
        f and the loss before and after.
    """

    def residuals(theta: Tensor) -> Tensor:
        data = _data_residuals(apply_filter(x, theta.reshape(f.shape)), y, weights, min_val)
        return torch.cat([data, math.sqrt(filter_reg) * theta])

    theta, losses = gauss_newton_cg(residuals, f.reshape(-1), 1, num_cg_iter)
    return theta.reshape(f.shape), losses


# --------------------------------------------------------------------------- scores at patch resolution


def _upsample_last_dim(s: Tensor, size: int, nyquist_weight: float) -> Tensor:
    """Trigonometric interpolation of the periodic samples along the last dimension: (..., n) -> (..., size)."""
    n = s.shape[-1]
    if size == n:
        return s
    if size < n:
        raise ValueError(f"cannot Fourier-upsample {n} samples to fewer ({size})")
    spec = torch.fft.fft(s, dim=-1)  # frequencies 0, 1, ..., n - 1 (= -1)
    padded = spec.new_zeros(*spec.shape[:-1], size)
    m = (n - 1) // 2  # highest frequency strictly below Nyquist
    padded[..., : m + 1] = spec[..., : m + 1]  # 0 .. m
    if m > 0:
        padded[..., size - m:] = spec[..., n - m:]  # -m .. -1
    if n % 2 == 0:  # the Nyquist bin n / 2 goes to both +n/2 and -n/2
        padded[..., n // 2] = nyquist_weight * spec[..., n // 2]
        padded[..., size - n // 2] = nyquist_weight * spec[..., n // 2]
    return torch.fft.ifft(padded, dim=-1).real * (size / n)


def fourier_upsample(scores: Tensor, size: tuple[int, int], nyquist_weight: float = 1.0) -> Tensor:
    """Interpolate a periodic score map on a finer grid by zero-padding its spectrum (pytracking ``sample_fs``).

    Output index j looks at input position j H / size (so every (size / H)-th output is at an input
    sample). Separable: the rows, then the columns.

    The Nyquist bin of an even-sized map is the delicate part: the band-limited interpolant that passes
    through every sample splits it, half to +n/2 and half to -n/2 (``nyquist_weight=0.5``). pytracking reads
    the n-point spectrum as an (n + 1)-point series with the Nyquist coefficient at both ends in full,
    which counts it twice (``nyquist_weight=1.0``, the default here, to reproduce its scores): then only
    signals without a Nyquist component are reproduced exactly at the samples.

    Args:
        scores: (..., H, W) real samples.
        size: (H', W') output size, each at least the input size.
        nyquist_weight: 1.0 (pytracking) or 0.5 (exact interpolation).

    Returns:
        (..., H', W') the interpolated map.
    """
    rows = _upsample_last_dim(scores.transpose(-1, -2), size[0], nyquist_weight).transpose(-1, -2)
    return _upsample_last_dim(rows, size[1], nyquist_weight)
