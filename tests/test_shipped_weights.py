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


def _tool(name):
    import importlib
    import sys
    from pathlib import Path

    tools = str(Path(__file__).resolve().parents[1] / "tools")
    if tools not in sys.path:
        sys.path.insert(0, tools)
    return importlib.import_module(name)


@pytest.mark.parametrize("name", SHIPPED)
def test_make_weights_retrains_the_recorded_configuration(name):
    from dimp_core.train import preset

    config = _tool("reproduce_weights").recorded_config(name)
    recorded = checkpoints.load_checkpoint_info(WEIGHTS_DIR / f"{name}.safetensors")["config"]
    assert config.tracker == name and config.preset == recorded["preset"]
    assert config.steps == recorded["steps"] and config.pool_sequences == recorded["pool_sequences"]
    assert not config.time_limit_s and not config.pool_cache  # machine settings are not carried over
    assert config != preset(name, "smoke")


def test_shipped_weights_are_the_ones_selected_on_validation():
    import hashlib
    import json

    selection = json.loads((WEIGHTS_DIR.parent / "selection.json").read_text())
    assert selection["dataset"] == "synth-val"  # chosen on the validation split, not on synth-test
    for tracker, entry in selection["trackers"].items():
        chosen = entry["candidates"][entry["selected"]]
        assert chosen["auc"] == max(c["auc"] for c in entry["candidates"].values())
        shipped = hashlib.sha256((WEIGHTS_DIR / f"{tracker}.safetensors").read_bytes()).hexdigest()
        assert shipped == chosen["sha256"], f"data/weights/{tracker}.safetensors is not the candidate selected"
    table = _tool("select_on_val").table(selection)
    assert table.count("| yes |") == len(selection["trackers"])
