"""Draw a few frames of several synthetic test sequences with their ground-truth boxes and attribute labels.

    python tools/make_benchmark_figure.py                  # figures/synthetic_benchmark.png
    python tools/make_benchmark_figure.py --recipe         # also rewrite data/synthetic_recipe.json

The figure is deterministic: the sequences are those of ``benchmark_plan('test')``, rendered with
``make_scene`` / ``render_frame`` exactly as ``dimp synth`` renders them (frames are not JPEG-compressed here).
Solid boxes mark visible targets, dashed red boxes targets that are fully occluded or out of view.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from dimp_core.data.synthetic import (  # noqa: E402
    VISIBLE_THRESHOLD,
    benchmark_plan,
    benchmark_recipe,
    make_scene,
)
from dimp_core.data.synthetic_render import render_frame, target_boxes  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def pick_frames(visible_ratio: np.ndarray, count: int) -> list[int]:
    """``count`` evenly spaced frames, with one hidden frame swapped in when the sequence has any."""
    n = len(visible_ratio)
    frames = list(np.linspace(0, n - 1, count).round().astype(int))
    hidden = np.nonzero(visible_ratio < VISIBLE_THRESHOLD)[0]
    if len(hidden):
        frames[-2] = int(hidden[len(hidden) // 2])
    return sorted(set(frames))


def make_figure(num_sequences: int, num_frames: int) -> plt.Figure:
    specs = benchmark_plan("test")[:num_sequences]
    fig, axes = plt.subplots(len(specs), num_frames, figsize=(3.2 * num_frames, 2.75 * len(specs)), squeeze=False)
    for row, spec in zip(axes, specs, strict=True):
        scene = make_scene(spec.seed, "test", spec.attributes, spec.num_frames)
        boxes = target_boxes(scene)
        ratios = np.array([render_frame(scene, t).visible_ratio for t in range(scene.num_frames)])
        for ax, t in zip(row, pick_frames(ratios, num_frames), strict=False):
            ax.imshow(render_frame(scene, t).image)
            visible = ratios[t] >= VISIBLE_THRESHOLD
            x, y, w, h = boxes[t]
            ax.add_patch(Rectangle((x, y), w, h, fill=False, lw=1.8, ec="lime" if visible else "red",
                                   ls="-" if visible else "--"))
            ax.set_title(f"frame {t + 1}" + ("" if visible else " (hidden)"), fontsize=9)
            ax.set_xlim(0, scene.image_size[0])
            ax.set_ylim(scene.image_size[1], 0)
            ax.set_xticks([])
            ax.set_yticks([])
        row[0].set_ylabel(f"{spec.name}\n" + "\n".join(a.replace("_", " ") for a in spec.attributes), fontsize=9)
    fig.suptitle("Synthetic tracking benchmark (test split): ground-truth boxes and attributes per sequence",
                 fontsize=13)
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    return fig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "figures" / "synthetic_benchmark.png")
    parser.add_argument("--sequences", type=int, default=6, help="rows: the first N test sequences")
    parser.add_argument("--frames", type=int, default=5, help="columns: frames per sequence")
    parser.add_argument("--recipe", action="store_true", help="also write data/synthetic_recipe.json")
    args = parser.parse_args()
    fig = make_figure(args.sequences, args.frames)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=72)
    if args.recipe:
        recipe = {split: benchmark_recipe(split) for split in ("test", "train", "val")}
        (REPO / "data" / "synthetic_recipe.json").write_text(json.dumps(recipe, indent=1) + "\n")


if __name__ == "__main__":
    main()
