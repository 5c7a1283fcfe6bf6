"""Training at scale: the shared on-disk pool, batches made by DataLoader workers, the time limit, and the
ablation switches of the model predictor carried from training to tracking through the weights' metadata."""

import json

import numpy as np
import pytest
import torch

from dimp_core.nets import build_network
from dimp_core.nets.model_predictor import SteepestDescentGN
from dimp_core.train import losses, preset, train
from dimp_core.train.loop import StepBatches, batches
from dimp_core.train.pool import make_pool, pool_seeds


def test_cached_pool_equals_the_rendered_one_and_is_reused(tmp_path):
    fresh = make_pool("train", 2, 8, (160, 120), seed=3, progress=False)
    cached = make_pool("train", 2, 8, (160, 120), seed=3, cache=tmp_path, progress=False)
    assert len(list(tmp_path.glob("*.npz"))) == 2
    for a, b in zip(fresh, cached, strict=True):
        np.testing.assert_array_equal(a.frames, b.frames)
        np.testing.assert_array_equal(a.boxes, b.boxes)
        np.testing.assert_array_equal(a.visible, b.visible)
    stamp = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    again = make_pool("train", 2, 8, (160, 120), seed=3, cache=tmp_path, workers=2, progress=False)
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == stamp  # read, not rendered again
    np.testing.assert_array_equal(again[1].frames, fresh[1].frames)


def test_pool_seeds_keep_train_and_validation_apart():
    assert list(pool_seeds("val", 3, seed=7)) == [500000, 500001, 500002]
    assert list(pool_seeds("train", 2, seed=1)) == [10000, 10001]
    with pytest.raises(ValueError, match="unknown pool"):
        pool_seeds("test", 1, 0)


def test_kept_photo_pool_leaves_the_held_out_photos_out(tmp_path):
    kept = make_pool("train", 1, 2, (160, 120), seed=0, cache=tmp_path, progress=False, split="train-kept")
    full = make_pool("train", 1, 2, (160, 120), seed=0, progress=False)
    assert not np.array_equal(kept[0].frames, full[0].frames)  # same seed, other photos
    assert [p.name for p in tmp_path.glob("*.npz")] == ["train-kept-seed0-2f-160x120.npz"]  # cached apart
    assert preset("dimp", "smoke", train_split="train-kept").train_split == "train-kept"
    with pytest.raises(ValueError, match="train_split"):
        preset("dimp", "smoke", train_split="val-heldout")  # never train on a validation or test split


def test_worker_batches_equal_the_in_process_ones():
    config = preset("dimp", "smoke", steps=3, num_workers=1, image_sample_size=96)
    pool = make_pool("train", 2, 12, (160, 120), progress=False)
    direct = StepBatches(pool, config, rank=0)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # workers run one thread; the batches must not depend on this process's count
    try:
        for step, batch in enumerate(batches(pool, config, rank=0, start=0)):
            for key, value in vars(batch).items():
                torch.testing.assert_close(value, getattr(direct[step], key), rtol=0, atol=0)
    finally:
        torch.set_num_threads(threads)
    assert step == 2


def test_fixed_step_and_l2_switches():
    torch.manual_seed(0)
    feat = torch.randn(3, 1, 8, 9, 9)
    boxes = torch.tensor([[[44.0, 44.0, 40.0, 40.0]]]).expand(3, 1, 4)  # centre 64 px = cell (4, 4)
    f0 = torch.zeros(1, 8, 4, 4)
    fixed = SteepestDescentGN(num_iter=3, init_step_length=0.05, step_rule="fixed")
    trace = fixed(f0, feat, boxes)
    assert all(torch.equal(a, torch.ones(1)) for a in trace.alphas)
    l2 = SteepestDescentGN(num_iter=3, loss="l2", init_gauss_sigma=1.0)
    label, mask, weight = l2.loss_maps(boxes, (10, 10), 4)
    assert torch.equal(mask, torch.ones_like(mask)) and torch.equal(weight, torch.ones_like(weight))
    assert float(label.max()) == pytest.approx(1.0, abs=0.05) and float(label.min()) < 1e-3
    losses_l2 = [float(v.detach()) for v in l2(f0, feat, boxes).losses]
    assert losses_l2[-1] < losses_l2[0]
    with pytest.raises(ValueError, match="unknown step rule"):
        SteepestDescentGN(step_rule="newton")
    with pytest.raises(ValueError, match="unknown DiMP network option"):
        build_network("dimp18", optim_steps=2)
    with pytest.raises(ValueError, match="apply to the DiMP networks only"):
        build_network("atom", optim_iter=2)


def test_time_limit_and_network_options_reach_the_tracker(tmp_path):
    from dimp_core import checkpoints
    from dimp_core.trackers import build_tracker

    config = preset("dimp", "smoke", steps=50, time_limit_s=1e-9, val_sequences=0,
                    network_options={"optim_step_rule": "fixed", "optim_iter": 2})
    weights = train(config, tmp_path, progress=False)
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert log[1] == {"step": 1, "stopped_early": True, "time_limit_s": 1e-9}
    meta = checkpoints.load_checkpoint_info(weights)
    assert meta["steps_done"] == 1 and meta["network_options"] == {"optim_step_rule": "fixed", "optim_iter": 2}
    tracker = build_tracker("dimp", weights=str(weights))
    optimizer = tracker.net.classifier.filter_optimizer
    assert optimizer.step_rule == "fixed" and optimizer.num_iter == 2


def test_siamfc_labels_on_the_requested_device():
    labels = losses.siamfc_labels(5, device="cpu")
    assert labels.device.type == "cpu" and int(labels.sum()) == 13  # |i| + |j| <= 2 on a 5 x 5 grid
