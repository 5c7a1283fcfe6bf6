"""The speed knobs: exact ones change nothing beyond float rounding, approximate ones run, the machinery is sound.

Exact knobs (BatchNorm folding, channels-last, inference mode, the closed-form refinement gradient, batched
refinement) are checked against the plain computation; approximate ones (bf16, the fast preset) only for
running and giving finite boxes: their accuracy cost is measured by ``benchmarks/fps.py``, not asserted here.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from dimp_core import build_tracker
from dimp_core.nets import build_network
from dimp_core.nets.backbones import fold_batchnorm
from dimp_core.ops import prroi_pool2d, prroi_pool2d_vjp
from dimp_core.profiling import accel
from dimp_core.profiling.timer import paused, recording, stage
from dimp_core.trackers.dimp import PRESETS, preset_params
from dimp_core.trackers.refinement import RefinementParams

SIZE = 160  # small search patches keep the tests fast (the networks are fully convolutional)
EXACT_OFF = {"inference_mode": False, "fuse_batchnorm": False, "channels_last": False}


def _sequence(num: int = 8, seed: int = 0) -> tuple[list[np.ndarray], tuple[float, float, float, float]]:
    """A textured box moving over a noisy background."""
    rng = np.random.default_rng(seed)
    background = (rng.random((180, 240, 3)) * 90).astype(np.uint8)
    patch = (rng.random((40, 30, 3)) * 255).astype(np.uint8)
    frames = []
    for t in range(num):
        im = background.copy()
        x, y = 60 + 4 * t, 50 + 2 * t
        im[y:y + 40, x:x + 30] = patch
        frames.append(im)
    return frames, (60.0, 50.0, 30.0, 40.0)


def _track(tracker, frames, box) -> np.ndarray:
    tracker.init(frames[0], box)
    out = []
    for f in frames[1:]:
        out.append(tracker.update(f))
        assert "error" not in tracker.info, tracker.info["error"]
    return np.array(out)


# --------------------------------------------------------------------------- BatchNorm folding


@pytest.mark.parametrize("name", ["dimp", "dimp18", "atom_lite0"])
def test_folded_network_computes_the_same_features(name):
    torch.manual_seed(0)
    net = build_network(name).eval()
    for m in net.modules():  # non-trivial running statistics, so that folding has something to fold
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    folded = fold_batchnorm(copy.deepcopy(net))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.feature_extractor.modules())
    x = torch.randn(2, 3, 128, 128)
    with torch.no_grad():
        ref, out = net.extract_backbone_features(x), folded.extract_backbone_features(x)
        for key in ref:
            torch.testing.assert_close(out[key], ref[key], rtol=1e-3, atol=1e-3 * float(ref[key].abs().max()))
        feats = [net.iou_features(ref), folded.iou_features(out)]
        a, b = (n.bb_regressor.get_iou_feat(f) for n, f in zip((net, folded), feats, strict=True))
        torch.testing.assert_close(b[0], a[0], rtol=1e-4, atol=1e-4 * float(a[0].abs().max()))


def test_fold_batchnorm_refuses_training_mode():
    with pytest.raises(ValueError, match="eval mode"):
        fold_batchnorm(build_network("dimp18").train())


def test_inference_copy_leaves_the_given_network_alone():
    net = build_network("dimp18").train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    grads = [p.requires_grad for p in net.parameters()]
    copy_ = accel.inference_copy(net, torch.device("cpu"), fuse_batchnorm=True, channels_last=True)
    assert copy_ is not net and net.training and not copy_.training
    assert [p.requires_grad for p in net.parameters()] == grads
    assert set(net.state_dict()) == set(before)
    assert all(torch.equal(net.state_dict()[k], v) for k, v in before.items())
    assert not any(p.requires_grad for p in copy_.parameters())


# --------------------------------------------------------------------------- refinement gradient


def test_prroi_vjp_equals_autograd():
    g = torch.Generator().manual_seed(1)
    feat = torch.randn(1, 6, 11, 13, generator=g, dtype=torch.float64)
    rois = torch.tensor([[0, 8.0, 10.0, 60.0, 50.0], [0, -5.0, 3.0, 30.0, 90.0], [0, 20.0, 20.0, 20.5, 21.0]],
                        dtype=torch.float64, requires_grad=True)
    out = prroi_pool2d(feat, rois, (3, 4), 1 / 8)
    weights = torch.randn(out.shape, generator=g, dtype=torch.float64)
    (expected,) = torch.autograd.grad((out * weights).sum(), rois)
    value, vjp = prroi_pool2d_vjp(feat, rois.detach(), (3, 4), 1 / 8)
    torch.testing.assert_close(value, out.detach())
    torch.testing.assert_close(vjp(weights), expected)


@pytest.mark.parametrize("fold", [False, True])
def test_closed_form_box_gradient_equals_autograd(fold):
    torch.manual_seed(0)
    net = build_network("dimp18").eval().double()
    if fold:
        fold_batchnorm(net)
    iou = net.bb_regressor
    modulated = (torch.randn(1, 256, 36, 36, dtype=torch.float64), torch.randn(1, 256, 18, 18, dtype=torch.float64))
    boxes = (torch.tensor([100.0, 90.0, 80.0, 60.0]) + 8 * torch.randn(10, 4)).double()[None]
    b = boxes.clone().requires_grad_(True)
    pred = iou.predict_iou_modulated(modulated, b)
    (expected,) = torch.autograd.grad(pred.sum(), b)
    with torch.no_grad():
        value, grad = iou.predict_iou_and_box_grad(modulated, boxes)
    torch.testing.assert_close(value, pred.detach())
    torch.testing.assert_close(grad, expected, rtol=1e-10, atol=1e-12)


# --------------------------------------------------------------------------- the tracker


@pytest.fixture(scope="module")
def frames_box():
    return _sequence()


def _dimp(**params):
    return build_tracker("dimp", device="cpu", weights="random", image_sample_size=SIZE, **params)


def test_exact_knobs_change_boxes_only_by_rounding(frames_box):
    frames, box = frames_box
    reference = _track(_dimp(**EXACT_OFF), frames, box)
    for knobs in ({}, {"fuse_batchnorm": False}, {"channels_last": False}, {"inference_mode": False}):
        out = _track(_dimp(**knobs), frames, box)
        np.testing.assert_allclose(out, reference, atol=1e-2, err_msg=str(knobs))


def test_batched_and_per_box_refinement_agree(frames_box):
    frames, box = frames_box
    batched = _track(_dimp(), frames, box)
    per_box = _track(_dimp(refinement=RefinementParams(batched=False)), frames, box)
    np.testing.assert_allclose(per_box, batched, atol=1e-2)


def test_tracker_does_not_modify_the_network_it_is_given():
    net = build_network("dimp").train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    from dimp_core.trackers.dimp import DiMPParams, DiMPTracker

    tracker = DiMPTracker(net, DiMPParams(image_sample_size=SIZE), "cpu")
    frames, box = _sequence(num=3)
    _track(tracker, frames, box)
    assert net.training and all(torch.equal(net.state_dict()[k], v) for k, v in before.items())


@pytest.mark.parametrize("params", [{"autocast": "bf16"}, preset_params("fast"), {"cuda_graphs": True}])
def test_approximate_knobs_and_presets_run(frames_box, params):
    frames, box = frames_box
    tracker = _dimp(**params)
    out = _track(tracker, frames, box)
    assert np.isfinite(out).all() and out.shape == (len(frames) - 1, 4)
    assert tracker.graph_status == "off"  # CUDA graphs only act on a CUDA device


def test_presets_and_bad_knob_values():
    assert set(PRESETS) == {"reference", "fast"} and preset_params("reference") == {}
    with pytest.raises(ValueError, match="unknown preset"):
        preset_params("turbo")
    with pytest.raises(ValueError, match="autocast must be one of"):
        _dimp(autocast="int4")


def test_atom_exact_knobs_change_boxes_only_by_rounding(frames_box):
    frames, box = frames_box
    make = lambda **p: build_tracker("atom", device="cpu", weights="random", image_sample_size=SIZE, **p)  # noqa: E731
    reference = _track(make(fuse_batchnorm=False, channels_last=False), frames, box)
    np.testing.assert_allclose(_track(make(), frames, box), reference, atol=1e-2)


# --------------------------------------------------------------------------- the stage timer


def test_stage_timer_records_only_inside_recording():
    with stage("backbone"):
        pass  # no recording: nothing happens, nothing fails
    with recording("cpu") as timer:
        with stage("backbone"):
            with stage("inner"):
                pass
        with paused(), stage("hidden"):
            pass
        timer.next_frame()
        with stage("backbone"):
            pass
    assert [set(f) for f in timer.frames] == [{"backbone", "inner"}, {"backbone"}]
    assert all(v >= 0 for f in timer.frames for v in f.values())
    with recording("cpu") as timer:
        pass
    assert timer.frames == [{}]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")
def test_cuda_graphs_give_the_eager_boxes(frames_box):
    frames, box = frames_box
    make = lambda **p: build_tracker("dimp", device="cuda", weights="random", image_sample_size=SIZE, **p)  # noqa: E731
    eager = _track(make(), frames, box)
    graphed_tracker = make(cuda_graphs=True)
    graphed = _track(graphed_tracker, frames, box)
    assert graphed_tracker.graph_status == "on"
    np.testing.assert_allclose(graphed, eager, atol=1e-2)


def test_build_tracker_takes_a_named_preset():
    fast = build_tracker("dimp", weights="random", preset="fast", net_opt_iter=7)
    assert fast.params.autocast == "bf16" and fast.params.refinement.box_refinement_iter == 3
    assert fast.params.net_opt_iter == 7  # explicit parameters win over the preset
    with pytest.raises(ValueError, match="unknown preset"):
        build_tracker("dimp", weights="random", preset="fastest")
