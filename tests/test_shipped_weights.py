"""The weights the project ships load from a clean clone with no download, and track."""

import numpy as np
import pytest

from dimp_core import build_tracker, checkpoints
from dimp_core.trackers import FLAGS, WEIGHTS_DIR

SHIPPED = sorted(p.stem for p in WEIGHTS_DIR.glob("*.safetensors"))


def test_dimp_weights_are_shipped():
    assert "dimp" in SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_weights_load_and_track(name):
    meta = checkpoints.load_checkpoint_info(WEIGHTS_DIR / f"{name}.safetensors")
    assert meta["tracker"] == name and "config" in meta and "seed" in meta  # reproducible from its recipe
    tracker = build_tracker(name, device="cpu")  # weights=None: the shipped file
    rng = np.random.default_rng(0)
    frames = [(rng.random((180, 240, 3)) * 80).astype(np.uint8) for _ in range(3)]
    for t, im in enumerate(frames):
        im[60 + 2 * t:100 + 2 * t, 80 + 3 * t:110 + 3 * t] = (220, 50, 40)
    tracker.init(frames[0], (80, 60, 30, 40))
    for im in frames[1:]:
        box = tracker.update(im)
        assert np.isfinite(box).all() and tracker.info["flag"] in FLAGS and "error" not in tracker.info
