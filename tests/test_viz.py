"""The solvers of notebook 02 and the figure helpers of notebooks 01-03, checked against independent computations."""

import math

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from dimp_core import solvers
from dimp_core.geometry import PatchFrame
from dimp_core.nets import model_predictor as mp
from dimp_core.trackers.base import Tracker
from dimp_core.viz import frames as vf
from dimp_core.viz import loss as vl
from dimp_core.viz import predictor as vp
from dimp_core.viz.figures import savefig


def _problem(seed: int = 0, n: int = 3, c: int = 8, dtype=torch.float64):
    """Random features and boxes of one sequence, and an optimiser with the DiMP training initialisation."""
    g = torch.Generator().manual_seed(seed)
    feat = torch.randn(n, 1, c, 18, 18, generator=g, dtype=dtype)
    xy = torch.rand(n, 1, 2, generator=g, dtype=dtype) * 150 + 40
    wh = torch.rand(n, 1, 2, generator=g, dtype=dtype) * 60 + 20
    boxes = torch.cat([xy, wh], dim=-1)
    opt = mp.SteepestDescentGN(num_iter=5, init_step_length=0.9, init_filter_reg=0.1, init_gauss_sigma=0.9,
                               num_dist_bins=100, bin_displacement=0.1, mask_init_factor=3.0).to(dtype)
    for p in opt.parameters():
        p.requires_grad_(False)
    f0 = torch.randn(1, c, 4, 4, generator=g, dtype=dtype) * 0.1
    return feat, boxes, opt, f0


# --------------------------------------------------------------------------- solvers


def test_objective_reproduces_the_predictor_losses():
    feat, boxes, opt, f0 = _problem()
    trace = opt(f0, feat, boxes, num_iter=4)
    obj = solvers.Objective.from_predictor(opt, feat, boxes)
    for f, loss in zip(trace.iterates, trace.losses, strict=True):
        assert float(obj.loss(f)) == pytest.approx(float(loss), rel=1e-10)


def test_objective_rejects_several_sequences():
    feat, boxes, opt, _ = _problem()
    with pytest.raises(ValueError, match="N, 1, C, H, W"):
        solvers.Objective.from_predictor(opt, feat.expand(3, 2, 8, 18, 18), boxes.expand(3, 2, 4))


def test_gradient_is_half_the_autograd_gradient_of_the_loss():
    feat, boxes, opt, f0 = _problem(1)
    obj = solvers.Objective.from_predictor(opt, feat, boxes)
    f = f0.clone().requires_grad_(True)
    (auto,) = torch.autograd.grad(obj.loss(f), f)
    grad, _ = obj.gradient(f0)
    assert torch.allclose(grad, auto / 2, atol=1e-12)


def test_normal_equations_match_the_gradient_and_the_step_length():
    feat, boxes, opt, f0 = _problem(2)
    obj = solvers.Objective.from_predictor(opt, feat, boxes)
    matvec, b = obj.normal_equations(f0)
    grad, jac = obj.gradient(f0)
    # with the signs frozen at f0 the loss is quadratic: grad L/2 = A f - b exactly at f0
    assert torch.allclose(matvec(f0) - b, grad, atol=1e-12)
    # alpha is the exact line minimum of the quadratic model along -g: g^T g / g^T A g
    assert float(obj.step_length(grad, jac)) == pytest.approx(float((grad * grad).sum() / (grad * matvec(grad)).sum()))
    # A is symmetric: u^T A v = v^T A u
    u, v = torch.randn_like(f0), torch.randn_like(f0)
    assert float((u * matvec(v)).sum()) == pytest.approx(float((v * matvec(u)).sum()), rel=1e-10)


def test_conjugate_gradient_solves_a_small_spd_system():
    g = torch.Generator().manual_seed(0)
    m = torch.randn(6, 6, generator=g, dtype=torch.float64)
    a = m @ m.T + 0.5 * torch.eye(6, dtype=torch.float64)
    b = torch.randn(6, generator=g, dtype=torch.float64)
    xs = solvers.conjugate_gradient(lambda v: a @ v, b, torch.zeros(6, dtype=torch.float64), num_iter=6)
    assert torch.allclose(xs[-1], torch.linalg.solve(a, b), atol=1e-8)  # exact in n steps (up to rounding)
    assert len(xs) <= 7


