"""Cached backbone features: training the heads of DiMP and ATOM without running a frozen backbone every step.

With ``lr_backbone = 0`` the backbone is a fixed function (its BatchNorm in eval mode), so a crop's features are
the same whenever they are computed. :func:`build_cache` crops every frame of the pool ``variants`` times with
each mode's jitter (the reference's train and test jitter, :mod:`dimp_core.train.processing`) and brightness
jitter, runs the backbone once per crop, and keeps the layers the heads read, in float16. A training step
(:class:`CachedBatches`) then samples frames exactly as before, takes one of the cached crops of each frame at
random and runs only the heads. The examples are the same kind as uncached ones, drawn from a finite set of
crops (pool frames x variants) instead of fresh crops each step; grayscale and brightness jitter are drawn per
crop rather than per frame set. On the 2-core CPU this removes most of a DiMP step (the backbone on 24 crops).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn
from tqdm import tqdm

from dimp_core.nets.dimpnet import normalize_image
from dimp_core.train.processing import (
    ProcessingParams,
    colour_jitter,
    crop_frame,
    gaussian_label,
    jitter_box,
    perturb_box,
)
from dimp_core.train.sampler import NoExample, sample_causal, sample_interval

TRAIN, TEST = 0, 1  # jitter modes


@dataclass
class FeatureCache:
    """Backbone features of jittered crops of every pool frame.

    Attributes:
        layers: layer name -> (items, C, H, W) float16 features.
        boxes: (items, 4) float32 target boxes in crop pixels.
        index: one (frames, 2, variants) int64 array per sequence: the item of (frame, mode, variant).
        visible: one (frames,) bool array per sequence.
    """

    layers: dict[str, Tensor]
    boxes: Tensor
    index: list[np.ndarray]
    visible: list[np.ndarray]

    def gather(self, items: list[int]) -> tuple[dict[str, Tensor], Tensor]:
        """Features (float32) and boxes of ``items``, in order."""
        ids = torch.as_tensor(items)
        return {k: v[ids].float() for k, v in self.layers.items()}, self.boxes[ids]


def _crop_item(frame: np.ndarray, box: np.ndarray, mode: int, params: ProcessingParams,
               rng: np.random.Generator) -> tuple[Tensor, Tensor]:
    jittered = jitter_box(box, params.center_jitter[mode], params.scale_jitter[mode], rng)
    patch, patch_box = crop_frame(frame, box, jittered, params)
    grayscale = rng.random() < params.grayscale_probability
    return colour_jitter(patch[None], grayscale, params, rng)[0], patch_box


@torch.inference_mode()
def build_cache(net: nn.Module, pool: list, params: ProcessingParams, variants: int, seed: int,
                batch: int = 32, progress: bool = True) -> FeatureCache:
    """Crop every visible frame of ``pool`` ``variants`` times per mode and keep its backbone features.

    ``net`` is a DiMPNet or ATOMNet (``extract_backbone_features``); the layers kept are the ones it returns.
    Each crop's jitter comes from its own generator (seed, sequence, frame, mode, variant)."""
    device = next(net.parameters()).device
    jobs = [(s, t, m, v) for s, seq in enumerate(pool) for t in np.flatnonzero(seq.visible)
            for m in (TRAIN, TEST) for v in range(variants)]
    index = [np.full((len(seq), 2, variants), -1, dtype=np.int64) for seq in pool]
    layers: dict[str, list[Tensor]] = {}
    boxes = []
    for start in tqdm(range(0, len(jobs), batch), desc="backbone cache", disable=not progress, leave=False):
        chunk = jobs[start:start + batch]
        crops = []
        for s, t, m, v in chunk:
            rng = np.random.default_rng([seed, s, int(t), m, v])
            patch, patch_box = _crop_item(pool[s].frames[t], pool[s].boxes[t], m, params, rng)
            crops.append(patch)
            boxes.append(patch_box)
            index[s][t, m, v] = len(boxes) - 1
        feat = net.extract_backbone_features(normalize_image(torch.stack(crops).to(device)))
        for name, value in feat.items():
            layers.setdefault(name, []).append(value.to("cpu", torch.float16))
    return FeatureCache({k: torch.cat(v) for k, v in layers.items()}, torch.stack(boxes).float(), index,
                        [np.asarray(seq.visible, dtype=bool) for seq in pool])


