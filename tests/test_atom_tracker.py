"""The ATOM tracker and its online classifier: the optimiser, the Fourier upsampling, and tracker behaviour."""

import math

import numpy as np
import pytest
import torch
from helpers import red_box_sequence, track_frames

from dimp_core import build_tracker
from dimp_core.trackers import FLAGS, TrackerInputError
from dimp_core.trackers.atom_classifier import (
    apply_filter,
    conjugate_gradient,
    fold_projection,
    fourier_upsample,
    gauss_newton_cg,
    gaussian_labels,
    label_centers,
    mlu,
    project,
    rms_normalize,
    train_filter,
    train_joint,
)

SIZE = 160  # a smaller search patch keeps the tests fast (10 x 10 features)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Many small tensor operations: on a loaded 2-core machine, two OpenMP threads are ~10x slower than one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

# --------------------------------------------------------------------------- the classifier's mathematics


def test_conjugate_gradient_solves_least_squares_like_lstsq():
    g = torch.Generator().manual_seed(0)
    A = torch.randn(40, 8, generator=g, dtype=torch.float64)
    b = torch.randn(40, generator=g, dtype=torch.float64)
    expected = torch.linalg.lstsq(A, b[:, None]).solution[:, 0]
    normal = lambda v: A.T @ (A @ v)  # noqa: E731
    for precond in (None, torch.rand(8, generator=g, dtype=torch.float64) + 0.1):
        d = conjugate_gradient(normal, A.T @ b, num_iter=8, precond=precond)  # n iterations: exact
        torch.testing.assert_close(d, expected, rtol=1e-9, atol=1e-9)
    assert torch.equal(conjugate_gradient(normal, torch.zeros(8, dtype=torch.float64), 5), torch.zeros(8))


def test_gauss_newton_on_a_linear_problem_is_one_least_squares_step():
    g = torch.Generator().manual_seed(1)
    A, b = torch.randn(30, 6, generator=g, dtype=torch.float64), torch.randn(30, generator=g, dtype=torch.float64)
    theta, losses = gauss_newton_cg(lambda t: A @ t - b, torch.zeros(6, dtype=torch.float64), 1, 6)
    torch.testing.assert_close(theta, torch.linalg.lstsq(A, b[:, None]).solution[:, 0])
    assert len(losses) == 2 and losses[1] < losses[0]


def _atom_loss(x, y, w, f, P, filter_reg=0.1, projection_reg=1e-4, min_val=0.05):
    """L(f, P) straight from the definition: sum_j w_j ||phi(f * (P x_j)) - y_j||^2 + regularisers."""
    s = apply_filter(project(x, P), f)
    return float((w[:, None, None] * (mlu(s, min_val) - y) ** 2).sum() + filter_reg * f.square().sum()
                 + projection_reg * P.square().sum())


def test_gauss_newton_lowers_the_atom_loss():
    g = torch.Generator().manual_seed(2)
    x = rms_normalize(torch.randn(12, 32, 10, 10, generator=g))
    y = gaussian_labels(torch.full((12, 2), 5.0) + torch.randn(12, 2, generator=g), 0.9, (10, 10))
    w = torch.full((12,), 1 / 12)
    P = torch.randn(8, 32, 1, 1, generator=g) / math.sqrt(32)
    f = torch.randn(1, 8, 4, 4, generator=g) / 128
    f2, P2, losses = train_joint(x, y, w, f, P, 0.1, 1e-4, 0.05, num_gn_iter=4, num_cg_iter=10)
    assert len(losses) == 5 and losses[-1] < 0.5 * losses[0]
    assert losses[0] == pytest.approx(_atom_loss(x, y, w, f, P), rel=1e-5)
    assert losses[-1] == pytest.approx(_atom_loss(x, y, w, f2, P2), rel=1e-5)
    # the update problem: P fixed, f alone
    f3, update_losses = train_filter(project(x, P2), y, w, f2, 0.1, 0.05, num_cg_iter=5)
    assert update_losses[1] <= update_losses[0] * (1 + 1e-6) and f3.shape == f.shape


