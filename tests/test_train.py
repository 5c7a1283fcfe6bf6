"""Offline training: the pieces (sampler, labels, proposals, losses) and tiny end-to-end runs."""

import json
import os
import socket

import numpy as np
import pytest
import torch

from dimp_core.train import losses, preset, train
from dimp_core.train.processing import ProcessingParams, gaussian_label, jitter_box, perturb_box
from dimp_core.train.sampler import NoExample, sample_causal, sample_interval

# --------------------------------------------------------------------------- pieces


def test_causal_sampler_orders_train_before_test_and_respects_visibility():
    visible = np.ones(100, dtype=bool)
    visible[40:60] = False
    rng = np.random.default_rng(0)
    for _ in range(50):
        train_ids, test_ids = sample_causal(visible, 3, 3, 30, rng)
        assert len(train_ids) == 3 and len(test_ids) == 3
        assert all(visible[i] for i in train_ids + test_ids)
        assert all(t > train_ids[0] for t in test_ids) and all(i <= train_ids[0] for i in train_ids)
        assert all(train_ids[0] - i <= 30 for i in train_ids[1:])


def test_interval_sampler_and_never_visible():
    rng = np.random.default_rng(1)
    a, b = sample_interval(np.ones(200, dtype=bool), 10, rng)
    assert abs(a - b) <= 10
    with pytest.raises(ValueError, match="never visible"):
        sample_causal(np.zeros(10, dtype=bool), 3, 3, 30, rng)


def test_causal_sampler_refuses_a_sequence_that_cannot_give_an_example():
    rng = np.random.default_rng(2)
    lone = np.zeros(40, dtype=bool)
    lone[20] = True  # no visible frame before or after it: the widening windows would never find one
    with pytest.raises(NoExample, match="no visible base frame"):
        sample_causal(lone, 3, 3, 30, rng)
    early = np.zeros(32, dtype=bool)
    early[:10] = True  # 16 train frames need a base at index 15 or later
    with pytest.raises(NoExample):
        sample_causal(early, 16, 3, 30, rng)
    train_ids, _ = sample_causal(early, 3, 3, 30, rng)  # 3 fit
    assert 2 <= train_ids[0] < 9


def test_training_batches_redraw_sequences_that_cannot_give_an_example():
    from dimp_core.train.loop import StepBatches
    from dimp_core.train.pool import PoolSequence

    frames = np.zeros((24, 64, 64, 3), dtype=np.uint8)
    boxes = np.tile(np.array([24.0, 24.0, 16.0, 16.0]), (24, 1))
    hidden = PoolSequence(frames, boxes, np.zeros(24, dtype=bool))
    shown = PoolSequence(frames + 100, boxes, np.ones(24, dtype=bool))
    config = preset("dimp", "smoke", batch_size=3, image_sample_size=64)
    batch = StepBatches([hidden, hidden, shown], config, rank=0)[0]
    assert batch.train_images.shape[:2] == (3, 3)
    assert (batch.train_images > 0).all()  # every example came from the visible sequence (before colour jitter: 100)
    with pytest.raises(RuntimeError, match="could not give a training example"):
        StepBatches([hidden], config, rank=0)[0]


def test_gaussian_label_peaks_at_the_centre_over_the_stride():
    params = ProcessingParams()
    box = torch.tensor([[128.0, 96.0, 32.0, 32.0]])  # continuous centre (144, 112) -> cell (9, 7)
    label = gaussian_label(box, params)[0]
    assert label.shape == (19, 19)
    assert divmod(int(label.argmax()), 19) == (7, 9) and label.max().item() == pytest.approx(1.0)
    assert label[7, 10].item() == pytest.approx(np.exp(-0.5 / 0.9 ** 2))  # sigma 0.9 cells


def test_jitter_and_proposals_follow_their_distributions():
    rng = np.random.default_rng(0)
    box = np.array([100.0, 100.0, 40.0, 20.0])
    jittered = np.array([jitter_box(box, 3.0, 0.25, rng) for _ in range(2000)])
    log_scale = np.log(jittered[:, 2] / 40.0)
    assert abs(log_scale.std() - 0.25) < 0.02
    centre_dx = jittered[:, 0] + jittered[:, 2] / 2 - 120
    assert np.abs(centre_dx).max() <= 3.0 * np.sqrt(jittered[:, 2] * jittered[:, 3]).max() / 2 + 1e-6
    for _ in range(50):
        proposal, iou = perturb_box(torch.tensor(box), ProcessingParams(), rng)
        assert iou > 0.1 and torch.equal(proposal, proposal.round())


