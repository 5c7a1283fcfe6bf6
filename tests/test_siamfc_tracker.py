"""The SiamFC tracker: it runs on both embeddings, its response -> image chain and scale update match a hand
computation, it survives targets that leave the view, shrink or sit on the border, and it is deterministic."""

import dataclasses

import numpy as np
import pytest
import torch
from helpers import track_frames

from dimp_core import build_tracker
from dimp_core.nets.dimpnet import normalize_image
from dimp_core.trackers import FLAGS
from dimp_core.trackers.siamfc import (
    SiamFCParams,
    SiamFCTracker,
    blend_window,
    crop_and_resize,
    crop_window,
    damped_scale,
    exemplar_side,
    hanning_window,
    locate_target,
    normalize_response,
    response_to_image_displacement,
    scale_factors,
)

SMALL = 159  # a smaller search crop (AlexNet: 5 x 5 response) keeps the behaviour tests fast


@pytest.fixture(scope="module")
def nets():
    """One untrained network per embedding, shared by the trackers of this module (networks hold no state)."""
    return {name: build_tracker(name, device="cpu", weights="random").net for name in ("siamfc", "siamfc-alexnet")}


def make(nets, name: str = "siamfc-alexnet", **params) -> SiamFCTracker:
    return SiamFCTracker(nets[name], dataclasses.replace(SiamFCParams(), **params), "cpu", name=name)


def sequence(num: int = 6, path=None, size=(30, 40), shape=(120, 160), seed: int = 0):
    """A red box with a textured rim moving over a noisy background; ``path(t) -> (x, y)``, its top-left."""
    rng = np.random.default_rng(seed)
    background = (rng.random((*shape, 3)) * 90).astype(np.uint8)
    texture = rng.integers(0, 255, (size[1], size[0], 3)).astype(np.uint8)
    texture[4:-4, 4:-4] = (230, 40, 40)
    path = path or (lambda t: (40 + 3 * t, 30 + 2 * t))
    frames, boxes = [], []
    for t in range(num):
        x, y = path(t)
        im = background.copy()
        x0, y0 = max(int(x), 0), max(int(y), 0)
        x1, y1 = min(int(x) + size[0], shape[1]), min(int(y) + size[1], shape[0])
        if x1 > x0 and y1 > y0:
            im[y0:y1, x0:x1] = texture[y0 - int(y):y1 - int(y), x0 - int(x):x1 - int(x)]
        frames.append(im)
        boxes.append((float(x), float(y), float(size[0]), float(size[1])))
    return frames, boxes


def bump(col: float, row: float, amp: float = 1.0, size: int = 17) -> np.ndarray:
    """A Gaussian response peak at cell (col, row)."""
    yy, xx = np.mgrid[0:size, 0:size]
    return amp * np.exp(-((xx - col) ** 2 + (yy - row) ** 2) / (2 * 0.8 ** 2))


# --------------------------------------------------------------------------- running


@pytest.mark.parametrize("name", ["siamfc", "siamfc-alexnet"])
def test_both_networks_run_through_a_sequence(nets, name):
    frames, boxes = sequence(num=3)
    out, infos = track_frames(make(nets, name), frames, boxes[0])
    assert out.shape == (3, 4) and np.isfinite(out).all()
    for info in infos:
        assert info["flag"] in FLAGS and "error" not in info
        assert isinstance(info["score"], float) and np.isfinite(info["score"])
        assert info["score_map"].ndim == 2 and info["score_map"].shape == (17, 17)
        assert info["scale_factor"] in scale_factors(1.0375, 3)


def test_registry_names_and_parameter_checking():
    with pytest.raises(TypeError, match=r"unknown parameter\(s\) for siamfc-alexnet: window_infl.*window_influence"):
        build_tracker("siamfc-alexnet", weights="random", window_infl=0.2)


@pytest.mark.parametrize("name", ["siamfc", "siamfc-alexnet"])
def test_input_normalisation_follows_the_network(nets, name, monkeypatch):
    tracker = make(nets, name)
    seen = {}
    monkeypatch.setattr(tracker.net, "embed", lambda x: seen.setdefault("x", x))
    crops = np.full((1, 8, 8, 3), 200, dtype=np.uint8)
    tracker._embed(crops)
    raw = torch.full((1, 3, 8, 8), 200.0)
    expected = raw if name == "siamfc-alexnet" else normalize_image(raw)
    assert torch.allclose(seen["x"], expected)


# --------------------------------------------------------------------------- the equations by hand