def test_folded_projection_gives_the_same_scores():
    g = torch.Generator().manual_seed(3)
    x, P, f = torch.randn(3, 16, 9, 9, generator=g), torch.randn(4, 16, 1, 1, generator=g), torch.randn(1, 4, 4, 4)
    scores = apply_filter(project(x, P), f)
    assert scores.shape == (3, 9, 9)  # even filter: the extra row and column are dropped
    torch.testing.assert_close(apply_filter(x, fold_projection(f, P)), scores, rtol=1e-4, atol=1e-4)


def test_labels_follow_the_half_cell_convention():
    # a target centred in a 288 px patch (centre pixel 143.5) peaks at score cell 9 of 18
    box = torch.tensor([[143.5 - 24.5, 143.5 - 19.5, 50.0, 40.0]])
    center = label_centers(box, stride=16)
    assert center.tolist() == [[9.0, 9.0]]
    y = gaussian_labels(center, 0.9, (18, 18))[0]
    assert y[9, 9] == 1 and y.argmax() == 9 * 18 + 9


def test_fourier_upsampling_reproduces_a_band_limited_signal():
    n, size = 18, 288

    def signal(t):  # frequencies below Nyquist (9 cycles per 18 samples)
        return 0.5 + torch.cos(2 * math.pi * 2 * t / n + 0.3) + 0.4 * torch.sin(2 * math.pi * 7 * t / n)

    t, fine = torch.arange(n, dtype=torch.float64), torch.arange(size, dtype=torch.float64) * n / size
    samples = signal(t)[:, None] * signal(t + 1.7)[None, :]  # (18, 18), separable band-limited
    up = fourier_upsample(samples, (size, size))
    assert up.shape == (size, size)
    torch.testing.assert_close(up[:: size // n, :: size // n], samples)  # exact at the samples
    torch.testing.assert_close(up, signal(fine)[:, None] * signal(fine + 1.7)[None, :])  # and in between
    assert up.diff(n=2, dim=1).abs().max() < 0.05  # smooth: no kinks at the samples (nearest/linear: ~1)


def test_fourier_upsampling_nyquist_conventions():
    g = torch.Generator().manual_seed(4)
    samples = torch.randn(10, 10, generator=g, dtype=torch.float64)
    exact = fourier_upsample(samples, (40, 40), nyquist_weight=0.5)
    torch.testing.assert_close(exact[::4, ::4], samples)  # any signal, with the Nyquist bin split
    checker = torch.tensor([(-1.0) ** i for i in range(10)], dtype=torch.float64)
    pytracking = fourier_upsample(checker[None, :].expand(3, 10), (3, 40))  # the Nyquist bin counted twice
    torch.testing.assert_close(pytracking[:, ::4], 2 * checker[None, :].expand(3, 10))


# --------------------------------------------------------------------------- the tracker


def _make(**params):
    params.setdefault("image_sample_size", SIZE)
    return build_tracker("atom", device="cpu", weights="random", **params)


@pytest.fixture(scope="module")
def moving_square():
    frames, boxes = red_box_sequence(num=12)  # 12 frames: the filter update of frame 11 runs
    tracker = _make()
    out, infos = track_frames(tracker, frames, boxes[0])
    return tracker, out, infos


def test_runs_through_a_sequence_with_valid_flags_and_info(moving_square):
    tracker, out, infos = moving_square
    assert out.shape == (12, 4) and np.isfinite(out).all()
    for info in infos:
        assert info["flag"] in FLAGS and "error" not in info
        assert isinstance(info["score"], float) and info["score_map"].shape == (SIZE, SIZE)
        assert info["score_map_raw"].shape == (SIZE // 16,) * 2
        assert info["score"] == pytest.approx(float(info["score_map"].max()))
    losses = tracker.init_losses
    assert len(losses) == 7 and losses[-1] < losses[0]  # 6 Gauss-Newton steps lowered the first-frame loss


def test_thirty_first_frame_samples(moving_square):
    tracker, _, _ = moving_square
    memory = tracker.memory
    assert memory.num_init == 30  # identity + 4 shifts + flip + 5 blurs + 12 rotations + 7 dropout copies
    assert memory.samples.shape[1:] == (64, SIZE // 16, SIZE // 16)  # stored projected: D = 64
    assert memory.samples.shape[0] == 250 and 30 < memory.num_stored <= 41  # memory 250, + one per tracked frame
    torch.testing.assert_close(memory.boxes[23:30], memory.boxes[:1].expand(7, 4))  # dropout: identity box
    init_weights = memory.weights[:30]
    assert torch.allclose(init_weights, init_weights[0]) and float(init_weights.sum()) >= 0.25 - 1e-6
    assert tracker.projection.shape[0] == 64 and tracker.projection.shape[2:] == (1, 1)
    assert tracker.filter.shape == (1, 64, 4, 4)


def test_classifier_alone_follows_the_target():
    frames, boxes = red_box_sequence(num=5)
    out, infos = track_frames(_make(use_iou_net=False), frames, boxes[0])
    centres = out[:, :2] + (out[:, 2:] - 1) / 2
    truth = np.array(boxes)[:, :2] + (np.array(boxes)[:, 2:] - 1) / 2
    assert np.abs(centres - truth).max() < 3 and all(i["flag"] == "normal" for i in infos)


def test_same_seed_same_boxes():
    frames, boxes = red_box_sequence(num=4)
    a, _ = track_frames(_make(), frames, boxes[0])
    b, _ = track_frames(_make(), frames, boxes[0])
    assert np.array_equal(a, b)


def test_target_leaving_the_view_and_coming_back():
    def path(t):  # out through the right border, then back
        return (150 + 40 * t, 70) if t < 4 else (150 + 40 * (7 - t), 70)

    frames, boxes = red_box_sequence(num=8, path=path)
    out, infos = track_frames(_make(), frames, boxes[0])
    h, w = frames[0].shape[:2]
    for (x, y, bw, bh), info in zip(out[1:], infos, strict=True):
        assert info["flag"] in FLAGS and "error" not in info
        assert bw >= 1 and bh >= 1 and x < w and y < h and x + bw > 0 and y + bh > 0  # still touches the image


@pytest.mark.parametrize("box", [(100.0, 80.0, 1.0, 1.0), (0.0, 0.0, 25.0, 30.0), (215.0, 150.0, 25.0, 30.0)])
def test_tiny_and_border_targets(box):
    frames, _ = red_box_sequence(num=3)
    out, infos = track_frames(_make(init_gn_iter=2), frames, box)
    assert np.isfinite(out).all() and all(i["flag"] in FLAGS and "error" not in i for i in infos)


def test_grayscale_and_pil_frames_are_accepted():
    from PIL import Image

    frames, boxes = red_box_sequence(num=2)
    tracker = _make(init_gn_iter=1)
    tracker.init(frames[0][:, :, 0], boxes[0])
    assert tracker.update(Image.fromarray(frames[1])).shape == (4,) and "error" not in tracker.info


def test_bad_boxes_are_clear_errors():
    frames, _ = red_box_sequence(num=1)
    with pytest.raises(TrackerInputError, match="positive width and height"):
        _make().init(frames[0], (10, 10, 0, 20))


def test_unknown_parameter_lists_the_valid_ones():
    with pytest.raises(TypeError, match=r"unknown parameter\(s\) for atom: cg_iterations.*cg_iter"):
        build_tracker("atom", weights="random", cg_iterations=3)


def test_default_weights_name_the_official_file(tmp_path, monkeypatch):
    import dimp_core.trackers as trackers

    monkeypatch.setattr(trackers, "WEIGHTS_DIR", tmp_path)  # as if nothing were shipped
    with pytest.raises(FileNotFoundError, match="atom_default.pth"):
        build_tracker("atom")


def test_official_resnet18_architecture_tracks(tmp_path):
    from dimp_core import build_network, checkpoints

    path = tmp_path / "atom_resnet18.safetensors"
    checkpoints.save_safetensors(build_network("atom").state_dict(), path, {"architecture": "atom"})
    tracker = build_tracker("atom", device="cpu", weights=path, image_sample_size=SIZE, init_gn_iter=1)
    assert tracker.feature_layer == "layer3"
    frames, boxes = red_box_sequence(num=2)
    out, infos = track_frames(tracker, frames, boxes[0])
    assert np.isfinite(out).all() and infos[0]["flag"] in FLAGS and "error" not in infos[0]
    assert tracker.projection.shape == (64, 256, 1, 1)  # ResNet-18 layer3: C = 256