def test_lb_hinge_ignores_negative_scores_on_the_background():
    label = torch.tensor([1.0, 0.5, 0.01, 0.0])
    assert losses.lb_hinge(torch.tensor([1.0, 0.5, -3.0, -1.0]), label).item() == 0.0
    assert losses.lb_hinge(torch.tensor([1.0, 0.5, 0.2, 0.0]), label).item() == pytest.approx(0.04 / 4)


def test_dimp_loss_weights_match_the_reference():
    label = torch.zeros(1, 1, 3, 3)
    scores = [torch.full((1, 1, 3, 3), v) for v in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)]  # f0, 4 intermediate, final
    iou = torch.zeros(1, 1, 2)
    total, log = losses.dimp_loss(scores, label, iou, iou)
    assert log["clf_init"] == pytest.approx(100 * 0.01) and log["clf_final"] == pytest.approx(100 * 0.36)
    assert log["clf_iter"] == pytest.approx(100 * (0.04 + 0.09 + 0.16 + 0.25))
    assert total.item() == pytest.approx(log["clf_init"] + log["clf_final"] + log["clf_iter"])


def test_balanced_bce_gives_positives_and_negatives_half_each():
    labels = losses.siamfc_labels(15).reshape(1, 1, 15, 15)
    assert labels.sum() == 13  # L1 ball of radius 2
    zero = losses.balanced_bce(torch.zeros_like(labels), labels)
    assert zero.item() == pytest.approx(np.log(2))


def test_unknown_preset_and_option():
    with pytest.raises(ValueError, match="smoke"):
        preset("dimp", "huge")
    with pytest.raises(TypeError, match="unknown training option"):
        preset("dimp", "smoke", stepz=3)


# --------------------------------------------------------------------------- end to end

TINY = {"steps": 4, "batch_size": 2, "pool_sequences": 1, "pool_frames": 16, "pool_image_size": (160, 120),
        "image_sample_size": 96, "val_sequences": 1, "val_frames": 6, "checkpoint_every": 2}


