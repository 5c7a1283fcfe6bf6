"""DiMP's model predictor: a target filter learned from a few frames by an unrolled optimiser.

Paper: Bhat et al., "Learning Discriminative Model Prediction for Tracking" (ICCV 2019), sections
"Discriminative Learning Loss" and "Optimization-Based Architecture". Reference code: pytracking
``ltr/models/target_classifier/{features,initializer,optimizer,linear_filter}.py``.

Symbols (one glossary for the whole package):

====================  =========================  =====================================================
paper                  code                       shape
====================  =========================  =====================================================
x_j                    ``feat``                   (N, S, C, H, W)  classification features, N images
c_j                    ``center``                 (N*S, 2)        target centre in feature cells (row, col)
f                      ``f`` / ``filter``         (S, C, k, k)    the target filter (k = 4)
s = x * f              ``scores``                 (N, S, Ho, Wo)  Ho = H + (k + 1) mod 2 (19 for H = 18)
rho_k(d)               ``dist_basis``             (N*S, K, Ho, Wo) triangular distance bins
y_c, m_c, v_c          ``label``, ``mask``,       (N, S, Ho, Wo)  learned label, target mask, spatial weight
                       ``weight``
r(s, c)                ``residual``               (N, S, Ho, Wo)
lambda                 ``reg``                    ()              filter regulariser = filter_reg^2
alpha                  ``alpha``                  (S,)            Gauss-Newton step length
beta (learned)         ``exp(log_step_length)``   ()              step-length scale
====================  =========================  =====================================================

``S`` is the number of sequences (tracking uses S = 1), ``N`` the number of train images of each.
Shapes are fixed: features are always (N, S, C, H, W), boxes (N, S, 4) in crop pixels (x, y, w, h).
``forward`` of :class:`Classifier` is for training; tracking calls the named methods.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dimp_core.nets.backbones import BasicBlock
from dimp_core.ops import prroi_pool2d

# --------------------------------------------------------------------------- the filter as a convolution


def apply_filter(feat: Tensor, f: Tensor) -> Tensor:
    """Target scores s = x * f: each sequence's filter correlated with its own feature maps.

    Padding k // 2, so an even filter (k = 4) gives one more row and column than the features
    (18 x 18 features -> 19 x 19 scores).

    Args:
        feat: (N, S, C, H, W) features x.
        f: (S, C, k, k) filters.

    Returns:
        (N, S, Ho, Wo) scores.
    """
    n, s, c, h, w = feat.shape
    scores = F.conv2d(feat.reshape(n, s * c, h, w), f, padding=f.shape[-1] // 2, groups=s)  # (N, S, Ho, Wo)
    return scores.reshape(n, s, scores.shape[-2], scores.shape[-1])


def apply_feat_transpose(feat: Tensor, residual: Tensor, filter_size: int) -> Tensor:
    """The adjoint of :func:`apply_filter` with respect to the filter, summed over images.

    .. math:: (X^T r)[c, u, v] = \\sum_j \\sum_{i, l} r_j[i, l] \\, x_j^{pad}[c, i + u, l + v]

    This is how the gradient of a loss on the scores reaches the filter.

    Args:
        feat: (N, S, C, H, W) features x.
        residual: (N, S, Ho, Wo) a map on the score grid.
        filter_size: k.

    Returns:
        (S, C, k, k).
    """
    n, s, c, h, w = feat.shape
    inp = feat.permute(2, 1, 0, 3, 4).reshape(c, s * n, h, w)  # (C, S*N, H, W): sequences as groups
    kernel = residual.permute(1, 0, 2, 3)  # (S, N, Ho, Wo)
    out = F.conv2d(inp, kernel, padding=filter_size // 2, groups=s)  # (C, S, k, k)
    return out.permute(1, 0, 2, 3)


# --------------------------------------------------------------------------- classification features


class InstanceL2Norm(nn.Module):
    """Scale each sample's feature map to a fixed energy: y = x * s * sqrt(C H W / (sum x^2 + eps)).

    With s = sqrt(1 / (C k^2)) the filter response x * f of a unit-norm filter stays O(1) whatever the
    feature dimension (pytracking ``ltr/models/layers/normalization.py``).
    """

    def __init__(self, scale: float, eps: float = 1e-5) -> None:
        super().__init__()
        self.scale, self.eps = scale, eps

    def forward(self, x: Tensor) -> Tensor:
        energy = (x * x).reshape(x.shape[0], -1).sum(dim=1).reshape(-1, 1, 1, 1)  # (B, 1, 1, 1)
        return x * (self.scale * (x.shape[1] * x.shape[2] * x.shape[3] / (energy + self.eps)).sqrt())


def classification_features(
    input_dim: int, out_dim: int, filter_size: int, num_blocks: int, proj_dim: int | None = None
) -> nn.Sequential:
    """The small head that turns backbone features into classification features x.

    DiMP-18: BasicBlock(256 -> 256), Conv3x3(256 -> 256, no bias), InstanceL2Norm.
    DiMP-50: Conv3x3(1024 -> 512, no bias), InstanceL2Norm (``num_blocks = 0``).
    Ours (Lite0): an extra 1x1 projection (Conv, BN, ReLU) from the backbone's ``input_dim`` channels to
    ``proj_dim`` first, because Lite0's stride-16 stage has only 112 channels; then as DiMP-18.

    Convolutions are initialised N(0, sqrt(2 / (k_h k_w C_out))), BN weight 1 and bias 0, as pytracking.
    """
    layers: list[nn.Module] = []
    dim = input_dim
    if proj_dim is not None:
        layers += [nn.Conv2d(input_dim, proj_dim, 1, bias=False), nn.BatchNorm2d(proj_dim), nn.ReLU(inplace=True)]
        dim = proj_dim
    layers += [BasicBlock(dim, dim) for _ in range(num_blocks)]
    layers += [nn.Conv2d(dim, out_dim, 3, padding=1, bias=False),
               InstanceL2Norm(scale=math.sqrt(1.0 / (out_dim * filter_size * filter_size)))]
    block = nn.Sequential(*layers)
    for m in block.modules():
        if isinstance(m, nn.Conv2d):
            m.weight.data.normal_(0, math.sqrt(2.0 / (m.kernel_size[0] * m.kernel_size[1] * m.out_channels)))
        elif isinstance(m, nn.BatchNorm2d):
            m.weight.data.fill_(1)
            m.bias.data.zero_()
    return block


# --------------------------------------------------------------------------- filter initialiser


class FilterInitializer(nn.Module):
    """Initial filter f0: a 3x3 conv on the train features, PrRoIPool of the target box to k x k, mean over images.

    .. math:: f^{(0)} = \\frac{1}{N} \\sum_j \\mathrm{PrPool}(\\mathrm{conv}(x_j), b_j)

    pytracking ``FilterInitializerLinear`` with ``filter_norm=False``.
    """

    def __init__(self, filter_size: int, feature_dim: int, feature_stride: int = 16) -> None:
        super().__init__()
        self.filter_size, self.feature_stride = filter_size, feature_stride
        self.filter_conv = nn.Conv2d(feature_dim, feature_dim, kernel_size=3, padding=1)
        n = 3 * 3 * feature_dim
        self.filter_conv.weight.data.normal_(0, math.sqrt(2.0 / n))
        self.filter_conv.bias.data.zero_()

    def forward(self, feat: Tensor, boxes: Tensor) -> Tensor:
        """Args: feat (N, S, C, H, W); boxes (N, S, 4) (x, y, w, h) in crop pixels. Returns (S, C, k, k)."""
        n, s = feat.shape[:2]
        x = self.filter_conv(feat.reshape(n * s, *feat.shape[-3:]))  # (N*S, C, H, W)
        b = boxes.reshape(n * s, 4)
        rois = torch.cat([torch.arange(n * s, dtype=b.dtype, device=b.device)[:, None],
                          b[:, :2], b[:, :2] + b[:, 2:]], dim=1)  # (N*S, 5) = (index, x0, y0, x1, y1)
        pooled = prroi_pool2d(x, rois, self.filter_size, 1.0 / self.feature_stride)  # (N*S, C, k, k)
        return pooled.reshape(n, s, *pooled.shape[-3:]).mean(dim=0)


# --------------------------------------------------------------------------- the learned loss


def distance_basis(center: Tensor, output_size: tuple[int, int], num_bins: int, bin_displacement: float) -> Tensor:
    """Triangular distance bins rho_k(d) of the distance d from each grid cell to the target centre.

    .. math::
        \\rho_k(d) = \\max(0, 1 - |d / \\Delta - k|) \\quad (k < K - 1), \\qquad
        \\rho_{K-1}(d) = \\mathrm{clamp}(1 + d / \\Delta - (K - 1), 0, 1)

    The last bin saturates to 1 far from the target, and the bins sum to one everywhere.

    Args:
        center: (B, 2) target centre (row, col) in score-grid cells.
        output_size: (Ho, Wo).
        num_bins: K.
        bin_displacement: Delta, in cells.

    Returns:
        (B, K, Ho, Wo).
    """
    rows = torch.arange(output_size[0], dtype=center.dtype, device=center.device).reshape(1, 1, -1, 1)
    cols = torch.arange(output_size[1], dtype=center.dtype, device=center.device).reshape(1, 1, 1, -1)
    d = torch.sqrt((rows - center[:, 0].reshape(-1, 1, 1, 1)) ** 2 + (cols - center[:, 1].reshape(-1, 1, 1, 1)) ** 2)
    k = torch.arange(num_bins, dtype=center.dtype, device=center.device).reshape(1, -1, 1, 1)
    diff = d / bin_displacement - k  # (B, K, Ho, Wo)
    return torch.cat([F.relu(1.0 - diff[:, :-1].abs()), (1.0 + diff[:, -1:]).clamp(0, 1)], dim=1)


def score_activation(s: Tensor, m: Tensor) -> Tensor:
    """The paper's hinge-like score mapping: s where s > 0 and m * s where s < 0.

    .. math:: \\hat s = \\frac{1 - m}{2} |s| + \\frac{1 + m}{2} s = m s + (1 - m) \\max(0, s)

    With m = 1 (target region) this is the identity, an L2 regression to the label; with m = 0
    (background) negative scores cost nothing, a hinge.
    """
    return (1.0 - m) / 2.0 * s.abs() + (1.0 + m) / 2.0 * s


def score_activation_derivative(s: Tensor, m: Tensor) -> Tensor:
    """d s_hat / d s = (1 - m)/2 sign(s) + (1 + m)/2 (no gradient flows through sign)."""
    return (1.0 - m) / 2.0 * torch.sign(s.detach()) + (1.0 + m) / 2.0


def residual(scores: Tensor, label: Tensor, mask: Tensor, sqrt_weight: Tensor) -> Tensor:
    """The discriminative loss residual r(s, c) = sqrt(w_j) v_c (m_c s + (1 - m_c) max(0, s) - y_c).

    Args:
        scores, label, mask: (N, S, Ho, Wo).
        sqrt_weight: (N, S, Ho, Wo) sqrt(w_j) * v_c, sample weight times the learned spatial weight.
    """
    return sqrt_weight * (score_activation(scores, mask) - label)


def filter_gradient(feat: Tensor, f: Tensor, res: Tensor, jac: Tensor, sqrt_weight: Tensor, reg: Tensor) -> Tensor:
    """Gradient of L(f) = 1/2 sum_j ||r_j||^2 + lambda/2 ||f||^2 with respect to f.

    .. math:: \\nabla L = \\sum_j x_j \\star \\left( \\sqrt{w_j} v_c \\, J_j \\circ r_j \\right) + \\lambda f

    ``jac`` is J = d s_hat / d s (:func:`score_activation_derivative`); x_j star . is
    :func:`apply_feat_transpose`.
    """
    return apply_feat_transpose(feat, jac * sqrt_weight * res, f.shape[-1]) + reg * f


def step_length(feat: Tensor, grad: Tensor, jac: Tensor, sqrt_weight: Tensor, reg: Tensor,
                alpha_eps: float = 0.0) -> Tensor:
    """Gauss-Newton step length: the exact minimiser of the quadratic model of L along -grad.

    .. math:: \\alpha = \\frac{\\|\\nabla L\\|^2}
              {\\sum_j \\|\\sqrt{w_j} v_c \\, J_j (x_j * \\nabla L)\\|^2 + \\lambda \\|\\nabla L\\|^2}

    The denominator is clamped at 1e-8.

    Args:
        feat: (N, S, C, H, W); grad: (S, C, k, k); jac, sqrt_weight: (N, S, Ho, Wo); reg: lambda.

    Returns:
        (S,) one step length per sequence.
    """
    n, s = feat.shape[:2]
    grad_sq = (grad * grad).sum(dim=(1, 2, 3))  # (S,)
    scores_grad = sqrt_weight * jac * apply_filter(feat, grad)  # (N, S, Ho, Wo)
    denom = (scores_grad * scores_grad).reshape(n, s, -1).sum(dim=(0, 2)) + (reg + alpha_eps) * grad_sq
    return grad_sq / denom.clamp(min=1e-8)


def discriminative_loss(feat: Tensor, f: Tensor, label: Tensor, mask: Tensor, sqrt_weight: Tensor,
                        reg: Tensor) -> Tensor:
    """L(f) = (sum_j ||r(x_j * f, c_j)||^2 + lambda ||f||^2) / S, summed over the S sequences (as logged by
    pytracking; the optimiser's gradient is that of half of this per sequence)."""
    res = residual(apply_filter(feat, f), label, mask, sqrt_weight)
    return ((res * res).sum() + reg * (f * f).sum()) / f.shape[0]


@dataclass
class PredictorTrace:
    """What the model predictor computed, so notebooks can show every step without hooks.

    Attributes:
        filter: (S, C, k, k) the final filter.
        iterates: [f0, f1, ..., f_n], the initial filter first.
        losses: [L(f0), ..., L(f_n)] scalars (empty if losses were not requested).
        alphas: [alpha_1, ..., alpha_n], each (S,), the Gauss-Newton step lengths before the learned scale.
    """

    filter: Tensor
    iterates: list[Tensor]
    losses: list[Tensor]
    alphas: list[Tensor]


class SteepestDescentGN(nn.Module):
    """The unrolled optimiser with the learned discriminative loss (pytracking ``DiMPSteepestDescentGN``).

    Each iteration computes the gradient of the loss, the Gauss-Newton step length alpha along it and
    updates f <- f - beta * alpha * grad, beta = exp(log_step_length) learned. The label y_c, target mask
    m_c and spatial weight v_c are 1x1 convolutions (no bias) over the distance basis rho_k; m_c goes
    through a sigmoid. Initial values: y from a Gaussian of std ``init_gauss_sigma`` cells (minus its
    minimum), m = mask_init_factor * tanh(2 - d), v = 1. The regulariser lambda = max(filter_reg^2,
    min_filter_reg^2) and beta are learned too.

    The paper's configuration is the default (score activation 'relu' = :func:`score_activation`, mask
    activation 'sigmoid', no detaching); pytracking's alternatives are unused by DiMP. Two switches exist for
    the paper's ablations (its Table 1), trained and evaluated by ``experiments/ablations.py``:

    * ``step_rule='fixed'``: plain gradient descent, f <- f - beta * grad, with one learned step size beta
      that does not depend on the data (alpha = 1), instead of the Gauss-Newton alpha.
    * ``loss='l2'``: a plain least-squares loss with a fixed Gaussian label (std ``init_gauss_sigma`` cells),
      no target mask (m = 1: s_hat = s) and a uniform spatial weight (v = 1), instead of the learned
      y_c, m_c, v_c. The learned predictors are kept (same state-dict keys) but unused.
    """

    STEP_RULES = ("gauss_newton", "fixed")
    LOSSES = ("learned", "l2")

    def __init__(self, num_iter: int = 5, feat_stride: int = 16, init_step_length: float = 1.0,
                 init_filter_reg: float = 1e-2, init_gauss_sigma: float = 1.0, num_dist_bins: int = 5,
                 bin_displacement: float = 1.0, mask_init_factor: float = 4.0, min_filter_reg: float = 1e-3,
                 alpha_eps: float = 0.0, step_rule: str = "gauss_newton", loss: str = "learned") -> None:
        super().__init__()
        if step_rule not in self.STEP_RULES:
            raise ValueError(f"unknown step rule {step_rule!r}; choose from {', '.join(self.STEP_RULES)}")
        if loss not in self.LOSSES:
            raise ValueError(f"unknown loss {loss!r}; choose from {', '.join(self.LOSSES)}")
        self.step_rule, self.loss = step_rule, loss
        self.num_iter, self.feat_stride = num_iter, feat_stride
        self.num_dist_bins, self.bin_displacement = num_dist_bins, bin_displacement
        self.min_filter_reg, self.alpha_eps = min_filter_reg, alpha_eps
        self.log_step_length = nn.Parameter(math.log(init_step_length) * torch.ones(1))
        self.filter_reg = nn.Parameter(init_filter_reg * torch.ones(1))

        d = torch.arange(num_dist_bins, dtype=torch.float32).reshape(1, -1, 1, 1) * bin_displacement
        if init_gauss_sigma == 0:
            gauss = torch.zeros_like(d)
            gauss[0, 0] = 1.0
        else:
            gauss = torch.exp(-0.5 * (d / init_gauss_sigma) ** 2)
        self.label_map_predictor = nn.Conv2d(num_dist_bins, 1, 1, bias=False)  # y_c
        self.label_map_predictor.weight.data = gauss - gauss.min()
        self.target_mask_predictor = nn.Sequential(nn.Conv2d(num_dist_bins, 1, 1, bias=False), nn.Sigmoid())  # m_c
        self.target_mask_predictor[0].weight.data = mask_init_factor * torch.tanh(2.0 - d)
        self.spatial_weight_predictor = nn.Conv2d(num_dist_bins, 1, 1, bias=False)  # v_c
        self.spatial_weight_predictor.weight.data.fill_(1.0)
        self.register_buffer("gauss_label", torch.exp(-0.5 * (d / max(init_gauss_sigma, 1e-6)) ** 2),
                             persistent=False)  # (1, K, 1, 1): the fixed label of ``loss='l2'``

    def regularization(self) -> Tensor:
        """lambda = max(filter_reg^2, min_filter_reg^2)."""
        return (self.filter_reg * self.filter_reg).clamp(min=self.min_filter_reg ** 2)

    def loss_maps(self, boxes: Tensor, output_size: tuple[int, int], filter_size: int) -> tuple[Tensor, ...]:
        """The learned label y_c, target mask m_c and spatial weight v_c for target boxes.

        Args:
            boxes: (N, S, 4) target boxes (x, y, w, h) in crop pixels.
            output_size: (Ho, Wo) score grid.
            filter_size: k; the centre shifts by (k mod 2) / 2 cells.

        Returns:
            label, mask, weight: each (N, S, Ho, Wo).
        """
        n, s = boxes.shape[:2]
        offset = (filter_size % 2) / 2.0
        center_xy = (boxes[..., :2] + boxes[..., 2:] / 2) / self.feat_stride  # (N, S, 2) in cells
        center = center_xy.reshape(-1, 2).flip(1) - offset  # (N*S, 2) as (row, col)
        rho = distance_basis(center, output_size, self.num_dist_bins, self.bin_displacement)  # (N*S, K, Ho, Wo)
        if self.loss == "l2":  # ablation: fixed Gaussian label, m = 1, v = 1
            label = F.conv2d(rho, self.gauss_label.to(rho.dtype)).reshape(n, s, *output_size)
            ones = torch.ones_like(label)
            return label, ones, ones
        maps = [fn(rho).reshape(n, s, *output_size) for fn in
                (self.label_map_predictor, self.target_mask_predictor, self.spatial_weight_predictor)]
        return maps[0], maps[1], maps[2]

    def forward(self, f: Tensor, feat: Tensor, boxes: Tensor, sample_weight: Tensor | None = None,
                num_iter: int | None = None, compute_losses: bool = True) -> PredictorTrace:
        """Run ``num_iter`` steepest-descent steps from ``f``.

        Args:
            f: (S, C, k, k) initial filter.
            feat: (N, S, C, H, W) train features.
            boxes: (N, S, 4) target boxes (x, y, w, h) in crop pixels.
            sample_weight: (N,) or (N, S) weights w_j summing to one per sequence; None = 1/N each.
            num_iter: iterations (default: the training value, ``self.num_iter``).
            compute_losses: also evaluate the loss at every iterate (costs one filter application each).
        """
        num_iter = self.num_iter if num_iter is None else num_iter
        n, s = feat.shape[:2]
        k = f.shape[-1]
        output_size = (feat.shape[-2] + (k + 1) % 2, feat.shape[-1] + (k + 1) % 2)
        beta = torch.exp(self.log_step_length)
        reg = self.regularization()
        label, mask, weight = self.loss_maps(boxes, output_size, k)
        if sample_weight is None:
            sqrt_weight = math.sqrt(1.0 / n) * weight
        else:
            sqrt_weight = sample_weight.sqrt().reshape(n, -1, 1, 1) * weight  # (N, S, Ho, Wo)

        iterates, losses, alphas = [f], [], []
        for _ in range(num_iter):
            scores = apply_filter(feat, f)
            res = residual(scores, label, mask, sqrt_weight)
            if compute_losses:
                losses.append(((res * res).sum() + reg * (f * f).sum()) / s)
            jac = score_activation_derivative(scores, mask)
            grad = filter_gradient(feat, f, res, jac, sqrt_weight, reg)
            if self.step_rule == "gauss_newton":
                alpha = step_length(feat, grad, jac, sqrt_weight, reg, self.alpha_eps)
            else:  # ablation: a fixed, learned step size beta
                alpha = torch.ones(s, dtype=f.dtype, device=f.device)
            f = f - (beta * alpha).reshape(-1, 1, 1, 1) * grad
            iterates.append(f)
            alphas.append(alpha)
        if compute_losses:
            losses.append(discriminative_loss(feat, f, label, mask, sqrt_weight, reg))
        return PredictorTrace(filter=f, iterates=iterates, losses=losses, alphas=alphas)


# --------------------------------------------------------------------------- the classifier


class Classifier(nn.Module):
    """Classification features + filter initialiser + optimiser (pytracking ``LinearFilter``).

    Attribute names match pytracking's state dict: ``feature_extractor``, ``filter_initializer``,
    ``filter_optimizer``.
    """

    def __init__(self, filter_size: int, feature_extractor: nn.Module, filter_initializer: FilterInitializer,
                 filter_optimizer: SteepestDescentGN) -> None:
        super().__init__()
        self.filter_size = filter_size
        self.feature_extractor = feature_extractor
        self.filter_initializer = filter_initializer
        self.filter_optimizer = filter_optimizer

    def extract_features(self, backbone_feat: Tensor, num_sequences: int) -> Tensor:
        """(N*S, Cb, H, W) backbone features -> (N, S, C, H, W) classification features x."""
        x = self.feature_extractor(backbone_feat)
        return x.reshape(-1, num_sequences, *x.shape[-3:])

    def predict_filter(self, feat: Tensor, boxes: Tensor, num_iter: int | None = None,
                       sample_weight: Tensor | None = None, compute_losses: bool = True) -> PredictorTrace:
        """f0 from the initialiser, then ``num_iter`` optimiser steps. feat (N, S, C, H, W), boxes (N, S, 4)."""
        f0 = self.filter_initializer(feat, boxes)
        return self.filter_optimizer(f0, feat, boxes, sample_weight=sample_weight, num_iter=num_iter,
                                     compute_losses=compute_losses)

    def classify(self, f: Tensor, feat: Tensor) -> Tensor:
        """Scores (N, S, Ho, Wo) of filter f (S, C, k, k) on features (N, S, C, H, W)."""
        return apply_filter(feat, f)

    def forward(self, train_feat: Tensor, test_feat: Tensor, train_boxes: Tensor,
                num_iter: int | None = None) -> list[Tensor]:
        """Training: learn the filter on the train frames, score the test frames with every iterate.

        Args:
            train_feat: (N_train*S, Cb, H, W) backbone features; test_feat: (N_test*S, Cb, H, W).
            train_boxes: (N_train, S, 4).

        Returns:
            One (N_test, S, Ho, Wo) score map per filter iterate, the initial filter first.
        """
        s = train_boxes.shape[1]
        x_train = self.extract_features(train_feat, s)
        x_test = self.extract_features(test_feat, s)
        trace = self.predict_filter(x_train, train_boxes, num_iter=num_iter)
        return [self.classify(f, x_test) for f in trace.iterates]
