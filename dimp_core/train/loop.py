"""Offline training: one explicit loop for DiMP, ATOM and SiamFC on the synthetic train split and real photos.

sample frames -> process (crops, labels, proposals) -> forward -> loss -> backward -> Adam step, with a JSON
lines log of every loss term, periodic validation AUC (the tracker itself on held-out synthetic sequences),
and checkpoints as safetensors (weights; metadata: config, seed, git commit, wall time, validation) plus the
optimiser state (a plain ``torch.save`` of tensors and numbers, loaded back with ``weights_only=True``).

Distributed training uses PyTorch's own engine: under ``torchrun`` (``WORLD_SIZE`` > 1) each process wraps
the network in ``DistributedDataParallel`` (gloo on CPU, NCCL on GPU), draws its own examples (seed + rank)
and rank 0 writes the log and the checkpoints.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn
from tqdm import tqdm

from dimp_core import checkpoints
from dimp_core.nets import build_network
from dimp_core.nets.dimpnet import normalize_image
from dimp_core.train import losses
from dimp_core.train.config import TrainConfig
from dimp_core.train.feature_cache import CachedBatches, FeatureExample, build_cache
from dimp_core.train.pool import PoolSequence, make_pool, make_real_pool
from dimp_core.train.processing import Example, ProcessingParams, collate, crop_frame, make_example
from dimp_core.train.sampler import NoExample, sample_causal, sample_interval

# --------------------------------------------------------------------------- data

MAX_REDRAWS = 100  # sequences tried in a row for one example before giving up


def training_pools(config: TrainConfig, progress: bool) -> tuple[list[PoolSequence], list[PoolSequence]]:
    """The run's training and validation sequences (``dimp_core.train.pool``)."""
    cache = config.pool_cache or None
    common = {"image_size": config.pool_image_size, "seed": config.seed, "workers": config.num_workers,
              "cache": cache, "progress": progress, "split": config.train_split}
    real = make_real_pool(config.real_sequences, config.pool_frames, config.pool_image_size, seed=config.seed,
                          workers=config.num_workers, progress=progress)
    return (make_pool("train", config.pool_sequences, config.pool_frames, **common) + real,
            make_pool("val", config.val_sequences, config.val_frames, **common))


def dimp_example(sequence: Any, config: TrainConfig, params: ProcessingParams, rng: np.random.Generator) -> Example:
    """One DiMP/ATOM example from a sequence: causal frame sampling, then processing."""
    train_ids, test_ids = sample_causal(sequence.visible, config.num_train, config.num_test, config.max_gap, rng)
    return make_example([sequence.frames[i] for i in train_ids], sequence.boxes[train_ids],
                        [sequence.frames[i] for i in test_ids], sequence.boxes[test_ids], params, rng)


def siamfc_example(sequence: Any, config: TrainConfig, rng: np.random.Generator) -> tuple[Tensor, Tensor]:
    """An exemplar crop (3, 127, 127) and a search crop (3, 239, 239) (siamfc-pytorch ``Pair`` + transforms).

    Both are cut around their own frame's target with the context rule (side sqrt((w + p)(h + p)) * size / 127,
    p = (w + h) / 2); the search crop is shifted by up to 4 px, and its labels stay centred as in the reference.
    """
    z_id, x_id = sample_interval(sequence.visible, config.max_gap, rng)
    crops = []
    for frame_id, size, shift in ((z_id, 127, 0.0), (x_id, 239, 4.0)):
        box = sequence.boxes[frame_id]
        context = 0.5 * (box[2] + box[3])
        side = math.sqrt((box[2] + context) * (box[3] + context)) * size / 127  # image pixels of the crop
        centre = box[:2] + box[2:] / 2 + rng.uniform(-shift, shift, 2) * side / size
        square = np.concatenate([centre - side / 2, [side, side]])  # crop_frame cuts 1 x sqrt(area) of it
        crops.append(crop_frame(sequence.frames[frame_id], box, square,
                                ProcessingParams(output_size=size, search_area_factor=1.0))[0])
    return crops[0], crops[1]