def _log(path):
    return [json.loads(line) for line in (path / "log.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny")
    config = preset("dimp", "smoke", **TINY)
    return config, train(config, out, progress=False), out


def test_tiny_dimp_run_logs_checkpoints_and_tracks(tiny_run):
    from dimp_core import build_tracker, checkpoints

    config, weights, out = tiny_run
    steps = [e for e in _log(out) if "total" in e]
    assert [e["step"] for e in steps] == [1, 2, 3, 4]
    assert all({"clf_final", "clf_init", "clf_iter", "iou", "lr", "seconds"} <= set(e) for e in steps)
    final = _log(out)[-1]
    assert final["final"] and 0 <= final["val_auc"] <= 100
    meta = checkpoints.load_checkpoint_info(weights)
    assert meta["config"]["steps"] == 4 and meta["seed"] == 0 and "wall_time_s" in meta
    tracker = build_tracker("dimp", device="cpu", weights=weights, image_sample_size=96)
    frames = [np.full((120, 160, 3), 60, dtype=np.uint8) for _ in range(3)]
    for f in frames:
        f[40:70, 50:80] = (200, 30, 30)
    tracker.init(frames[0], (50, 40, 30, 30))
    assert all(np.isfinite(tracker.update(f)).all() for f in frames[1:])


def test_training_is_deterministic_and_resumes(tiny_run, tmp_path):
    config, _, out = tiny_run
    first = [e["total"] for e in _log(out) if "total" in e]
    # same seed, same losses; the run is interrupted after step 2 (a checkpoint was written at step 2)
    again = tmp_path / "again"

    def interrupt(step, terms):
        if step == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(config.replace(val_sequences=0), again, progress=False, callback=interrupt)
    assert [e["total"] for e in _log(again) if "total" in e] == first[:2]
    # resuming continues the same log with the same losses
    train(config.replace(val_sequences=0), again, resume=again / "checkpoint.safetensors", progress=False)
    assert [e["total"] for e in _log(again) if "total" in e] == first


def test_warm_start_begins_from_the_given_weights(tiny_run, tmp_path):
    import hashlib

    from dimp_core import checkpoints

    config, weights, _ = tiny_run
    # practically still (a rate of 0 would freeze the module)
    tiny_lr = {k: 1e-30 for k in ("lr", "lr_clf_features", "lr_initializer", "lr_optimizer", "lr_iounet")}
    warm = config.replace(steps=1, val_sequences=0, checkpoint_every=0, init_weights=str(weights), **tiny_lr)
    out = train(warm, tmp_path / "warm", progress=False)
    start, end = checkpoints.load_state_dict(weights), checkpoints.load_state_dict(out)
    moved = [k for k in start if not torch.allclose(start[k], end[k], atol=1e-12)]
    assert start.keys() == end.keys() and all(k.endswith(("running_mean", "running_var", "num_batches_tracked"))
                                              for k in moved)  # a training step updates BatchNorm statistics
    meta = checkpoints.load_checkpoint_info(out)
    assert meta["init_weights_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert meta["init_weights_meta"]["config"]["steps"] == config.steps
    # a fresh run from the same seed starts elsewhere
    fresh = train(warm.replace(init_weights=""), tmp_path / "fresh", progress=False)
    assert not all(torch.allclose(start[k], v, atol=1e-6) for k, v in checkpoints.load_state_dict(fresh).items())
    with pytest.raises(FileNotFoundError, match="nowhere.safetensors"):
        train(warm.replace(init_weights=str(tmp_path / "nowhere.safetensors")), tmp_path / "bad", progress=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    config = preset("dimp", "smoke", **{**TINY, "steps": 2, "val_sequences": 0, "checkpoint_every": 0})
    train(config, out, device="cpu", progress=False)
    torch.distributed.destroy_process_group()


def test_two_gloo_processes_stay_in_sync(tmp_path):
    torch.multiprocessing.spawn(_ddp_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    entries = _log(tmp_path)
    checksums = next(e["rank_checksums"] for e in entries if "rank_checksums" in e)
    assert len(checksums) == 2 and checksums[0] == checksums[1]
    assert [e["step"] for e in entries if "total" in e] == [1, 2]
    assert (tmp_path / "dimp.safetensors").exists()


def test_smoke_preset_end_to_end_loss_falls(tmp_path):
    """sampler -> losses -> optimiser steps -> checkpoint -> reload -> track a sequence; the loss falls."""
    from dimp_core import build_tracker
    from dimp_core.data.synthetic import make_sequence

    config = preset("dimp", "smoke")
    weights = train(config, tmp_path, progress=False)
    totals = [e["total"] for e in _log(tmp_path) if "total" in e]
    assert len(totals) == config.steps
    assert np.mean(totals[-3:]) < 0.7 * np.mean(totals[:3])
    tracker = build_tracker("dimp", device="cpu", weights=weights, image_sample_size=config.image_sample_size)
    seq = make_sequence(7, "train", num_frames=6, image_size=(240, 180))
    tracker.init(seq.frames[0], seq.boxes[0])
    assert all(np.isfinite(tracker.update(f)).all() for f in seq.frames[1:])


def test_smoke_preset_on_a_mixed_real_and_synthetic_pool(tmp_path, monkeypatch):
    """Real photo sequences join the synthetic pool; the smoke run's loss falls and the mix is in the metadata.

    The real entries are limited to the photographs that ship in PyPI packages (scikit-image, scikit-learn), so
    the test needs no Debian package."""
    from dimp_core import checkpoints
    from dimp_core.data.real_sources import SOURCES
    from dimp_core.train import pool

    entries = [e for e in pool.real_train_entries() if SOURCES[e["source"]].registry == "pypi"]
    assert len(entries) >= 3
    monkeypatch.setattr(pool, "real_train_entries", lambda: entries)
    real = pool.make_real_pool(3, 8, (240, 180), seed=0, progress=False)
    assert [s.frames.shape for s in real] == [(8, 180, 240, 3)] * 3
    assert all(((s.boxes[:, 2:] > 4) & s.visible[:, None]).all() for s in real)
    config = preset("dimp", "smoke", real_sequences=2)
    weights = train(config, tmp_path, progress=False)
    totals = [e["total"] for e in _log(tmp_path) if "total" in e]
    assert np.mean(totals[-3:]) < 0.7 * np.mean(totals[:3])
    assert checkpoints.load_checkpoint_info(weights)["config"]["real_sequences"] == 2
