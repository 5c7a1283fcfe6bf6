"""Does DiMP's model predictor make use of more train frames than it was trained with?

Usage (from the repository root)::

    python experiments/train_frames_probe.py [--examples 600] [--weights data/weights/dimp.safetensors]
                                       [--json experiments/train_frames_probe.json]

The predictor is trained on sets of 3 train frames (the reference's ``num_train_frames``) but tracks with a memory
of up to 50 samples. This probe holds the shipped ``dimp`` weights (or ``--weights``) fixed and asks how the filter
it predicts from k train frames classifies 3 later test frames, for k = 1, 2, 3, 5, 8, 16. Each example is drawn
once with 16 train frames (``sample_causal``: the base frame and 15 earlier ones within 30 frames, in random order
and drawn with replacement as in training) and processed as in training (jitter, crops, Gaussian labels); the first
k of its train frames give the k-frame filter, so every k is scored on the same test frames.
Per k, averaged over the examples:

- ``clf_final`` and ``clf_init``: the training loss of the final filter f_N (N = 5, as trained) and of the initial
  filter f_0 on the test frames (100 x LBHinge, as in the training log);
- ``peak_hit``: the share of test frames whose score maximum lies within one cell of the label's peak;
- ``clf_deep`` and ``peak_hit_deep``: the same for the filter after 30 steps, near the minimum of the learned
  objective on the k frames: whether the objective itself, not the few steps, gains from more frames.

Differences against k = 3 come with 95 % paired bootstrap intervals over the examples
(``dimp_core.evaluation.significance``). The sequences are synthetic ``val``-split sequences (photos no training run
saw), one example per sequence; ``--seed`` fixes the sampled frames and the processing. Analysis only.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from torch import Tensor

ROOT = Path(__file__).resolve().parents[1]
FRAME_COUNTS = (1, 2, 3, 5, 8, 16)
REFERENCE_K = 3  # the reference's num_train_frames
DEEP_STEPS = 30  # optimiser steps of the converged filter (the trained predictor runs 5)


def probe(examples: int, seed: int, weights: Path, frames: int = 32) -> tuple[dict[str, np.ndarray], int]:
    """Per-example ``clf_init``, ``clf_final``, ``clf_deep``, ``peak_hit`` and ``peak_hit_deep`` for each k (arrays
    of shape (used, len(FRAME_COUNTS))), and how many of the ``examples`` sequences could not give 16 train and
    3 test frames (skipped). The sequences are the training pools' validation sequences (``pool_seeds('val')``,
    the same for every ``seed``), rendered one at a time; ``seed`` drives the frame sampling and processing."""
    import torch
    from tqdm import tqdm

    from dimp_core.data.synthetic import make_sequence
    from dimp_core.nets import build_network
    from dimp_core.nets.dimpnet import normalize_image
    from dimp_core.train.losses import lb_hinge
    from dimp_core.train.pool import pool_seeds
    from dimp_core.train.processing import ProcessingParams, make_example
    from dimp_core.train.sampler import NoExample, sample_causal

    torch.set_num_threads(1)
    net = build_network("dimp", weights=weights).eval()
    params = ProcessingParams()
    out: dict[str, list[list[float]]] = {name: [] for name in ("clf_init", "clf_final", "clf_deep", "peak_hit",
                                                                "peak_hit_deep")}
    skipped = 0
    cl = net.config.classification_layer
    for i, sequence_seed in enumerate(tqdm(pool_seeds("val", examples, seed), desc="examples")):
        sequence = make_sequence(sequence_seed, "val", num_frames=frames, image_size=(480, 360))
        rng = np.random.default_rng([seed, i])
        try:
            train_ids, test_ids = sample_causal(sequence.visible, max(FRAME_COUNTS), 3, 30, rng)
        except NoExample:  # the target hidden where the sampler needs it (training redraws such sequences)
            skipped += 1
            continue
        ex = make_example([sequence.frames[j] for j in train_ids], sequence.boxes[train_ids],
                          [sequence.frames[j] for j in test_ids], sequence.boxes[test_ids], params, rng)
        with torch.inference_mode():
            x_train = net.classifier.extract_features(
                net.extract_backbone_features(normalize_image(ex.train_images))[cl], 1)  # (16, 1, C, H, W)
            x_test = net.classifier.extract_features(
                net.extract_backbone_features(normalize_image(ex.test_images))[cl], 1)  # (3, 1, C, H, W)
            label = ex.test_labels[:, None]  # (3, 1, Ho, Wo)
            for values in out.values():
                values.append([])
            for k in FRAME_COUNTS:
                boxes = ex.train_boxes[:k, None]  # (k, 1, 4)
                trace = net.classifier.predict_filter(x_train[:k], boxes, compute_losses=False)
                deep = net.classifier.filter_optimizer(trace.filter, x_train[:k], boxes, compute_losses=False,
                                                       num_iter=DEEP_STEPS - len(trace.iterates) + 1).filter
                filters = {"init": trace.iterates[0], "final": trace.filter, "deep": deep}
                for name, f in filters.items():
                    scores = net.classifier.classify(f, x_test)  # (3, 1, Ho, Wo)
                    out[f"clf_{name}"][-1].append(100 * float(lb_hinge(scores, label)))
                    if name != "init":
                        hit_name = "peak_hit" if name == "final" else "peak_hit_deep"
                        out[hit_name][-1].append(float(np.mean(peak_hits(scores[:, 0], label[:, 0]))))
    return {name: np.array(values) for name, values in out.items()}, skipped


def peak_hits(scores: Tensor, label: Tensor) -> list[bool]:
    """Per test frame: is the score maximum within one cell (Chebyshev distance) of the label's peak?
    ``scores`` and ``label`` are (N, Ho, Wo) tensors."""
    hits = []
    for s, y in zip(scores, label, strict=True):
        width = s.shape[-1]
        ps, py = divmod(int(s.argmax()), width), divmod(int(y.argmax()), width)
        hits.append(max(abs(ps[0] - py[0]), abs(ps[1] - py[1])) <= 1)
    return hits


def summarise(per_example: dict[str, np.ndarray], seed: int) -> dict[str, object]:
    """Means per k and differences against k = 3 with paired bootstrap intervals."""
    from dimp_core.evaluation.significance import paired_bootstrap

    ref = FRAME_COUNTS.index(REFERENCE_K)
    rows = []
    for col, k in enumerate(FRAME_COUNTS):
        row: dict[str, object] = {"k": k}
        for name, values in per_example.items():
            row[name] = float(values[:, col].mean())
            if col != ref:  # paired over the examples, as the benchmark tables are over sequences
                d = paired_bootstrap(dict(enumerate(values[:, col])), dict(enumerate(values[:, ref])), seed=seed)
                row[f"{name}_vs_{REFERENCE_K}"] = [d.mean, d.low, d.high]
        rows.append(row)
    return {"examples": int(next(iter(per_example.values())).shape[0]), "rows": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--weights", default="data/weights/dimp.safetensors", help="a dimp weights file")
    parser.add_argument("--json", default=str(ROOT / "experiments/train_frames_probe.json"))
    args = parser.parse_args(argv)
    per_example, skipped = probe(args.examples, args.seed, ROOT / args.weights)
    result = {"weights": args.weights, "split": "val", "seed": args.seed,
              "frame_counts": list(FRAME_COUNTS), "skipped": skipped, **summarise(per_example, args.seed)}
    Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    for row in result["rows"]:
        print(" ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()
                       if not isinstance(v, list)))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