class StepBatches(torch.utils.data.Dataset):
    """Item ``step`` is the batch of that optimiser step, drawn with its own generator (seed, rank, step): the same
    batch whichever DataLoader worker makes it, and a resumed run continues with the batches it would have seen."""

    def __init__(self, pool: list[PoolSequence], config: TrainConfig, rank: int) -> None:
        self.pool, self.config, self.rank = pool, config, rank
        self.params = ProcessingParams(output_size=config.image_sample_size)

    def __len__(self) -> int:
        return self.config.steps

    def __getitem__(self, step: int) -> Example | tuple[Tensor, Tensor]:
        c = self.config
        rng = np.random.default_rng([c.seed, self.rank, step])
        sequences = [self.pool[i] for i in rng.integers(len(self.pool), size=c.batch_size)]
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # DataLoader workers run one thread: the same rounding in this process
        try:
            if c.tracker == "siamfc":
                pairs = [self.example(s, rng) for s in sequences]
                return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])
            return collate([self.example(s, rng) for s in sequences])
        finally:
            torch.set_num_threads(threads)

    def example(self, sequence: PoolSequence, rng: np.random.Generator) -> Example | tuple[Tensor, Tensor]:
        """One example from ``sequence``, or from another drawn sequence while one cannot give an example (the
        target not visible where the sampler needs it; pytracking redraws such sequences too)."""
        for _ in range(MAX_REDRAWS):
            try:
                if self.config.tracker == "siamfc":
                    return siamfc_example(sequence, self.config, rng)
                return dimp_example(sequence, self.config, self.params, rng)
            except NoExample:
                sequence = self.pool[int(rng.integers(len(self.pool)))]
        raise RuntimeError(f"{MAX_REDRAWS} sequences in a row could not give a training example: the pool's targets "
                           f"are not visible often enough for num_train={self.config.num_train}, "
                           f"num_test={self.config.num_test}")


def batches(pool: list[PoolSequence], config: TrainConfig, rank: int, start: int) -> torch.utils.data.DataLoader:
    """Batches of steps ``start .. steps - 1`` in order, made by ``config.num_workers`` processes (0: this one)."""
    workers = config.num_workers
    return torch.utils.data.DataLoader(StepBatches(pool, config, rank), batch_size=None,
                                       sampler=range(start, config.steps), num_workers=workers,
                                       prefetch_factor=4 if workers else None,
                                       multiprocessing_context="fork" if workers else None)


def cached_batches(net: nn.Module, pool: list[PoolSequence], config: TrainConfig, rank: int, start: int,
                   progress: bool) -> torch.utils.data.DataLoader:
    """Batches of steps ``start .. steps - 1`` from backbone features cached once (``config.feature_cache``
    crops per frame and jitter mode; :mod:`dimp_core.train.feature_cache`)."""
    if config.tracker == "siamfc" or config.lr_backbone:
        raise ValueError("feature_cache needs a frozen backbone (lr_backbone = 0) and a DiMP or ATOM network")
    params = ProcessingParams(output_size=config.image_sample_size)
    cache = build_cache(net, pool, params, config.feature_cache, config.seed, progress=progress)
    dataset = CachedBatches(cache, config.num_train, config.num_test, config.max_gap, config.batch_size,
                            config.steps, config.seed, params, causal=config.tracker == "dimp", rank=rank)
    return torch.utils.data.DataLoader(dataset, batch_size=None, sampler=range(start, config.steps))


def to_device(batch: Example | FeatureExample | tuple[Tensor, Tensor],
              dev: torch.device) -> Example | FeatureExample | tuple[Tensor, Tensor]:
    if isinstance(batch, FeatureExample):
        return batch.to(dev)
    if isinstance(batch, Example):
        return Example(**{k: v.to(dev, non_blocking=True) for k, v in vars(batch).items()})
    return batch[0].to(dev, non_blocking=True), batch[1].to(dev, non_blocking=True)


# --------------------------------------------------------------------------- networks and optimiser


