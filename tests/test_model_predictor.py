"""DiMP's model predictor: the equations checked against independent computations."""

import math

import pytest
import torch

from dimp_core.nets import model_predictor as mp


def _problem(seed: int = 0, n: int = 3, s: int = 2, c: int = 8, h: int = 18, dtype=torch.float64):
    """Random features, boxes and a predictor with the DiMP training initialisation."""
    g = torch.Generator().manual_seed(seed)
    feat = torch.randn(n, s, c, h, h, generator=g, dtype=dtype)
    xy = torch.rand(n, s, 2, generator=g, dtype=dtype) * 150 + 40
    wh = torch.rand(n, s, 2, generator=g, dtype=dtype) * 60 + 20
    boxes = torch.cat([xy, wh], dim=-1)
    opt = mp.SteepestDescentGN(num_iter=5, init_step_length=0.9, init_filter_reg=0.1, init_gauss_sigma=0.9,
                               num_dist_bins=100, bin_displacement=0.1, mask_init_factor=3.0).to(dtype)
    f = torch.randn(s, c, 4, 4, generator=g, dtype=dtype) * 0.1
    return feat, boxes, opt, f


def test_scores_are_19x19_for_18x18_features_and_even_filter():
    feat, _, _, f = _problem()
    assert mp.apply_filter(feat, f).shape == (3, 2, 19, 19)


def test_feat_transpose_is_the_adjoint_of_apply_filter():
    feat, _, _, f = _problem()
    r = torch.randn(3, 2, 19, 19, dtype=torch.float64)
    lhs = (mp.apply_filter(feat, f) * r).sum()
    rhs = (f * mp.apply_feat_transpose(feat, r, 4)).sum()
    assert lhs.item() == pytest.approx(rhs.item(), rel=1e-12)


def test_distance_basis_partition_of_unity_and_triangles():
    center = torch.tensor([[9.0, 9.0], [3.3, 12.7]], dtype=torch.float64)
    rho = mp.distance_basis(center, (19, 19), 100, 0.1)
    assert rho.shape == (2, 100, 19, 19)
    assert torch.allclose(rho.sum(dim=1), torch.ones(2, 19, 19, dtype=torch.float64))
    # a cell at distance 0.25 cells lies between bins 2 (0.2) and 3 (0.3), half in each
    rho1 = mp.distance_basis(torch.tensor([[0.0, 0.25]], dtype=torch.float64), (1, 1), 100, 0.1)[0, :, 0, 0]
    assert rho1[2].item() == pytest.approx(0.5) and rho1[3].item() == pytest.approx(0.5)
    # far away only the last (saturating) bin is active
    far = mp.distance_basis(torch.tensor([[0.0, 0.0]], dtype=torch.float64), (19, 19), 5, 1.0)
    assert far[0, -1, 18, 18].item() == 1.0 and far[0, :-1, 18, 18].abs().sum() == 0


def test_initial_loss_maps_match_their_definitions():
    _, _, opt, _ = _problem()
    boxes = torch.tensor([[[136.0, 136.0, 16.0, 16.0]]], dtype=torch.float64)  # centre (144, 144) = cell 9
    label, mask, weight = opt.loss_maps(boxes, (19, 19), 4)
    d = torch.tensor([0.0, 1.0, 2.0, 3.0], dtype=torch.float64)  # cells along the row from the centre
    gauss = torch.exp(-0.5 * (d / 0.9) ** 2) - math.exp(-0.5 * (9.9 / 0.9) ** 2)
    assert torch.allclose(label[0, 0, 9, 9:13], gauss, atol=1e-10)
    assert torch.allclose(mask[0, 0, 9, 9:13], torch.sigmoid(3.0 * torch.tanh(2.0 - d)), atol=1e-10)
    assert torch.allclose(weight, torch.ones_like(weight))


def test_score_activation_is_identity_on_target_and_hinge_on_background():
    s = torch.tensor([-2.0, -0.5, 0.0, 0.7])
    assert torch.equal(mp.score_activation(s, torch.ones(4)), s)
    assert torch.equal(mp.score_activation(s, torch.zeros(4)), s.clamp(min=0))
    m = torch.full((4,), 0.3)
    assert torch.allclose(mp.score_activation(s, m), m * s + (1 - m) * s.clamp(min=0))