@dataclass
class FeatureExample:
    """A batch in feature form: layers (N, S, C, H, W) per frame set, and the usual boxes, labels, proposals."""

    train_feat: dict[str, Tensor]
    test_feat: dict[str, Tensor]
    train_boxes: Tensor  # (Ntr, S, 4)
    test_boxes: Tensor  # (Nte, S, 4)
    test_labels: Tensor  # (Nte, S, Ho, Wo)
    test_proposals: Tensor  # (Nte, S, P, 4)
    proposal_iou: Tensor  # (Nte, S, P)

    def to(self, device: torch.device) -> FeatureExample:
        def move(v: Tensor | dict[str, Tensor]) -> Tensor | dict[str, Tensor]:
            if isinstance(v, dict):
                return {k: t.to(device, non_blocking=True) for k, t in v.items()}
            return v.to(device, non_blocking=True)

        return FeatureExample(**{k: move(v) for k, v in vars(self).items()})


class CachedBatches(torch.utils.data.Dataset):
    """Item ``step`` is that step's batch from the cache, drawn with its own generator (seed, rank, step)."""

    def __init__(self, cache: FeatureCache, num_train: int, num_test: int, max_gap: int, batch_size: int,
                 steps: int, seed: int, params: ProcessingParams, causal: bool, rank: int = 0) -> None:
        self.cache, self.params, self.causal = cache, params, causal
        self.num_train, self.num_test, self.max_gap = num_train, num_test, max_gap
        self.batch_size, self.steps, self.seed, self.rank = batch_size, steps, seed, rank

    def __len__(self) -> int:
        return self.steps

    def _frames(self, s: int, rng: np.random.Generator) -> tuple[list[int], list[int]]:
        visible = self.cache.visible[s]
        if self.causal:
            return sample_causal(visible, self.num_train, self.num_test, self.max_gap, rng)
        train, test = sample_interval(visible, self.max_gap, rng)
        return [train], [test]

    def _items(self, rng: np.random.Generator) -> tuple[list[int], list[int]]:
        for _ in range(100):  # redraw sequences that cannot give an example, as the uncached batches do
            s = int(rng.integers(len(self.cache.index)))
            try:
                train, test = self._frames(s, rng)
            except NoExample:
                continue
            variants = self.cache.index[s].shape[2]
            pick = rng.integers(variants, size=len(train) + len(test))
            return ([int(self.cache.index[s][t, TRAIN, v]) for t, v in zip(train, pick[:len(train)], strict=True)],
                    [int(self.cache.index[s][t, TEST, v]) for t, v in zip(test, pick[len(train):], strict=True)])
        raise RuntimeError("100 sequences in a row could not give a training example from the cache")

    def __getitem__(self, step: int) -> FeatureExample:
        rng = np.random.default_rng([self.seed, self.rank, step, 1])
        picks = [self._items(rng) for _ in range(self.batch_size)]
        n_tr, n_te, seqs = len(picks[0][0]), len(picks[0][1]), len(picks)
        train_feat, train_boxes = self.cache.gather([i for tr, _ in picks for i in tr])  # (S * Ntr, ...)
        test_feat, test_boxes = self.cache.gather([i for _, te in picks for i in te])

        def frames_first(t: Tensor, n: int) -> Tensor:  # (S * n, ...) -> (n, S, ...)
            return t.reshape(seqs, n, *t.shape[1:]).transpose(0, 1).contiguous()

        proposals = [[perturb_box(b, self.params, rng) for _ in range(self.params.proposals_per_frame)]
                     for b in test_boxes]
        props = torch.stack([torch.stack([p for p, _ in row]) for row in proposals])  # (S * Nte, P, 4)
        ious = torch.tensor([[2 * iou - 1 for _, iou in row] for row in proposals])  # (S * Nte, P)
        return FeatureExample(
            train_feat={k: frames_first(v, n_tr) for k, v in train_feat.items()},
            test_feat={k: frames_first(v, n_te) for k, v in test_feat.items()},
            train_boxes=frames_first(train_boxes, n_tr), test_boxes=frames_first(test_boxes, n_te),
            test_labels=frames_first(gaussian_label(test_boxes, self.params), n_te),
            test_proposals=frames_first(props, n_te), proposal_iou=frames_first(ious, n_te))
