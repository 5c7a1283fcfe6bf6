"""The DiMP tracker's behaviour: it runs, never raises on valid frames, is deterministic, checks its input."""

import numpy as np
import pytest
import torch
from helpers import red_box_sequence, track_frames

from dimp_core import build_tracker
from dimp_core.trackers import FLAGS, TrackerInputError

SIZE = 160  # a smaller search patch keeps the tests fast; the networks are fully convolutional


@pytest.fixture(scope="module")
def tracker_factory():
    def make(**params):
        params.setdefault("image_sample_size", SIZE)
        return build_tracker("dimp", device="cpu", weights="random", **params)

    return make


def test_runs_through_a_sequence_with_valid_flags_and_info(tracker_factory):
    frames, boxes = red_box_sequence()
    tracker = tracker_factory()
    out, infos = track_frames(tracker, frames, boxes[0])
    assert out.shape == (8, 4) and np.isfinite(out).all()
    for info in infos:
        assert info["flag"] in FLAGS and "error" not in info
        assert isinstance(info["score"], float) and info["score_map"].shape == (SIZE // 16 + 1,) * 2
    losses = [float(v) for v in tracker.init_trace.losses]
    assert len(losses) == 11 and losses[-1] < losses[0]  # the first-frame optimisation lowered the loss


def test_same_seed_same_boxes(tracker_factory):
    frames, boxes = red_box_sequence(num=6)
    a, _ = track_frames(tracker_factory(), frames, boxes[0])
    b, _ = track_frames(tracker_factory(), frames, boxes[0])
    assert np.array_equal(a, b)


def test_target_leaving_the_view_and_coming_back(tracker_factory):
    def path(t):  # out through the right border, then back
        return (150 + 40 * t, 70) if t < 4 else (150 + 40 * (7 - t), 70)

    frames, boxes = red_box_sequence(num=8, path=path)
    out, infos = track_frames(tracker_factory(), frames, boxes[0])
    h, w = frames[0].shape[:2]
    for (x, y, bw, bh), info in zip(out[1:], infos, strict=True):
        assert info["flag"] in FLAGS and "error" not in info
        assert bw >= 1 and bh >= 1 and x < w and y < h and x + bw > 0 and y + bh > 0  # still touches the image


@pytest.mark.parametrize("box", [(100.0, 80.0, 1.0, 1.0), (0.0, 0.0, 25.0, 30.0), (215.0, 150.0, 25.0, 30.0)])
def test_tiny_and_border_targets(tracker_factory, box):
    frames, _ = red_box_sequence(num=4)
    out, infos = track_frames(tracker_factory(), frames, box)
    assert np.isfinite(out).all() and all(i["flag"] in FLAGS and "error" not in i for i in infos)


def test_grayscale_and_pil_frames_are_accepted(tracker_factory):
    from PIL import Image

    frames, boxes = red_box_sequence(num=3)
    tracker = tracker_factory()
    tracker.init(frames[0][:, :, 0], boxes[0])
    assert tracker.update(Image.fromarray(frames[1])).shape == (4,)


@pytest.mark.parametrize(("box", "message"), [
    ((10, 10, 0, 20), "positive width and height"),
    ((500, 10, 20, 20), "entirely outside"),
    ((1, 2, 3), "4 finite numbers"),
])
def test_bad_boxes_are_clear_errors(tracker_factory, box, message):
    frames, _ = red_box_sequence(num=1)
    with pytest.raises(TrackerInputError, match=message):
        tracker_factory().init(frames[0], box)


def test_bad_images_are_clear_errors(tracker_factory):
    tracker = tracker_factory()
    with pytest.raises(TrackerInputError, match="uint8"):
        tracker.init(np.zeros((50, 50, 3), dtype=np.float32), (1, 1, 5, 5))
    with pytest.raises(TrackerInputError, match="H x W x 3"):
        tracker.init(np.zeros((50, 50, 4), dtype=np.uint8), (1, 1, 5, 5))
    with pytest.raises(RuntimeError, match="init"):
        tracker_factory().update(np.zeros((50, 50, 3), dtype=np.uint8))


def test_unknown_parameter_lists_the_valid_ones():
    with pytest.raises(TypeError, match=r"unknown parameter\(s\) for dimp: net_opt_iterations.*net_opt_iter"):
        build_tracker("dimp", weights="random", net_opt_iterations=3)


def test_paper_configurations_need_official_weights():
    with pytest.raises(FileNotFoundError, match="dimp50.pth"):
        build_tracker("dimp50")


def test_unknown_tracker_lists_the_known_ones():
    with pytest.raises(ValueError, match="opencv-csrt"):
        build_tracker("dimp19")


def test_dimp18_official_architecture_tracks(tracker_factory):
    frames, boxes = red_box_sequence(num=3)
    tracker = build_tracker("dimp18", device="cpu", weights="random", image_sample_size=SIZE)
    out, infos = track_frames(tracker, frames, boxes[0])
    assert np.isfinite(out).all() and all(i["flag"] in FLAGS for i in infos)
    assert torch.equal(tracker.filter, tracker.filter)  # the filter exists and is a tensor


def test_got10k_toolkit_drives_the_dimp_tracker(tracker_factory, tmp_path):
    import cv2
    from got10k.trackers import Tracker as Got10kBase

    from dimp_core.evaluation.got10k_adapter import Got10kTracker

    frames, boxes = red_box_sequence(num=4)
    files = []
    for i, im in enumerate(frames):
        files.append(str(tmp_path / f"{i:04d}.jpg"))
        cv2.imwrite(files[-1], cv2.cvtColor(im, cv2.COLOR_RGB2BGR))
    adapter = Got10kTracker(tracker_factory())
    assert isinstance(adapter, Got10kBase)
    out, times = adapter.track(files, boxes[0])  # got10k opens the frames with PIL and passes PIL images
    assert out.shape == (4, 4) and np.isfinite(out).all() and (times > 0).all()