def test_largest_eigenvalue_matches_the_explicit_matrix():
    feat, boxes, opt, f0 = _problem(3, c=2)
    obj = solvers.Objective.from_predictor(opt, feat, boxes)
    matvec, _ = obj.normal_equations(f0)
    basis = torch.eye(f0.numel(), dtype=torch.float64).reshape(-1, *f0.shape)
    a = torch.stack([matvec(e).reshape(-1) for e in basis])  # (32, 32)
    exact = float(torch.linalg.eigvalsh(a).max())
    assert solvers.largest_eigenvalue(matvec, f0, num_iter=300) == pytest.approx(exact, rel=1e-4)


def test_solvers_descend_and_gauss_newton_cg_reaches_the_lowest_loss():
    feat, boxes, opt, f0 = _problem(4)
    obj = solvers.Objective.from_predictor(opt, feat, boxes)
    sd = solvers.steepest_descent(opt, obj, f0, boxes, 10)
    lam = solvers.largest_eigenvalue(obj.normal_equations(f0)[0], f0)
    gd = solvers.gradient_descent(obj, f0, 1.0 / lam, 10)
    cg = solvers.gauss_newton_cg(obj, f0, 4, 10)
    assert len(sd.iterates) == len(gd.iterates) == 11 and len(cg.iterates) > 11
    assert np.all(np.diff(gd.losses) <= 1e-12)  # eta = 1 / lambda_max is a safe step
    assert sd.losses[-1] < sd.losses[0]
    assert min(cg.losses) <= min(sd.losses[-1], gd.losses[-1]) + 1e-9


def test_gradient_descent_rejects_bad_steps_and_stops_when_it_diverges():
    feat, boxes, opt, f0 = _problem(5)
    obj = solvers.Objective.from_predictor(opt, feat, boxes)
    with pytest.raises(ValueError, match="positive"):
        solvers.gradient_descent(obj, f0, 0.0, 3)
    run = solvers.gradient_descent(obj, f0, 1e200, 5)
    assert all(torch.isfinite(f).all() for f in run.iterates)
    assert len(run.iterates) < 6


def test_with_overrides_sets_lambda_and_scales_the_mask_without_touching_the_original():
    feat, boxes, opt, _ = _problem(6)
    before = opt.target_mask_predictor[0].weight.clone()
    new = solvers.with_overrides(opt, reg=0.25, mask_factor=0.0)
    assert float(new.regularization()) == pytest.approx(0.25)
    _, mask, _ = new.loss_maps(boxes, (19, 19), 4)
    assert torch.allclose(mask, torch.full_like(mask, 0.5))  # sigmoid(0)
    assert torch.equal(opt.target_mask_predictor[0].weight, before)
    with pytest.raises(ValueError, match="at least"):
        solvers.with_overrides(opt, reg=1e-9)
    with pytest.raises(ValueError, match="finite"):
        solvers.with_overrides(opt, mask_factor=math.inf)


# --------------------------------------------------------------------------- the learned loss (03)


def test_loss_functions_match_loss_maps_and_the_initial_definitions():
    _, boxes, opt, _ = _problem(7, dtype=torch.float32)
    box = boxes[0, 0].float()
    label, mask, weight = opt.loss_maps(box.reshape(1, 1, 4), (19, 19), 4)
    d = vl.distance_map(box, (19, 19))
    funcs = vl.loss_functions(opt, d.reshape(-1).numpy())
    assert np.allclose(funcs.label, label.reshape(-1).numpy(), atol=1e-5)
    assert np.allclose(funcs.mask, mask.reshape(-1).numpy(), atol=1e-5)
    assert np.allclose(funcs.weight, weight.reshape(-1).numpy(), atol=1e-5)
    # initialisation: Gaussian label (sigma 0.9), mask sigmoid(3 tanh(2 - d)), weight 1 (at the bin centres)
    at = vl.loss_functions(opt, np.array([0.0, 1.0, 2.5]))
    assert np.allclose(at.label, np.exp(-0.5 * (at.distance / 0.9) ** 2), atol=1e-6)
    assert np.allclose(at.mask, 1 / (1 + np.exp(-3 * np.tanh(2 - at.distance))), atol=1e-6)
    assert np.allclose(at.weight, 1.0)