def param_groups(net: nn.Module, config: TrainConfig) -> list[dict[str, Any]]:
    """Adam parameter groups with the reference's per-module learning rates; lr 0 freezes a module."""
    groups = {
        "feature_extractor": config.lr_backbone,  # DiMP and ATOM backbones
        "classifier.feature_extractor": config.lr_clf_features,
        "classifier.filter_initializer": config.lr_initializer,
        "classifier.filter_optimizer": config.lr_optimizer,
        "bb_regressor": config.lr_iounet,
        "backbone.backbone": config.lr_backbone,  # SiamFC's Lite0
        "backbone.neck": config.lr,
        "backbone": config.lr_backbone if config.network == "siamfc" else config.lr,  # AlexNet trains from scratch
    }
    out: dict[str, list[nn.Parameter]] = {}
    for name, p in net.named_parameters():
        prefix = max((g for g in groups if name.startswith(g + ".")), key=len, default=None)
        lr = groups[prefix] if prefix is not None else config.lr
        if lr == 0:
            p.requires_grad_(False)
            continue
        p.requires_grad_(True)
        out.setdefault(f"{prefix}:{lr}", []).append(p)
    return [{"params": ps, "lr": float(key.rsplit(":", 1)[1]), "name": key.rsplit(":", 1)[0]}
            for key, ps in out.items()]


def set_train_mode(net: nn.Module, config: TrainConfig) -> None:
    """Train mode, except a frozen backbone keeps its BatchNorm statistics (eval mode)."""
    net.train()
    if config.lr_backbone == 0:
        for name in ("feature_extractor", "backbone"):
            module = getattr(net, name, None)
            if isinstance(module, nn.Module):
                target = getattr(module, "backbone", module) if config.network == "siamfc" else module
                target.eval()


def _heads(net: nn.Module, batch: Example | FeatureExample) -> Any:
    """The network's training output, from images or from cached backbone features."""
    if isinstance(batch, FeatureExample):
        return net.forward_features(batch.train_feat, batch.test_feat, batch.train_boxes, batch.test_proposals)
    return net(normalize_image(batch.train_images), normalize_image(batch.test_images), batch.train_boxes,
               batch.test_proposals)


def dimp_step(net: nn.Module, batch: Example | FeatureExample) -> tuple[Tensor, dict[str, float]]:
    scores, iou = _heads(net, batch)
    return losses.dimp_loss(scores, batch.test_labels, iou, batch.proposal_iou)


def atom_step(net: nn.Module, batch: Example | FeatureExample) -> tuple[Tensor, dict[str, float]]:
    iou = _heads(net, batch)
    loss = torch.nn.functional.mse_loss(iou, batch.proposal_iou)
    return loss, {"iou": float(loss.detach()), "total": float(loss.detach())}


def siamfc_step(net: nn.Module, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, dict[str, float]]:
    z, x = batch
    module = net.module if isinstance(net, nn.parallel.DistributedDataParallel) else net
    if module.input_normalization == "imagenet":
        z, x = normalize_image(z), normalize_image(x)
    response = net(z, x)  # (B, 1, 15, 15)
    labels = losses.siamfc_labels(response.shape[-1], device=response.device).expand_as(response)
    loss = losses.balanced_bce(response, labels)
    return loss, {"bce": float(loss.detach()), "total": float(loss.detach())}


# --------------------------------------------------------------------------- checkpoints


def save_checkpoint(net: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any, step: int, path: Path,
                    config: TrainConfig, extra: dict[str, Any]) -> None:
    """Weights as safetensors with metadata; optimiser and scheduler state beside it (``.opt.pt``)."""
    module = net.module if isinstance(net, nn.parallel.DistributedDataParallel) else net
    meta = {"architecture": config.network, "network_options": dict(config.network_options), "tracker": config.tracker,
            "config": asdict(config), "seed": config.seed, "step": step, **extra}
    checkpoints.save_safetensors(module.state_dict(), path, meta)
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "step": step,
                "rng": torch.get_rng_state()}, path.with_suffix(".opt.pt"))


