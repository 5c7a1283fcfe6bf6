"""Training configurations: one frozen dataclass, presets as data (``smoke``, ``cpu``, ``gpu``) per tracker.

The reference trains DiMP-18 for 50 epochs x 26000 samples (batch 26) on LaSOT, GOT-10k, TrackingNet and
COCO with Adam (base lr 2e-4; 5e-5 initialiser, 5e-4 optimiser, 5e-5 classification features, 1e-3 IoU-Net,
2e-4 backbone) and StepLR(15 epochs, 0.2). Here the data is the synthetic train split and the budget is one
CPU hour (``cpu``) or a few GPU minutes (``gpu``), so the schedule is scaled to steps: the learning rates
keep the reference's ratios, the decay happens at 60 % and 85 % of the run.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

TRACKERS = ("dimp", "atom", "siamfc")
PRESETS = ("smoke", "cpu", "gpu")


TRAIN_SPLITS = ("train", "train-kept")  # synthetic splits training may draw from (never val or test)


@dataclass(frozen=True)
class TrainConfig:
    tracker: str = "dimp"  # dimp | atom | siamfc
    network: str = "dimp"  # build_network name
    network_options: dict[str, Any] = field(default_factory=dict)  # DiMPConfig changes (the ablations)
    preset: str = "cpu"
    seed: int = 0
    steps: int = 1000  # optimiser steps
    batch_size: int = 4  # sequences per step
    num_train: int = 3  # train frames per sequence (DiMP; ATOM and SiamFC use 1)
    num_test: int = 3  # test frames per sequence (DiMP; ATOM and SiamFC use 1)
    max_gap: int = 30  # frames between train and test frames (DiMP 30, ATOM 50, SiamFC 100)
    image_sample_size: int = 288  # crop side (DiMP/ATOM)
    # the synthetic training pool: sequences generated once per run (train split: its own photos and seeds)
    pool_sequences: int = 60
    pool_frames: int = 60
    pool_image_size: tuple[int, int] = (480, 360)
    train_split: str = "train"  # "train-kept": without the held-out photos (dimp_core.data.synthetic), pools too
    # real sequences (virtual camera over the real train photographs, dimp_core.train.pool.make_real_pool) added
    # to the synthetic pool; the mix is recorded in the weights' metadata (config) like every other option
    real_sequences: int = 0
    # frozen-backbone training from cached features (dimp_core.train.feature_cache): crops per pool frame and
    # jitter mode whose backbone features are computed once; 0 = crop and run the backbone at every step
    feature_cache: int = 0
    # warm start: a weights file of this network to start from (fresh optimiser, step 0); "" = the usual
    # initialisation. The run's weights then record the file's hash and metadata (``init_weights_meta``).
    init_weights: str = ""
    # optimiser: Adam, learning rates per module (the reference's ratios); 0 freezes a module
    lr: float = 2e-4  # base
    lr_backbone: float = 0.0  # frozen ImageNet backbone by default (BN in eval mode)
    lr_clf_features: float = 5e-5
    lr_initializer: float = 5e-5
    lr_optimizer: float = 5e-4
    lr_iounet: float = 1e-3
    lr_decay: float = 0.2
    lr_milestones: tuple[float, ...] = (0.6, 0.85)  # fractions of ``steps``
    # logging, validation and checkpoints
    log_every: int = 1
    val_every: int = 0  # 0: validate at the end only
    val_sequences: int = 4
    val_frames: int = 60
    checkpoint_every: int = 100
    num_threads: int = 0  # torch threads; 0 = torch's default
    num_workers: int = 0  # processes that render the pool and make the batches (0: the training process)
    pool_cache: str = ""  # folder to keep the rendered pool in, shared by concurrent runs ("" = memory only)
    time_limit_s: float = 0.0  # stop early (logged, and recorded in the weights) after this long; 0 = never.
    # Single-process runs only: under torchrun the ranks could stop at different steps.

    def __post_init__(self) -> None:
        if self.train_split not in TRAIN_SPLITS:
            raise ValueError(f"train_split must be one of {', '.join(TRAIN_SPLITS)}, got {self.train_split!r}")

    def replace(self, **changes: object) -> TrainConfig:
        valid = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - valid)
        if unknown:
            raise TypeError(f"unknown training option(s) {', '.join(unknown)}; valid: {', '.join(sorted(valid))}")
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


_BASE = {
    "dimp": TrainConfig(tracker="dimp", network="dimp"),
    "atom": TrainConfig(tracker="atom", network="atom_lite0", num_train=1, num_test=1, max_gap=50,
                        lr=1e-3, lr_iounet=1e-3),
    "siamfc": TrainConfig(tracker="siamfc", network="siamfc", num_train=1, num_test=1, max_gap=100,
                          batch_size=8, lr=1e-3),
}

_PRESET_CHANGES: dict[str, dict[str, object]] = {
    # under a minute on a 2-core CPU: tiny pool, small frames, a few steps at the cpu preset's raised head rates
    # and no decay, enough to see the losses fall (tests and notebook 06)
    "smoke": {"steps": 12, "batch_size": 2, "pool_sequences": 2, "pool_frames": 24, "pool_image_size": (240, 180),
              "image_sample_size": 160, "val_sequences": 1, "val_frames": 12, "checkpoint_every": 6,
              "lr_clf_features": 2e-4, "lr_initializer": 2e-4, "lr_optimizer": 2e-3, "lr_iounet": 2e-3,
              "lr_milestones": ()},
    # at most an hour per tracker on the 2-core CPU (~2 s per DiMP step of 4 sequences x 6 frames). The run sees
    # 3600 examples against the reference's 1.3 million, so the head learning rates are raised (x4; IoU-Net x2)
    "cpu": {"steps": 900, "pool_sequences": 80, "pool_frames": 60, "val_sequences": 6, "val_every": 300,
            "lr_clf_features": 2e-4, "lr_initializer": 2e-4, "lr_optimizer": 2e-3, "lr_iounet": 2e-3},
    # a few minutes on one GPU machine (16 CPU cores render and crop the batches): 4x the cpu preset's batch, the
    # same raised head rates. tools/gpu_train.sh trains dimp, atom, siamfc and the ablations at once with it.
    "gpu": {"steps": 1000, "batch_size": 16, "pool_sequences": 240, "pool_frames": 80, "val_sequences": 6,
            "val_every": 500, "checkpoint_every": 250, "num_workers": 2,
            "lr_clf_features": 2e-4, "lr_initializer": 2e-4, "lr_optimizer": 2e-3, "lr_iounet": 2e-3},
}


def preset(tracker: str, name: str, **overrides: object) -> TrainConfig:
    """The configuration of ``tracker`` under preset ``name``, with optional overrides."""
    if tracker not in _BASE:
        raise ValueError(f"unknown tracker {tracker!r} to train; choose from {', '.join(TRACKERS)}")
    if name not in _PRESET_CHANGES:
        raise ValueError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    return _BASE[tracker].replace(preset=name, **_PRESET_CHANGES[name]).replace(**overrides)