def test_residual_maps_hinge_vs_l2():
    _, _, opt, _ = _problem(8, dtype=torch.float32)
    box = torch.tensor([136.0, 136.0, 16.0, 16.0])  # centre (144, 144): cell (9, 9)
    scores = torch.full((19, 19), -0.5)
    scores[9, 9] = 1.0
    maps = vl.residual_maps(opt, scores, box, gauss_sigma=0.9)
    far = maps.background(5.0)
    assert maps.distance[9, 9] == pytest.approx(0.0)
    assert np.allclose(maps.l2, maps.scores - np.exp(-0.5 * (maps.distance / 0.9) ** 2), atol=1e-6)
    # far away the learned residual of a negative score is m * s with m = sigmoid(-3 tanh(...)) < 0.05
    assert np.all(np.abs(maps.learned[far]) < 0.05 * 0.5 + 1e-6)
    assert maps.zero_fraction("l2", 5.0) == 0.0
    assert maps.background_loss("learned", 5.0) < 0.01 * maps.background_loss("l2", 5.0)


def test_plot_functions_return_labelled_figures(tmp_path):
    _, boxes, opt, _ = _problem(9, dtype=torch.float32)
    d = np.linspace(0, 10, 11)
    fig = vl.plot_loss_functions(vl.loss_functions(opt, d), vl.loss_functions(opt, d))
    assert all(ax.get_xlabel() and ax.get_ylabel() and ax.get_title() for ax in fig.axes)
    fig = vl.plot_pixel_losses(opt, (0.0, 5.0), 0.9)
    assert len(fig.axes) == 2 and fig.axes[0].get_legend() is not None
    maps = vl.residual_maps(opt, torch.randn(19, 19), boxes[0, 0].float(), 0.9)
    fig = vl.plot_residual_maps(maps, np.zeros((288, 288, 3), np.uint8), boxes[0, 0].numpy(), 3.0, initial=maps)
    assert "learned loss (initial)" in fig.axes[3].get_title()
    path = savefig(fig, tmp_path / "figs", "03_test")
    assert path.name == "03_test.png" and path.stat().st_size > 0
    with pytest.raises(ValueError, match="stem"):
        savefig(fig, tmp_path, "03_test.png")


# --------------------------------------------------------------------------- tracking runs (01)


class _ScriptedTracker(Tracker):
    """Moves the box by one pixel per frame and reports a falling score."""

    def initialize(self, image, box):
        self.box, self.t = box.copy(), 0

    def track(self, image):
        self.t += 1
        self.box[0] += 1
        frame = PatchFrame((100.0, 80.0), 2.0, 288)
        self.info = {"score": 1.0 / self.t, "flag": "normal" if self.t < 4 else "not_found",
                     "score_map": np.zeros((19, 19)), "frame": frame}
        return self.box


def test_track_frames_keeps_every_frames_info():
    frames = [np.zeros((120, 160, 3), np.uint8)] * 6
    run = vf.track_frames(_ScriptedTracker(), frames, np.array([10.0, 20.0, 30.0, 40.0]))
    assert len(run) == 6 and np.isnan(run.scores[0]) and run.flags[0] == "init"
    assert run.boxes[:, 0].tolist() == [10, 11, 12, 13, 14, 15]
    assert run.flags[4] == "not_found" and run.score_maps[0] is None and run.score_maps[1].shape == (19, 19)
    assert vf.pick_frames(run, num=3)[-1] == 5  # the lowest score (last frame) is among the picked
    gt = np.tile([10.0, 20.0, 30.0, 40.0], (6, 1))
    assert run.iou(gt)[0] == pytest.approx(1.0) and run.iou(gt)[5] < 1.0
    fig = vf.plot_frames(frames, run, gt)
    assert isinstance(fig, Figure) and fig.axes[0].get_legend() is not None
    fig = vf.plot_confidence(run, gt, np.array([True, True, False, True, True, True]))
    assert [ax.get_ylabel() for ax in fig.axes] == ["max score", "IoU"]
    with pytest.raises(ValueError, match="at least one frame"):
        vf.track_frames(_ScriptedTracker(), [], np.zeros(4))