def load_training_state(path: Path) -> dict[str, Any]:
    return torch.load(path.with_suffix(".opt.pt"), map_location="cpu", weights_only=True)


# --------------------------------------------------------------------------- validation


def validate(net: nn.Module, config: TrainConfig, sequences: list[Any]) -> dict[str, float]:
    """Success AUC of the tracker with the current weights on held-out synthetic sequences."""
    from dimp_core.evaluation.metrics import score_sequence

    module = net.module if isinstance(net, nn.parallel.DistributedDataParallel) else net
    module.eval()
    tracker = make_tracker(module, config)
    aucs = []
    for seq in sequences:
        boxes = [np.asarray(seq.boxes[0], dtype=float)]
        tracker.init(seq.frames[0], seq.boxes[0])
        boxes += [tracker.update(f) for f in seq.frames[1:]]
        aucs.append(score_sequence(np.array(boxes), seq.boxes, seq.visible).auc)
    set_train_mode(module, config)  # the tracker switched to eval mode and froze the weights
    _restore_grad_flags(module, config)
    return {"val_auc": float(np.mean(aucs)) * 100}


def make_tracker(net: nn.Module, config: TrainConfig) -> Any:
    """The tracker that runs ``net`` (the same online logic as ``build_tracker``)."""
    device = next(net.parameters()).device
    if config.tracker == "dimp":
        from dimp_core.trackers.dimp import DiMPParams, DiMPTracker

        return DiMPTracker(net, DiMPParams(image_sample_size=config.image_sample_size), device)
    if config.tracker == "atom":
        from dimp_core.trackers.atom import ATOMParams, ATOMTracker

        return ATOMTracker(net, ATOMParams(image_sample_size=config.image_sample_size), device)
    from dimp_core.trackers.siamfc import SiamFCParams, SiamFCTracker

    return SiamFCTracker(net, SiamFCParams(), device)


# --------------------------------------------------------------------------- the loop