def test_filter_gradient_matches_autograd():
    feat, boxes, opt, f = _problem(s=1)
    label, mask, weight = opt.loss_maps(boxes, (19, 19), 4)
    sqrt_w = math.sqrt(1 / 3) * weight
    reg = opt.regularization().detach()
    f = f.requires_grad_()
    scores = mp.apply_filter(feat, f)
    res = mp.residual(scores, label, mask, sqrt_w)
    half_loss = 0.5 * ((res ** 2).sum() + reg * (f ** 2).sum())
    (auto,) = torch.autograd.grad(half_loss, f)
    jac = mp.score_activation_derivative(scores, mask)
    ours = mp.filter_gradient(feat, f, res, jac, sqrt_w, reg)
    assert torch.allclose(ours, auto, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_alpha_minimises_the_gauss_newton_quadratic(seed):
    feat, boxes, opt, f = _problem(seed=seed, s=1)
    label, mask, weight = opt.loss_maps(boxes, (19, 19), 4)
    sqrt_w = math.sqrt(1 / 3) * weight
    reg = opt.regularization().detach()
    scores = mp.apply_filter(feat, f)
    res = mp.residual(scores, label, mask, sqrt_w)
    jac = mp.score_activation_derivative(scores, mask)
    grad = mp.filter_gradient(feat, f, res, jac, sqrt_w, reg)
    alpha = mp.step_length(feat, grad, jac, sqrt_w, reg).item()

    # Gauss-Newton model along -grad: residuals linearised with the Jacobian J at f
    d_res = sqrt_w * jac * mp.apply_filter(feat, grad)

    def model(t: float) -> float:
        return 0.5 * (((res - t * d_res) ** 2).sum() + reg * ((f - t * grad) ** 2).sum()).item()

    # 1-D line search: a fine grid around the minimum, then golden-section refinement
    ts = torch.linspace(0, 4 * alpha, 4001, dtype=torch.float64)
    t_best = ts[torch.tensor([model(t.item()) for t in ts]).argmin()].item()
    lo, hi = t_best - 4 * alpha / 4000, t_best + 4 * alpha / 4000
    phi = (math.sqrt(5) - 1) / 2
    for _ in range(80):
        a, b = hi - phi * (hi - lo), lo + phi * (hi - lo)
        lo, hi = (lo, b) if model(a) < model(b) else (a, hi)
    assert (lo + hi) / 2 == pytest.approx(alpha, rel=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_one_steepest_descent_step_lowers_the_loss(seed):
    feat, boxes, opt, f = _problem(seed=seed)
    with torch.no_grad():
        opt.log_step_length.fill_(0.0)  # beta = 1: the pure Gauss-Newton step
        trace = opt(f, feat, boxes, num_iter=1)
    assert len(trace.iterates) == 2 and len(trace.losses) == 2 and len(trace.alphas) == 1
    assert trace.losses[1] < trace.losses[0]
    assert torch.all(trace.alphas[0] > 0) and trace.alphas[0].shape == (2,)


def test_trace_losses_are_the_discriminative_loss_of_each_iterate():
    feat, boxes, opt, f = _problem()
    with torch.no_grad():
        trace = opt(f, feat, boxes, num_iter=4)
        label, mask, weight = opt.loss_maps(boxes, (19, 19), 4)
        sqrt_w = math.sqrt(1 / 3) * weight
        for it, loss in zip(trace.iterates, trace.losses, strict=True):
            expected = mp.discriminative_loss(feat, it, label, mask, sqrt_w, opt.regularization())
            assert loss.item() == pytest.approx(expected.item(), rel=1e-12)
    assert trace.losses[-1] < trace.losses[0]


def test_sample_weights_equal_uniform_when_uniform():
    feat, boxes, opt, f = _problem()
    with torch.no_grad():
        a = opt(f, feat, boxes, num_iter=3)
        b = opt(f, feat, boxes, sample_weight=torch.full((3,), 1 / 3, dtype=torch.float64), num_iter=3)
    assert torch.allclose(a.filter, b.filter, rtol=1e-12)


def test_zero_weight_sample_is_ignored():
    feat, boxes, opt, f = _problem(s=1)
    w = torch.tensor([0.5, 0.5, 0.0], dtype=torch.float64)
    with torch.no_grad():
        full = opt(f, feat, boxes, sample_weight=w, num_iter=3).filter
        feat2 = feat.clone()
        feat2[2] = torch.randn_like(feat2[2])  # changing an image of weight 0 changes nothing
        other = opt(f, feat2, boxes, sample_weight=w, num_iter=3).filter
    assert torch.allclose(full, other, rtol=1e-12)


def test_filter_initializer_pools_the_target_and_averages():
    torch.manual_seed(0)
    init = mp.FilterInitializer(filter_size=4, feature_dim=8).double()
    feat = torch.randn(2, 1, 8, 18, 18, dtype=torch.float64)
    boxes = torch.tensor([[[32.0, 48.0, 64.0, 64.0]], [[80.0, 16.0, 32.0, 96.0]]], dtype=torch.float64)
    f0 = init(feat, boxes)
    assert f0.shape == (1, 8, 4, 4)
    conv = init.filter_conv(feat[:, 0])
    # box 0 covers cells [2, 6] x [3, 7]: 4 x 4 bins of exactly one cell each, each the mean of the
    # bilinear surface over that cell
    from dimp_core.ops import prroi_pool2d

    rois = torch.tensor([[0, 32.0, 48, 96, 112], [1, 80, 16, 112, 112]], dtype=torch.float64)
    expected = prroi_pool2d(conv, rois, 4, 1 / 16).mean(dim=0, keepdim=True)
    assert torch.allclose(f0, expected, rtol=1e-12)


def test_instance_l2_norm_fixes_the_energy():
    norm = mp.InstanceL2Norm(scale=1 / 64)
    x = torch.randn(3, 256, 18, 18, dtype=torch.float64) * torch.tensor([1.0, 10.0, 0.1]).reshape(3, 1, 1, 1)
    y = norm(x)
    energy = (y ** 2).sum(dim=(1, 2, 3))
    assert torch.allclose(energy, torch.full((3,), 256 * 18 * 18 / 64 ** 2, dtype=torch.float64), rtol=1e-6)
