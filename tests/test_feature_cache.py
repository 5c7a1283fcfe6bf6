"""Training from cached backbone features: the cache holds what the backbone computes, batches have the
uncached shapes, the heads give the same output from features as from images, and a cached run learns."""

import json

import numpy as np
import pytest
import torch

from dimp_core.nets import build_network
from dimp_core.nets.dimpnet import normalize_image
from dimp_core.train import preset, train
from dimp_core.train.feature_cache import TEST, TRAIN, CachedBatches, _crop_item, build_cache
from dimp_core.train.loop import StepBatches
from dimp_core.train.pool import make_pool
from dimp_core.train.processing import ProcessingParams

PARAMS = ProcessingParams(output_size=96)


@pytest.fixture(scope="module")
def small():
    torch.manual_seed(0)
    net = build_network("dimp").eval()
    pool = make_pool("train", 2, 10, (160, 120), seed=0, progress=False)
    return net, pool, build_cache(net, pool, PARAMS, variants=2, seed=3, batch=7, progress=False)


def test_cached_features_are_the_backbone_features_of_the_crop(small):
    net, pool, cache = small
    s, t = 1, int(np.flatnonzero(pool[1].visible)[2])
    for mode in (TRAIN, TEST):
        item = int(cache.index[s][t, mode, 1])
        rng = np.random.default_rng([3, s, t, mode, 1])  # the generator build_cache gave this crop
        patch, box = _crop_item(pool[s].frames[t], pool[s].boxes[t], mode, PARAMS, rng)
        with torch.inference_mode():
            direct = net.extract_backbone_features(normalize_image(patch[None]))
        feat, boxes = cache.gather([item])
        for name, value in direct.items():
            torch.testing.assert_close(feat[name], value.half().float(), rtol=2e-3, atol=2e-3)  # float16
        torch.testing.assert_close(boxes[0], box)
    assert (cache.index[s][~pool[s].visible] == -1).all()  # hidden frames are not cropped


def test_cached_batches_have_the_uncached_layout_and_are_seeded(small):
    net, pool, cache = small
    config = preset("dimp", "smoke", image_sample_size=96, batch_size=3)
    ds = CachedBatches(cache, config.num_train, config.num_test, config.max_gap, 3, 5, 0, PARAMS, causal=True)
    batch, again = ds[2], ds[2]
    uncached = StepBatches(pool, config.replace(pool_sequences=2), 0)[2]
    assert batch.train_boxes.shape == uncached.train_boxes.shape == (3, 3, 4)
    assert batch.test_labels.shape == uncached.test_labels.shape
    assert batch.test_proposals.shape == uncached.test_proposals.shape
    assert batch.train_feat["stride16"].shape[:2] == (3, 3)
    torch.testing.assert_close(batch.test_proposals, again.test_proposals)
    with torch.no_grad():
        scores, iou = net.forward_features(batch.train_feat, batch.test_feat, batch.train_boxes, batch.test_proposals)
    assert scores[-1].shape == batch.test_labels.shape and iou.shape == batch.proposal_iou.shape


def test_forward_features_equals_forward_from_images():
    torch.manual_seed(0)
    net = build_network("dimp").eval()
    train_imgs, test_imgs = torch.rand(2, 2, 3, 96, 96) * 255, torch.rand(1, 2, 3, 96, 96) * 255
    boxes = torch.tensor([[[30.0, 30, 30, 30]] * 2] * 2)
    props = torch.tensor([[[[28.0, 31, 33, 29], [35, 30, 20, 25]]] * 2])
    with torch.no_grad():
        scores, iou = net(normalize_image(train_imgs), normalize_image(test_imgs), boxes, props)
        tr = net.extract_backbone_features(normalize_image(train_imgs.reshape(-1, 3, 96, 96)))
        te = net.extract_backbone_features(normalize_image(test_imgs.reshape(-1, 3, 96, 96)))
        scores2, iou2 = net.forward_features(tr, te, boxes, props)
    torch.testing.assert_close(iou, iou2)
    torch.testing.assert_close(scores[-1], scores2[-1])


@pytest.mark.parametrize(("tracker", "steps"), [("dimp", 12), ("atom", 30)])  # an ATOM step is noisier, cheaper
def test_cached_smoke_run_learns(tmp_path, tracker, steps):
    config = preset(tracker, "smoke", feature_cache=1, steps=steps, val_sequences=0)
    train(config, tmp_path, progress=False)
    totals = [json.loads(line)["total"] for line in (tmp_path / "log.jsonl").read_text().splitlines()
              if "total" in json.loads(line)]
    third = steps // 3
    assert len(totals) == steps and np.mean(totals[-third:]) < 0.8 * np.mean(totals[:third])


def test_feature_cache_refuses_a_trained_backbone(tmp_path):
    with pytest.raises(ValueError, match="frozen backbone"):
        train(preset("dimp", "smoke", feature_cache=1, lr_backbone=1e-5, val_sequences=0), tmp_path, progress=False)