def test_crop_geometry_and_mean_colour_padding():
    assert exemplar_side(np.array([10.0, 10.0]), 0.5) == 20.0  # sqrt((10 + 10)(10 + 10))
    assert crop_window(np.array([10.0, 20.0]), 5.0) == (8, 18, 5)  # corner round(c - (n - 1) / 2)
    assert crop_window(np.array([10.0, 20.0]), 0.2) == (10, 20, 1)  # never below 1 px
    image = np.zeros((10, 10, 3), dtype=np.uint8)
    image[:, :, 0] = 255
    fill = np.array([10.0, 20.0, 30.0])
    # a 4 px window centred on the top-left pixel: the column and row before the image are padding
    patch = crop_and_resize(image, np.array([0.0, 0.0]), 4.0, 4, fill)  # window x, y in [-2, 2)
    assert (patch[2:, 2:] == (255, 0, 0)).all() and (patch[:2, :] == (10, 20, 30)).all()
    assert (patch[:, :2] == (10, 20, 30)).all()
    far = crop_and_resize(image, np.array([500.0, -300.0]), 50.0, 7, fill)
    assert far.shape == (7, 7, 3) and (far == (10, 20, 30)).all()


def test_hanning_window_and_response_normalisation():
    window = hanning_window(272, 272)
    expected = np.outer(np.hanning(272), np.hanning(272))
    assert np.isclose(window.sum(), 1.0) and np.allclose(window, expected / expected.sum())
    assert np.allclose(window, window.T) and np.allclose(window, window[::-1, ::-1])
    assert window.max() == window[135, 135] == window[136, 136] and window[0].max() == 0.0
    response = np.random.default_rng(0).normal(size=(272, 272)) + 5
    normalized = normalize_response(response)
    assert np.isclose(normalized.min(), 0.0) and np.isclose(normalized.sum(), 1.0)
    blended = blend_window(normalized, window, 0.176)  # both sum to 1, so the blend does too
    assert np.isclose(blended.sum(), 1.0)
    assert np.allclose(blended, 0.824 * normalized + 0.176 * window)


def test_displacement_chain_by_hand():
    # peak 32 upsampled px right of the centre (135.5) and 16 above; x region of 510 image px
    # response -> instance: * 8 / 16 = (16, -8); instance -> image: * 510 / 255 = (32, -16)
    disp = response_to_image_displacement((167.5, 119.5), (272, 272), 8, 16, 510.0, 255)
    assert np.allclose(disp, [32.0, -16.0])
    # a response with its peak at cell (11, 6) on the centre scale: 3 cells right, 2 up = (48, -32) upsampled
    # px; cv2's bicubic x16 puts a cell's centre between two upsampled pixels, the argmax takes the first
    responses = np.stack([bump(11, 6, 0.5), bump(11, 6), bump(11, 6, 0.5)])
    loc = locate_target(responses, np.array([400.0, 510.0, 600.0]), SiamFCParams())
    assert loc.scale_index == 1
    assert np.allclose(loc.disp_in_image, np.array([48.0, -32.0]) * 8 / 16 * 510 / 255, atol=0.5 * 0.5 * 2)
    assert loc.response.shape == (272, 272) and np.isclose(loc.raw_peak, 1.0, atol=0.02)


def test_scale_penalty_decides_between_scales():
    sides = np.array([400.0, 510.0, 600.0])
    centre_kept = np.stack([bump(8, 8, 1.0), bump(8, 8, 0.98), bump(8, 8, 0.5)])  # 1.0 * 0.9745 < 0.98
    assert locate_target(centre_kept, sides, SiamFCParams()).scale_index == 1
    smaller_wins = np.stack([bump(8, 8, 1.0), bump(8, 8, 0.97), bump(8, 8, 0.5)])  # 0.9745 > 0.97
    assert locate_target(smaller_wins, sides, SiamFCParams()).scale_index == 0
    assert locate_target(smaller_wins, sides, SiamFCParams(scale_penalty=0.9)).scale_index == 1


