"""Three ways to minimise DiMP's discriminative loss for one target, for comparison (notebook 02).

The objective is the model predictor's own (:mod:`dimp_core.nets.model_predictor`), for one sequence:

.. math::
    L(f) = \\sum_j \\| r(x_j * f, c_j) \\|^2 + \\lambda \\|f\\|^2, \\qquad
    r(s, c) = \\sqrt{w_j} \\, v_c \\, (m_c s + (1 - m_c) \\max(0, s) - y_c)

with sample weights w_j = 1/|S_train| for the first frame, so the data term is the paper's mean over the train
set, and lambda = filter_reg^2 (the paper writes the regulariser as ||lambda f||^2 with lambda = filter_reg).
All three solvers take steps along g = grad of L / 2 (:func:`~dimp_core.nets.model_predictor.filter_gradient`):

- **steepest descent (DiMP)**: f <- f - beta * alpha * g with the Gauss-Newton step length
  alpha = ||g||^2 / (sum_j ||sqrt(w_j) v_c J_j (x_j * g)||^2 + lambda ||g||^2), the exact minimiser of the
  quadratic model along -g; this is :class:`~dimp_core.nets.model_predictor.SteepestDescentGN` itself.
- **gradient descent**: f <- f - eta * g with a fixed step eta.
- **Gauss-Newton with conjugate gradients**: with the signs of the scores s = x * f frozen at the current f,
  s_hat = J s is linear in f and L is quadratic; its minimiser solves the normal equations

  .. math:: (X^T J W J X + \\lambda I) f = X^T J W y, \\qquad W = \\mathrm{diag}(w_j v_c^2)

  which CG solves with one X and one X^T per iteration (a steepest-descent step needs one X^T and two X);
  the signs are then refrozen at the new f and CG restarts (outer Gauss-Newton iterations).

The loss is not convex (a hinge inside a square), so each solver can only find a local minimum: the "CG
solution" is the reference for the minimum that Gauss-Newton reaches from the same initial filter.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from dimp_core.nets.model_predictor import (
    SteepestDescentGN,
    apply_feat_transpose,
    apply_filter,
    discriminative_loss,
    filter_gradient,
    residual,
    score_activation_derivative,
    step_length,
)


def with_overrides(optimizer: SteepestDescentGN, reg: float | None = None, mask_factor: float = 1.0
                   ) -> SteepestDescentGN:
    """A copy of ``optimizer`` with another filter regulariser lambda and/or a scaled target mask.

    Args:
        optimizer: the trained (or initial) model predictor optimiser; it is not modified.
        reg: lambda; None keeps the learned one. Must be >= min_filter_reg^2 (the optimiser's floor).
        mask_factor: gamma, multiplies the target mask's logits: m = sigmoid(gamma * sum_k phi^m_k rho_k).
            1 keeps the learned mask; 0 gives m = 1/2 everywhere; larger gamma makes m closer to a step
            from 1 (L2 near the target) to 0 (hinge far away).
    """
    floor = optimizer.min_filter_reg ** 2
    if reg is not None and not reg >= floor:
        raise ValueError(f"lambda must be at least min_filter_reg^2 = {floor:g}, got {reg}")
    if not math.isfinite(mask_factor):
        raise ValueError(f"mask_factor must be finite, got {mask_factor}")
    out = copy.deepcopy(optimizer)
    with torch.no_grad():
        if reg is not None:
            out.filter_reg.fill_(math.sqrt(reg))
        out.target_mask_predictor[0].weight.mul_(mask_factor)
    return out


@dataclass(frozen=True)
class Objective:
    """L(f) for one sequence (S = 1): train features and the learned label, mask and weight maps.

    Attributes:
        feat: (N, 1, C, H, W) train features x_j.
        label, mask: (N, 1, Ho, Wo) y_c and m_c.
        sqrt_weight: (N, 1, Ho, Wo) sqrt(w_j) v_c.
        reg: () lambda.
    """

    feat: Tensor
    label: Tensor
    mask: Tensor
    sqrt_weight: Tensor
    reg: Tensor

    @classmethod
    def from_predictor(cls, optimizer: SteepestDescentGN, feat: Tensor, boxes: Tensor,
                       sample_weight: Tensor | None = None, filter_size: int = 4) -> Objective:
        """The objective :class:`SteepestDescentGN` minimises for ``feat`` (N, 1, C, H, W) and ``boxes`` (N, 1, 4)
        (as its ``forward``: w_j = 1/N when ``sample_weight`` is None)."""
        if feat.dim() != 5 or feat.shape[1] != 1 or boxes.shape != (feat.shape[0], 1, 4):
            raise ValueError(f"need feat (N, 1, C, H, W) and boxes (N, 1, 4), got {tuple(feat.shape)} and "
                             f"{tuple(boxes.shape)}")
        n = feat.shape[0]
        output_size = (feat.shape[-2] + (filter_size + 1) % 2, feat.shape[-1] + (filter_size + 1) % 2)
        with torch.no_grad():
            label, mask, weight = optimizer.loss_maps(boxes, output_size, filter_size)
            w = torch.full((n,), 1.0 / n, dtype=feat.dtype) if sample_weight is None else sample_weight
            sqrt_weight = w.sqrt().reshape(n, 1, 1, 1) * weight  # (N, 1, Ho, Wo)
            return cls(feat, label, mask, sqrt_weight, optimizer.regularization().reshape(()))

    def loss(self, f: Tensor) -> Tensor:
        """L(f), as the model predictor logs it (:func:`discriminative_loss`)."""
        return discriminative_loss(self.feat, f, self.label, self.mask, self.sqrt_weight, self.reg)

    def residual(self, f: Tensor) -> Tensor:
        """(N, 1, Ho, Wo) r(x_j * f, c_j)."""
        return residual(apply_filter(self.feat, f), self.label, self.mask, self.sqrt_weight)

    def gradient(self, f: Tensor) -> tuple[Tensor, Tensor]:
        """g = grad L(f) / 2 and the Jacobian J = d s_hat / d s at f."""
        scores = apply_filter(self.feat, f)
        res = residual(scores, self.label, self.mask, self.sqrt_weight)
        jac = score_activation_derivative(scores, self.mask)
        return filter_gradient(self.feat, f, res, jac, self.sqrt_weight, self.reg), jac

    def step_length(self, grad: Tensor, jac: Tensor) -> Tensor:
        """The Gauss-Newton step length alpha (:func:`step_length`), a scalar."""
        return step_length(self.feat, grad, jac, self.sqrt_weight, self.reg)[0]

    def normal_equations(self, f: Tensor) -> tuple[Callable[[Tensor], Tensor], Tensor]:
        """The Gauss-Newton normal equations A f = b with the signs of the scores frozen at ``f``.

        A v = X^T (J^2 W (X v)) + lambda v and b = X^T (J W y), W = w_j v_c^2; ``A`` is symmetric positive
        definite (lambda > 0) and v^T A v is the denominator of the step length alpha.
        """
        jac = score_activation_derivative(apply_filter(self.feat, f), self.mask)
        k = f.shape[-1]
        weight_sq = self.sqrt_weight * self.sqrt_weight

        def matvec(v: Tensor) -> Tensor:
            return apply_feat_transpose(self.feat, jac * jac * weight_sq * apply_filter(self.feat, v), k) + self.reg * v

        return matvec, apply_feat_transpose(self.feat, jac * weight_sq * self.label, k)


@dataclass(frozen=True)
class SolverRun:
    """Iterates f_0 .. f_n of one solver, their losses L(f_i) and step sizes (alpha or eta, per step)."""

    name: str
    iterates: list[Tensor]
    losses: list[float]
    steps: list[float]


def steepest_descent(optimizer: SteepestDescentGN, objective: Objective, f0: Tensor, boxes: Tensor,
                     num_iter: int, sample_weight: Tensor | None = None) -> SolverRun:
    """DiMP's optimiser, run by :class:`SteepestDescentGN` itself (``steps`` are beta * alpha).

    ``objective`` must be the one built from the same optimiser, features and boxes (it scores the iterates).
    """
    with torch.no_grad():
        trace = optimizer(f0, objective.feat, boxes, sample_weight=sample_weight, num_iter=num_iter,
                          compute_losses=False)
        beta = float(torch.exp(optimizer.log_step_length))
        return SolverRun("steepest descent (GN step)", trace.iterates,
                         [float(objective.loss(f)) for f in trace.iterates],
                         [beta * float(a[0]) for a in trace.alphas])


def gradient_descent(objective: Objective, f0: Tensor, step: float, num_iter: int) -> SolverRun:
    """f <- f - eta g with a fixed step eta; stops early (keeping the last finite iterate) if it diverges."""
    if not step > 0:
        raise ValueError(f"the step size must be positive, got {step}")
    with torch.no_grad():
        f, iterates = f0, [f0]
        for _ in range(num_iter):
            f = f - step * objective.gradient(f)[0]
            if not torch.isfinite(f).all():
                break
            iterates.append(f)
        return SolverRun(f"gradient descent, eta={step:g}", iterates, [float(objective.loss(f)) for f in iterates],
                         [step] * (len(iterates) - 1))


def conjugate_gradient(matvec: Callable[[Tensor], Tensor], b: Tensor, x0: Tensor, num_iter: int,
                       tol: float = 1e-10) -> list[Tensor]:
    """Conjugate gradients for A x = b (A symmetric positive definite, given as ``matvec``).

    Returns [x0, x1, ...], at most ``num_iter`` steps; stops when ||r|| <= tol ||b||.
    """
    x, r = x0, b - matvec(x0)
    p, rr = r, (r * r).sum()
    out = [x]
    for _ in range(num_iter):
        if rr.sqrt() <= tol * (b * b).sum().sqrt():
            break
        ap = matvec(p)
        a = rr / (p * ap).sum()
        x, r = x + a * p, r - a * ap
        rr_new = (r * r).sum()
        p, rr = r + (rr_new / rr) * p, rr_new
        out.append(x)
    return out


def gauss_newton_cg(objective: Objective, f0: Tensor, num_gn: int, num_cg: int) -> SolverRun:
    """``num_gn`` Gauss-Newton iterations, each ``num_cg`` CG steps on :meth:`Objective.normal_equations`.

    ``iterates`` holds every CG iterate (so index i is comparable with i steps of the other solvers: one
    X and one X^T each); ``steps`` is empty.
    """
    with torch.no_grad():
        f, iterates = f0, [f0]
        for _ in range(num_gn):
            matvec, b = objective.normal_equations(f)
            inner = conjugate_gradient(matvec, b, f, num_cg)
            iterates += inner[1:]
            f = inner[-1]
        return SolverRun(f"Gauss-Newton + CG ({num_cg} CG steps per GN step)", iterates,
                         [float(objective.loss(f)) for f in iterates], [])


def largest_eigenvalue(matvec: Callable[[Tensor], Tensor], like: Tensor, num_iter: int = 30, seed: int = 0) -> float:
    """lambda_max of a symmetric positive definite operator by power iteration (a lower bound that tightens).

    For gradient descent on the quadratic model, a fixed step eta converges only if eta < 2 / lambda_max.
    """
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(like.shape, generator=g, dtype=like.dtype).to(like.device)
    v = v / v.norm()
    for _ in range(num_iter):
        v = matvec(v)
        v = v / v.norm()
    return float((v * matvec(v)).sum())
