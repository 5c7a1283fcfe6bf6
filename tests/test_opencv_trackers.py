"""OpenCV's CSRT and KCF behind our Tracker interface, and the got10k adapter that lets the toolkit drive them."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from dimp_core import build_tracker
from dimp_core.evaluation.metrics import rect_iou
from dimp_core.trackers import FLAGS
from dimp_core.trackers.opencv import OpenCVTracker

SQUARE = 28


def moving_square(n: int = 12, size: tuple[int, int] = (120, 160), seed: int = 0
                  ) -> tuple[list[np.ndarray], np.ndarray]:
    """RGB frames of a textured square moving over a dim noise background, and its (x, y, w, h) boxes."""
    rng = np.random.default_rng(seed)
    background = (rng.integers(0, 255, (*size, 3)) // 3).astype(np.uint8)
    texture = rng.integers(0, 255, (SQUARE, SQUARE, 3)).astype(np.uint8)
    texture[4:-4, 4:-4] = (230, 60, 40)
    frames, boxes = [], []
    for k in range(n):
        x, y = 15 + 3 * k, 25 + k
        frame = background.copy()
        frame[y:y + SQUARE, x:x + SQUARE] = texture
        frames.append(frame)
        boxes.append((x, y, SQUARE, SQUARE))
    return frames, np.asarray(boxes, dtype=np.float64)


def write_jpegs(folder: Path, frames: list[np.ndarray]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, frame in enumerate(frames, start=1):
        paths.append(folder / f"{k:04d}.jpg")
        cv2.imwrite(str(paths[-1]), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
    return paths


@pytest.mark.parametrize("kind", ["csrt", "kcf"])
def test_follows_a_moving_square(kind):
    frames, boxes = moving_square()
    tracker = build_tracker(f"opencv-{kind}")
    assert isinstance(tracker, OpenCVTracker) and tracker.name == f"opencv-{kind}"
    tracker.init(frames[0], boxes[0])
    for frame, box in zip(frames[1:], boxes[1:], strict=True):
        out = tracker.update(frame)
        assert out.shape == (4,) and out.dtype == np.float64
        assert tracker.info["flag"] in FLAGS and tracker.info["flag"] == "normal" and tracker.info["score"] == 1.0
        assert rect_iou(out[None], box[None])[0] > 0.6


def test_lost_target_is_not_found_and_keeps_the_last_box():
    frames, boxes = moving_square(5)
    tracker = OpenCVTracker("kcf")
    tracker.init(frames[0], boxes[0])
    last = tracker.update(frames[1])
    noise = np.random.default_rng(5).integers(0, 255, frames[0].shape).astype(np.uint8)
    out = tracker.update(noise)  # KCF's peak response falls below its threshold
    assert tracker.info == {"score": 0.0, "flag": "not_found"}
    np.testing.assert_array_equal(out, last)


def test_opencv_failure_is_reported_for_any_kind(monkeypatch):
    frames, boxes = moving_square(4)
    tracker = OpenCVTracker("csrt")
    tracker.init(frames[0], boxes[0])
    last = tracker.update(frames[1])
    failing = type("Failing", (), {"update": lambda self, image: (False, (0, 0, 0, 0))})()
    monkeypatch.setattr(tracker, "_cv_tracker", failing)
    np.testing.assert_array_equal(tracker.update(frames[2]), last)
    assert tracker.info["flag"] == "not_found" and tracker.info["score"] == 0.0


def test_rgb_reaches_opencv_as_bgr(monkeypatch):
    seen = []

    class Recorder:
        def init(self, image, box):
            seen.append((image.copy(), box))

        def update(self, image):
            seen.append((image.copy(), None))
            return True, (1, 2, 3, 4)

    monkeypatch.setattr(cv2, "TrackerKCF_create", Recorder)
    frame = np.zeros((20, 30, 3), np.uint8)
    frame[..., 0] = 200  # red in RGB
    tracker = OpenCVTracker("kcf")
    tracker.init(frame, (-3.4, 2.6, 10.2, 40.0))  # partly outside: rounded and clipped
    assert seen[0][0][0, 0, 2] == 200 and seen[0][1] == (0, 3, 7, 17)
    np.testing.assert_array_equal(tracker.update(frame), [1, 2, 3, 4])


def test_parameters_are_checked():
    with pytest.raises(TypeError, match="unknown parameter.*opencv-kcf: padding"):
        OpenCVTracker("kcf", padding=2.0)
    with pytest.raises(ValueError, match="unknown OpenCV tracker 'mosse'; choose from csrt, kcf"):
        OpenCVTracker("mosse")
    with pytest.raises(ValueError, match="no weights"):
        build_tracker("opencv-csrt", weights="x.safetensors")


def test_got10k_toolkit_drives_our_tracker(tmp_path):
    from got10k.trackers import Tracker as Got10kBase

    from dimp_core.evaluation.got10k_adapter import Got10kTracker

    frames, boxes = moving_square(6)
    img_files = [str(p) for p in write_jpegs(tmp_path / "img", frames)]
    adapter = Got10kTracker(build_tracker("opencv-csrt"))
    assert isinstance(adapter, Got10kBase) and adapter.name == "opencv-csrt"
    out, times = adapter.track(img_files, boxes[0])  # got10k opens the frames with PIL
    assert out.shape == (6, 4) and times.shape == (6,) and (times > 0).all()
    np.testing.assert_array_equal(out[0], boxes[0])
    assert rect_iou(out[1:], boxes[1:]).min() > 0.6