def test_tracker_moves_by_the_chain_and_damps_the_scale(nets, monkeypatch):
    frames, _ = sequence(num=2)
    tracker = make(nets)
    box = (60.0, 50.0, 30.0, 40.0)  # centre (74.5, 69.5), 0-indexed
    tracker.init(frames[0], box)
    # by hand: p = 35, exemplar side sqrt(65 * 75), search side * 255 / 127, largest scale * 1.0375
    x_side = np.sqrt(65 * 75) * 255 / 127 * 1.0375
    monkeypatch.setattr(tracker, "_responses",
                        lambda crops: np.stack([bump(10, 9, 0.5), bump(10, 9, 0.5), bump(10, 9, 1.0)]))
    out = tracker.update(frames[1])
    s = 1 + 0.59 * 0.0375  # damped scale: (1 - 0.59) + 0.59 * 1.0375
    centre = np.array([74.5, 69.5]) + np.array([2 * 16, 1 * 16]) * 8 / 16 * x_side / 255  # 2 cells right, 1 down
    cx, cy = out[0] + (out[2] - 1) / 2, out[1] + (out[3] - 1) / 2
    assert np.allclose(out[2:], [30 * s, 40 * s], rtol=1e-12)
    assert np.allclose([cx, cy], centre, atol=0.5 * 0.5 * x_side / 255)
    assert tracker.info["scale_factor"] == pytest.approx(1.0375) and tracker.info["flag"] == "normal"
    assert tracker.info["score"] == pytest.approx(1.0, abs=0.02)


# --------------------------------------------------------------------------- robustness


def test_target_leaving_the_view_and_coming_back(nets):
    def path(t):  # out through the right border (fully outside at t = 2, 3), then back
        return (100 + 30 * t, 40) if t < 3 else (100 + 30 * (5 - t), 40)

    frames, boxes = sequence(num=6, path=path)
    out, infos = track_frames(make(nets, instance_size=SMALL), frames, boxes[0])
    h, w = frames[0].shape[:2]
    for (x, y, bw, bh), info in zip(out[1:], infos, strict=True):
        assert info["flag"] in FLAGS and "error" not in info
        assert bw >= 1 and bh >= 1 and x < w and y < h and x + bw > 0 and y + bh > 0  # still touches the image


def test_not_found_threshold_holds_the_state(nets):
    frames, boxes = sequence(num=2)
    out, infos = track_frames(make(nets, instance_size=SMALL, not_found_threshold=float("inf")), frames, boxes[0])
    assert all(i["flag"] == "not_found" and "error" not in i for i in infos)
    assert np.allclose(out, boxes[0])


@pytest.mark.parametrize("box", [(80.0, 60.0, 1.0, 1.0), (0.0, 0.0, 25.0, 30.0), (135.0, 90.0, 25.0, 30.0),
                                 (-10.0, -12.0, 20.0, 20.0), (159.0, 119.0, 1.0, 1.0)])
def test_one_pixel_and_border_boxes(nets, box):
    frames, _ = sequence(num=2)
    out, infos = track_frames(make(nets, instance_size=SMALL), frames, box)
    assert np.isfinite(out).all() and all(i["flag"] in FLAGS and "error" not in i for i in infos)
    assert (out[:, 2:] >= min(box[2], 4.0) - 1e-9).all()


def test_size_is_clamped_when_the_scale_keeps_shrinking_or_growing(nets, monkeypatch):
    frames, _ = sequence(num=2)
    for winner, expected in ((0, (4.0, 8.0)), (2, (60.0, 120.0))):  # shrink to 4 px / grow to the image height
        tracker = make(nets)
        tracker.init(frames[0], (70.0, 50.0, 10.0, 20.0))
        responses = np.stack([bump(8, 8, 1.0 if k == winner else 0.1) for k in range(3)])
        monkeypatch.setattr(tracker, "_responses", lambda crops, r=responses: r)
        for _ in range(100):
            out = tracker.update(frames[1])
        assert "error" not in tracker.info and np.allclose(out[2:], expected)


def test_same_seed_same_boxes(nets):
    frames, boxes = sequence(num=3)
    a, _ = track_frames(make(nets, instance_size=SMALL), frames, boxes[0])
    b, _ = track_frames(make(nets, instance_size=SMALL), frames, boxes[0])
    assert np.array_equal(a, b)
    # the untrained network is seeded: the same seed rebuilds the same weights, another seed does not
    same = build_tracker("siamfc-alexnet", weights="random").net.state_dict()
    other = build_tracker("siamfc-alexnet", weights="random", seed=1).net.state_dict()
    reference = nets["siamfc-alexnet"].state_dict()
    assert all(torch.equal(same[k], v) for k, v in reference.items())
    assert not all(torch.equal(other[k], v) for k, v in reference.items())


def test_scale_update_is_the_damped_factor():
    assert damped_scale(1.0375, 0.59) == pytest.approx(1.022125)
    assert damped_scale(1 / 1.0375, 0.59) == pytest.approx(0.41 + 0.59 / 1.0375)
    assert damped_scale(1.0, 0.59) == 1.0
