"""Batched multi-target throughput of DiMP's network: one frame's network work for N targets in one batch.

What a lab's batched evaluation would run per frame for N independent targets (or videos): N search patches
through the backbone and heads at once, N filters scoring their own features (``apply_filter`` is grouped per
sequence), N targets' IoU features modulated by their own vectors, and the 5 refinement steps of all
N x 10 boxes in one batched call per step, then one copy of the scores and boxes to the host. On CUDA the step
is replayed as a CUDA graph when capture works (:class:`~dimp_core.profiling.accel.GraphedCall`), as the
tracker's default path is.

This is the network part only, not a batched tracker: localisation, the sample memory and the optimiser
(every 20th frame) stay per target, so :func:`batched_network`'s FPS per target is an upper bound on batched
tracking. The inputs are one real search patch and its target, repeated N times (the time does not depend on
the pixels).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from dimp_core.geometry import sample_patch
from dimp_core.profiling import accel
from dimp_core.profiling.memory import MiB
from dimp_core.trackers.refinement import jittered_boxes
from dimp_core.trackers.target import iou_test_features

__all__ = ["batched_network"]


def _step_fn(tracker: Any, n: int) -> Any:
    """The batched step: (N, 3, S, S) normalised patches, (N, P, 4) boxes -> scores, refined boxes, their IoU."""
    net, p = tracker.net, tracker.params
    filters = tracker.filter.expand(n, *tracker.filter.shape[1:]).contiguous()  # (N, C, k, k)
    modulation = tuple(m.expand(n, -1).contiguous() for m in tracker.modulation)  # 2 x (N, D)

    def step(images: Tensor, boxes: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        with accel.autocast(tracker.device, p.autocast):
            feat = net.extract_backbone_features(images)
            x = net.classification_features(feat, num_sequences=n)  # (1, N, C, h, w)
            iou_feat = iou_test_features(net, feat)
        scores = net.classifier.classify(filters, x.float())  # (1, N, H, W)
        modulated = net.bb_regressor.modulate(modulation, (iou_feat[0].float(), iou_feat[1].float()))
        out, iou, step_length = boxes, boxes.new_zeros(boxes.shape[:2]), p.refinement.box_refinement_step_length
        for _ in range(p.refinement.box_refinement_iter):
            iou, grad = net.bb_regressor.predict_iou_and_box_grad(modulated, out)  # (N, P), (N, P, 4)
            out = out + step_length * grad * out[:, :, 2:].repeat(1, 1, 2)
            step_length *= p.refinement.box_refinement_step_decay
        return scores, out, iou

    return step


def batched_network(sizes: Sequence[int] = (1, 8, 32), frame: np.ndarray | None = None,
                    box: Sequence[float] | None = None, device: str | None = None, weights: str | None = None,
                    repeats: int = 10, warmup: int = 2, use_graphs: bool = True) -> list[dict[str, Any]]:
    """Time the batched network step of ``dimp`` (defaults) for each N in ``sizes``; one record per N.

    ``frame``/``box``: the real frame and target the patch is cut from (default: the first frame of
    ``bikes-cyclist``). Each record: N, ms per batched step (median over ``repeats``), FPS per target
    (N / step), whether a CUDA graph replayed it, and the peak CUDA allocation.
    """
    from dimp_core.trackers import build_tracker

    if frame is None or box is None:
        from dimp_core.profiling.bench import real_clips

        clip = real_clips(("bikes-cyclist",), frames=2)[0]
        frame, box = clip.frames[0], clip.boxes[0]
    tracker = build_tracker("dimp", device=device, weights=weights, cuda_graphs=False)
    dev = tracker.device
    tracker.init(frame, box)
    records = []
    with tracker._grad_off():
        im = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1).to(dev)
        state, size = tracker.state, tracker.params.image_sample_size
        patch, patch_frame = sample_patch(im, (float(state.center[0]), float(state.center[1])), state.scale, size)
        start = jittered_boxes(patch_frame.box_to_patch(state.box()).float(), tracker.params.refinement,
                               torch.Generator().manual_seed(0)).to(dev)  # (P, 4)
        for n in sizes:
            if n < 1:
                raise ValueError(f"batch sizes must be at least 1, got {n}")
            images = tracker._prepare(patch[None].expand(n, -1, -1, -1).contiguous())
            boxes = start[None].expand(n, -1, -1).contiguous()
            fn, graphed, note = _step_fn(tracker, n), False, ""
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
                torch.cuda.reset_peak_memory_stats(dev)
                if use_graphs and accel.cuda_graphs_supported(dev):
                    try:
                        fn, graphed = accel.GraphedCall(fn, [images, boxes]), True
                    except Exception as err:  # noqa: BLE001 - capture unavailable: time it eagerly
                        note = f"CUDA graph capture failed ({err!r}); eager"[:300]
            times = []
            for r in range(warmup + repeats):
                t0 = time.perf_counter()
                outputs = fn(images, boxes)  # scores, refined boxes, their IoU
                _host = [t.cpu() for t in outputs]  # the per-target logic needs them on the host
                if r >= warmup:
                    times.append(time.perf_counter() - t0)
            ms = float(np.median(times) * 1000)
            records.append({"n": n, "ms_per_step": ms, "ms_p90": float(np.percentile(times, 90) * 1000),
                            "fps_per_target": 1000 * n / ms, "steps_per_s": 1000 / ms, "cuda_graph": graphed,
                            "boxes_per_target": int(start.shape[0]), "note": note,
                            "cuda_max_allocated_mb": (torch.cuda.max_memory_allocated(dev) / MiB
                                                      if dev.type == "cuda" else None)})
    return records