def test_runs_side_by_side_figures_and_video(tmp_path):
    import cv2

    frames = [np.full((120, 160, 3), 90, np.uint8)] * 6
    box = np.array([10.0, 20.0, 30.0, 40.0])
    run, other = (vf.track_frames(_ScriptedTracker(), frames, box) for _ in range(2))
    gt, visible = np.tile(box, (6, 1)), np.array([True, True, False, True, True, True])
    fig = vf.plot_frames(frames, run, gt, indices=[1, 3], others={"CSRT": other})
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["ground truth", "DiMP", "CSRT"]
    assert "CSRT (blue)" in fig.get_suptitle()
    fig = vf.plot_confidence(run, gt, visible, others={"CSRT": other})
    labels = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    assert labels[0].startswith("DiMP (mean") and labels[1].startswith("CSRT (mean")
    assert "visible" in fig.axes[1].get_title()
    summary = vf.summarize(run, gt, visible)
    assert "mean IoU" in summary and "the 5 frames with the target visible" in summary
    path = vf.write_video(tmp_path / "v" / "runs.mp4", frames, run, gt, visible, fps=10, others={"CSRT": other})
    capture = cv2.VideoCapture(str(path))
    count = 0
    while capture.read()[0]:
        count += 1
    assert count == 6


def test_score_map_extent_puts_the_centre_cell_on_the_patch_centre():
    frame = PatchFrame((100.0, 80.0), 2.0, 288)
    left, right, bottom, top = vf.score_map_extent(frame, (19, 19))
    cell = (right - left) / 19
    assert cell == pytest.approx(2.0 * 288 / 18)  # the trackers' own cell size
    assert left + 9.5 * cell == pytest.approx(100.0) and top + 9.5 * cell == pytest.approx(80.0)
    assert bottom > top  # image rows grow downwards


# --------------------------------------------------------------------------- the first frame of a real run (02)


@pytest.fixture(scope="module")
def first():
    from dimp_core.data.synthetic import make_sequence
    from dimp_core.trackers import build_tracker

    torch.set_num_threads(1)
    seq = make_sequence(1, "test", attributes=("distractors",), num_frames=2, image_size=(320, 240))
    tracker = build_tracker("dimp", device="cpu")
    return vp.first_frame(tracker, seq.frames[0], seq.boxes[0]), tracker, seq


def test_first_frame_keeps_the_predictor_inputs(first):
    ff, tracker, seq = first
    assert ff.feat.shape[:2] == (15, 1) and ff.boxes.shape == (15, 1, 4)
    assert ff.patch.shape == (288, 288, 3) and ff.patch.dtype == np.uint8
    assert torch.equal(ff.trace.filter, tracker.filter)
    losses = [float(ff.objective().loss(f)) for f in ff.trace.iterates]
    assert np.allclose(losses, [float(v) for v in ff.trace.losses], rtol=1e-5)
    feat, patch = vp.search_features(tracker, seq.frames[1])
    assert feat.shape == ff.feat[:1].shape and patch.shape == (288, 288, 3)
    with pytest.raises(TypeError, match="DiMP"):
        vp.first_frame(object(), seq.frames[0], seq.boxes[0])


def test_compare_solvers_and_its_figures(first):
    ff, _, _ = first
    c = vp.compare_solvers(ff, num_iter=4)
    assert len(c.sd.losses) == 5 and all(len(r.losses) == 5 for r in c.gd) and len(c.cg.losses) == 5
    assert [r.steps[0] * c.lambda_max for r in c.gd] == pytest.approx([0.5, 1.0, 1.9])
    assert c.best_loss <= c.solution.losses[-1] + 1e-9 and c.solution.losses[-1] < c.sd.losses[0]
    assert c.sd.losses == pytest.approx([float(v) for v in ff.trace.losses[:5]], rel=1e-5)
    with pytest.raises(ValueError, match="num_iter"):
        vp.compare_solvers(ff, num_iter=0)
    fig = vp.plot_comparison(c, ff)
    titles = [ax.get_title() for ax in fig.axes]
    assert any(t.startswith("Loss per iteration") for t in titles) and "CG solution" in titles
    assert len(vp.plot_iterate_scores(ff).axes) == len(ff.trace.iterates) + 2  # + the patch + the colour bar
    assert len(vp.plot_trace(ff.trace, 0.8).axes) == 2