def _distributed() -> tuple[int, int]:
    """(rank, world size); initialises the process group under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def train(config: TrainConfig, out: str | Path, resume: str | Path | None = None, device: str | None = None,
          callback: Callable[[int, dict[str, float]], None] | None = None, progress: bool = True) -> Path:
    """Train ``config.network`` and return the path of the final weights (``<out>/<tracker>.safetensors``).

    The log ``<out>/log.jsonl`` gets one JSON line per step (every loss term, learning rate, seconds) and one
    per validation; with ``resume`` (a checkpoint written by this function) training continues from its step,
    optimiser state and random state, appending to the same log.
    """
    rank, world = _distributed()
    commit = checkpoints.git_commit(Path(__file__).parent)  # the code this run starts from
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    torch.manual_seed(config.seed)

    net = build_network(config.network, config.init_weights or None, **config.network_options).to(dev)
    init_meta = _init_weights_meta(config.init_weights)
    groups = param_groups(net, config)
    set_train_mode(net, config)
    model: nn.Module = net
    if world > 1:
        model = nn.parallel.DistributedDataParallel(net, device_ids=[dev.index] if dev.type == "cuda" else None)
    optimizer = torch.optim.Adam(groups)
    milestones = [int(m * config.steps) for m in config.lr_milestones]
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, gamma=config.lr_decay)
    start = 0
    if resume is not None:
        checkpoints.load_into(net, checkpoints.load_state_dict(resume), name=config.network)
        state = load_training_state(Path(resume))
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start = int(state["step"])
        torch.set_rng_state(state["rng"])

    pool, val_pool = training_pools(config, progress and rank == 0)
    step_fn = {"dimp": dimp_step, "atom": atom_step, "siamfc": siamfc_step}[config.tracker]
    log_path = out / "log.jsonl"
    t0 = time.perf_counter()
    val: dict[str, float] = {}
    if config.feature_cache and world > 1:
        raise ValueError("feature_cache runs in one process (the cached step bypasses DistributedDataParallel)")
    loader = (cached_batches(net, pool, config, rank, start, progress and rank == 0) if config.feature_cache
              else batches(pool, config, rank, start))
    bar = tqdm(loader, desc=f"train {config.tracker}",
               disable=not progress or rank != 0, initial=start, total=config.steps)
    steps_done = start
    for step, batch in enumerate(bar, start=start):
        batch = to_device(batch, dev)
        loss, terms = step_fn(model, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        terms.update(step=step + 1, lr=scheduler.get_last_lr()[0], seconds=time.perf_counter() - t0)
        if not math.isfinite(terms["total"]):
            raise FloatingPointError(f"training diverged at step {step + 1}: {terms}")
        if rank == 0:
            bar.set_postfix(loss=f"{terms['total']:.4f}")
            if (step + 1) % config.log_every == 0:
                with log_path.open("a") as f:
                    f.write(json.dumps(terms) + "\n")
            if config.val_every and (step + 1) % config.val_every == 0 and step + 1 < config.steps:
                val = validate(model, config, val_pool)
                with log_path.open("a") as f:
                    f.write(json.dumps({"step": step + 1, **val}) + "\n")
            if config.checkpoint_every and (step + 1) % config.checkpoint_every == 0:
                save_checkpoint(model, optimizer, scheduler, step + 1, out / "checkpoint.safetensors", config,
                                {"wall_time_s": time.perf_counter() - t0, "git_commit": commit, **val})
        if callback is not None:
            callback(step + 1, terms)
        steps_done = step + 1
        if config.time_limit_s and time.perf_counter() - t0 > config.time_limit_s and steps_done < config.steps:
            if rank == 0:  # an honest early stop: logged, and the weights' metadata says how far the run got
                with log_path.open("a") as f:
                    f.write(json.dumps({"step": steps_done, "stopped_early": True,
                                        "time_limit_s": config.time_limit_s}) + "\n")
            break

    final = out / f"{config.tracker}.safetensors"
    if world > 1:  # DDP keeps the replicas identical; check it, cheaply
        checksum = torch.stack([p.detach().double().sum() for p in net.parameters()]).sum().reshape(1).to(dev)
        gathered = [torch.zeros_like(checksum) for _ in range(world)]
        dist.all_gather(gathered, checksum)
        if rank == 0:
            with log_path.open("a") as f:
                f.write(json.dumps({"step": steps_done, "rank_checksums": [float(g) for g in gathered]}) + "\n")
    if rank == 0:
        val = validate(model, config, val_pool) if config.val_sequences else {}
        with log_path.open("a") as f:
            f.write(json.dumps({"step": steps_done, "final": True, **val}) + "\n")
        save_checkpoint(model, optimizer, scheduler, steps_done, out / "checkpoint.safetensors", config,
                        {"wall_time_s": time.perf_counter() - t0, "git_commit": commit, **val})
        meta = {"architecture": config.network, "tracker": config.tracker, "config": asdict(config),
                "seed": config.seed, "git_commit": commit, "steps_done": steps_done,
                "network_options": dict(config.network_options),
                "wall_time_s": time.perf_counter() - t0, "device": str(dev), "hardware": _hardware(dev),
                "world_size": world, **init_meta, **val}
        checkpoints.save_safetensors(net.state_dict(), final, meta)
    if world > 1:
        dist.barrier()
    return final


def _init_weights_meta(path: str) -> dict[str, Any]:
    """What a warm-started run started from: the file's SHA-256 and its own metadata (empty without one)."""
    if not path:
        return {}
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return {"init_weights_sha256": digest, "init_weights_meta": checkpoints.load_checkpoint_info(path)}


def _hardware(dev: torch.device) -> str:
    """What the run trained on, for the training table (docs/training.md)."""
    if dev.type == "cuda":
        return f"{torch.cuda.get_device_name(dev)}, {os.cpu_count()} CPU cores"
    return f"CPU, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"


def _restore_grad_flags(net: nn.Module, config: TrainConfig) -> None:
    """Validation froze everything; give the trained parameters their gradients back."""
    for group in param_groups(net, config):
        for p in group["params"]:
            p.requires_grad_(True)
