"""Notebook 06: DiMP's offline meta-training, step by step, and the training curves.

- :func:`plot_sampling`: the causal frame sampler (:func:`~dimp_core.train.sampler.sample_causal`) on a
  sequence's timeline: which frames may be drawn (target visible), the base frame, the train and test frames;
- :func:`plot_example`: one processed example (:func:`~dimp_core.train.processing.make_example`): the train
  crops with their boxes, the test crops with their boxes and IoU-Net proposals, and the Gaussian labels;
- :func:`iterate_losses`: for one example, the losses of every filter iterate f_0 .. f_n of the model
  predictor: the learned discriminative loss L(f_i) on the train frames (what the optimiser minimises) and the
  LBHinge loss of f_i's scores on the test frames (what meta-training minimises, weighted in
  :func:`~dimp_core.train.losses.dimp_loss`); :func:`plot_iterate_losses` and :func:`plot_iterate_scores`;
- :func:`read_log`, :func:`loss_terms`, :func:`shipped_chain_log`, :func:`plot_shipped_logs`: the JSON-lines logs
  of the shipped training runs (one line per step with ``step``, ``total`` and each loss term; validation lines
  with ``val_auc``), a warm-started file's earlier runs first;
- :func:`plot_live_run`: the losses a short run reports through ``train(..., callback=...)``.

Geometry of the labels (:mod:`~dimp_core.train.processing`): label cell k of an S-pixel crop sits at patch
pixel k * stride (stride 16; 19 x 19 cells for S = 288), so a cell covers [16 k - 8, 16 k + 8) patch pixels.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from collections.abc import Sequence as SequenceOf
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from dimp_core.train.processing import Example, ProcessingParams

# --------------------------------------------------------------------------- sampling and processing


def plot_sampling(visible: np.ndarray, draws: SequenceOf[tuple[list[int], list[int]]], max_gap: int) -> Figure:
    """One row per draw of ``sample_causal``: train frames (base first) and test frames on the frame axis,
    the windows they were drawn from, and the frames where the target is hidden (never drawn)."""
    n = len(visible)
    fig = Figure(figsize=(10, 1.6 + 0.45 * len(draws)), layout="constrained")
    ax = fig.add_subplot()
    hidden = np.flatnonzero(~np.asarray(visible, dtype=bool))
    for k, t in enumerate(hidden):
        ax.axvspan(t - 0.5, t + 0.5, color="0.85", lw=0, label="target hidden (never drawn)" if k == 0 else "_")
    for row, (train, test) in enumerate(draws):
        y = len(draws) - 1 - row
        base = train[0]
        ax.plot([max(base - max_gap, 0) - 0.5, base - 0.5], [y + 0.3] * 2, color="C0", lw=3, alpha=0.35,
                label="train window: max_gap before the base" if row == 0 else "_")
        ax.plot([base + 0.5, min(base + max_gap, n) - 0.5], [y - 0.3] * 2, color="C3", lw=3, alpha=0.35,
                label="test window: max_gap after the base" if row == 0 else "_")
        ax.plot(train[1:], [y] * len(train[1:]), "o", color="C0", ms=7, label="train frame" if row == 0 else "_")
        ax.plot([base], [y], "*", color="C0", ms=14, mec="k", label="base (train) frame" if row == 0 else "_")
        ax.plot(test, [y] * len(test), "s", color="C3", ms=7, label="test frame" if row == 0 else "_")
    ax.set(xlim=(-0.5, n - 0.5), ylim=(-0.8, len(draws) - 0.2), xlabel="frame index",
           title=f"Causal sampling of train and test frames from one sequence ({n} frames, max_gap {max_gap})")
    ax.set_yticks(range(len(draws)), [f"draw {len(draws) - i}" for i in range(len(draws))])
    fig.legend(loc="outside lower center", ncol=3, fontsize=8, frameon=False)
    return fig


def label_extent(params: ProcessingParams, shape: tuple[int, int]) -> tuple[float, float, float, float]:
    """imshow ``extent`` of a (h, w) label grid in patch pixels (cell k at pixel k * stride)."""
    s = params.feature_stride
    return -s / 2, shape[1] * s - s / 2, shape[0] * s - s / 2, -s / 2


def _image(patch: torch.Tensor) -> np.ndarray:
    """(3, S, S) float in [0, 255] -> (S, S, 3) in [0, 1] for imshow."""
    return (patch.permute(1, 2, 0).numpy() / 255.0).clip(0, 1)


def _rect(ax: Any, box: Any, colour: str, label: str = "_", lw: float = 2.0, style: str = "-") -> None:
    x, y, w, h = (float(v) for v in box)
    ax.add_patch(Rectangle((x, y), w, h, fill=False, ec=colour, lw=lw, ls=style, label=label))


def plot_example(example: Example, params: ProcessingParams, train_ids: SequenceOf[int] | None = None,
                 test_ids: SequenceOf[int] | None = None) -> Figure:
    """Row 1: the train crops and boxes; row 2: the test crops, boxes and proposals (colour = IoU with the box);
    row 3: the test labels, a Gaussian on the score grid peaked at the box centre, over the test crop."""
    n_train, n_test = len(example.train_images), len(example.test_images)
    cols = max(n_train, n_test)
    fig = Figure(figsize=(3.2 * cols + 0.6, 10.2), layout="constrained")
    axes = fig.subplots(3, cols, squeeze=False)
    size = params.output_size
    for i in range(cols):
        ax = axes[0, i]
        if i < n_train:
            ax.imshow(_image(example.train_images[i]))
            _rect(ax, example.train_boxes[i], "lime", "target box")
            frame = f" (frame {train_ids[i]})" if train_ids is not None else ""
            ax.set_title(("train crop 1 = base" if i == 0 else f"train crop {i + 1}") + frame, fontsize=9)
        else:
            ax.axis("off")
    for i in range(cols):
        for row in (1, 2):
            ax = axes[row, i]
            if i >= n_test:
                ax.axis("off")
                continue
            ax.imshow(_image(example.test_images[i]), alpha=1.0 if row == 1 else 0.45)
            _rect(ax, example.test_boxes[i], "lime", "target box")
            if row == 1:
                for p, q in zip(example.test_proposals[i], example.proposal_iou[i], strict=True):
                    iou = (float(q) + 1) / 2  # the target is 2 IoU - 1
                    _rect(ax, p, _iou_colour(iou), lw=1.0)
                frame = f" (frame {test_ids[i]})" if test_ids is not None else ""
                ax.set_title(f"test crop {i + 1}{frame}: box and proposals", fontsize=9)
            else:
                label = example.test_labels[i].numpy()
                faint = np.ma.masked_less(label, 0.02)  # transparent where the label is ~0
                shown = ax.imshow(faint, extent=label_extent(params, label.shape), cmap="plasma", alpha=0.85,
                                  vmin=0, vmax=1, interpolation="nearest")
                ax.set_title(f"test label {i + 1}: Gaussian, {label.shape[0]}x{label.shape[1]} cells", fontsize=9)
    fig.colorbar(shown, ax=axes[2, :].tolist(), fraction=0.03, label="label y (shown where > 0.02)")
    for ax in axes.flat:
        ax.set_xlim(-0.5, size - 0.5)
        ax.set_ylim(size - 0.5, -0.5)
        ax.set_xlabel("x (crop pixels)", fontsize=8)
        ax.set_ylabel("y (crop pixels)", fontsize=8)
        ax.tick_params(labelsize=7)
    handles = [Rectangle((0, 0), 1, 1, fill=False, ec="lime", lw=2, label="target box")]
    handles += [Rectangle((0, 0), 1, 1, fill=False, ec=_iou_colour(v), lw=1, label=f"proposal, IoU {v:.1f}")
                for v in (0.2, 0.5, 0.9)]
    fig.legend(handles=handles, loc="outside lower center", ncol=4, fontsize=8, frameon=False)
    fig.suptitle(f"One training example: {n_train} train and {n_test} test crops of {size} px "
                 f"(side {params.search_area_factor:g} sqrt(w h) of the jittered box)", fontsize=11)
    return fig


def _iou_colour(iou: float) -> tuple[float, float, float, float]:
    from matplotlib import colormaps

    return colormaps["cool"](float(np.clip(iou, 0, 1)))


def label_peak_error(example: Example, params: ProcessingParams) -> float:
    """Largest distance, in crop pixels, between a test label's peak cell and its box centre (< one stride
    when the labels sit where the boxes are)."""
    errors = []
    for label, box in zip(example.test_labels, example.test_boxes, strict=True):
        row, col = np.unravel_index(int(torch.argmax(label)), label.shape)
        centre = box[:2] + box[2:] / 2
        peak = torch.tensor([col, row], dtype=centre.dtype) * params.feature_stride
        errors.append(float(torch.linalg.norm(peak - centre)))
    return max(errors)


# --------------------------------------------------------------------------- losses over the optimiser iterations


@torch.no_grad()
def iterate_losses(net: Any, example: Example, num_iter: int | None = None) -> dict[str, Any]:
    """Run the model predictor on one example and score every iterate.

    Returns:
        ``train``: [L(f_0), ..., L(f_n)], the learned discriminative loss on the train frames;
        ``test``: [LBHinge(x_test * f_i, y_test)] for i = 0 .. n, the meta-training loss of each iterate;
        ``scores``: the (Ho, Wo) score maps of the first test frame, one per iterate;
        ``label``: that frame's (Ho, Wo) Gaussian label.
    """
    from dimp_core.nets.dimpnet import normalize_image
    from dimp_core.train.losses import lb_hinge

    def features(images: torch.Tensor) -> torch.Tensor:  # (N, 3, S, S) -> (N, 1, C, H, W)
        return net.classification_features(net.extract_backbone_features(normalize_image(images)), num_sequences=1)

    net.eval()
    x_train, x_test = features(example.train_images), features(example.test_images)
    trace = net.classifier.predict_filter(x_train, example.train_boxes[:, None], num_iter=num_iter,
                                          compute_losses=True)
    labels = example.test_labels[:, None]  # (Nte, 1, Ho, Wo)
    scores = [net.classifier.classify(f, x_test) for f in trace.iterates]  # each (Nte, 1, Ho, Wo)
    return {"train": [float(v) for v in trace.losses], "test": [float(lb_hinge(s, labels)) for s in scores],
            "scores": [s[0, 0].numpy() for s in scores], "label": labels[0, 0].numpy()}


def plot_iterate_losses(curves: Mapping[str, Mapping[str, SequenceOf[float]]]) -> Figure:
    """Left: the train-frame loss L(f_i) per iterate; right: the test-frame LBHinge per iterate; one line per
    network (e.g. trained vs untrained), each averaged over examples; a curve may have only one of the two
    keys (e.g. the test losses read from a training log)."""
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    axes = fig.subplots(1, 2)
    for k, (name, curve) in enumerate(curves.items()):
        for ax, key in zip(axes, ("train", "test"), strict=True):
            if key in curve:
                values = np.asarray(curve[key])
                ax.plot(range(len(values)), values, "o-", color=f"C{k}", lw=2, label=name)
    axes[0].set(title="Train frames: learned loss L(f_i) the optimiser minimises", ylabel="L(f_i)")
    axes[1].set(title="Test frames: LBHinge of x_test * f_i (meta-training loss)", ylabel="LBHinge")
    for ax in axes:
        ax.set_xlabel("filter iterate i (0 = initialiser's f_0)")
        _log_axis(ax)
        ax.grid(True, alpha=0.4)
        ax.legend(fontsize=8)
    return fig


def _log_axis(ax: Any) -> None:
    """Log-scaled y with plain numbers (0.002, not 2 x 10^-3): every decade labelled, and 2 and 5 in between."""
    from matplotlib.ticker import FuncFormatter

    def minor(v: float, _: Any) -> str:
        leading = v / 10 ** math.floor(math.log10(v)) if v > 0 else 0
        return f"{v:g}" if round(leading, 6) in (2.0, 5.0) else ""

    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(FuncFormatter(minor))
    ax.tick_params(axis="y", which="minor", labelsize=7)


def iterate_log_means(steps: SequenceOf[Mapping[str, float]]) -> list[float]:
    """Mean over log entries of the test loss of each iterate (``clf_iter0`` .. ``clf_iterN``, unweighted)."""
    keys = sorted((k for k in steps[0] if k.startswith("clf_iter") and k[8:].isdigit()), key=lambda k: int(k[8:]))
    if not keys:
        raise ValueError("the log entries have no per-iterate losses (clf_iter0, clf_iter1, ...)")
    return [float(np.mean([e[k] for e in steps])) for k in keys]


def plot_iterate_scores(result: Mapping[str, Any], title: str) -> Figure:
    """The test label and the score map of every iterate f_0 .. f_n on that test frame, one colour scale."""
    maps = [result["label"], *result["scores"]]
    names = ["label y"] + [f"f_{i}" for i in range(len(result["scores"]))]
    vmax = max(float(np.max(m)) for m in maps)
    vmin = min(0.0, min(float(np.min(m)) for m in result["scores"]))
    fig = Figure(figsize=(1.8 * len(maps) + 1.0, 2.5), layout="constrained")
    axes = fig.subplots(1, len(maps))
    for ax, m, name in zip(axes, maps, names, strict=True):
        shown = ax.imshow(m, cmap="viridis", vmin=vmin, vmax=vmax, interpolation="nearest")
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0].set_ylabel("score cells", fontsize=8)
    fig.colorbar(shown, ax=list(axes), fraction=0.015, label="score")
    fig.suptitle(title, fontsize=10)
    return fig


# --------------------------------------------------------------------------- training logs


def read_log(path: str | Path) -> tuple[list[dict[str, float]], list[dict[str, float]]]:
    """A training log as (step entries with ``total``, validation entries with ``val_auc``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"training log {path} not found")
    entries = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    steps = [e for e in entries if "total" in e]
    if not steps:
        raise ValueError(f"{path} has no step entries (lines with a 'total' loss)")
    return steps, [e for e in entries if "val_auc" in e]


def shipped_chain_log(name: str, weights_dir: str | Path) -> tuple[list[dict[str, float]], list[dict[str, float]],
                                                                   list[int]]:
    """The log of every training run behind ``<weights_dir>/<name>.safetensors``, first run first, as one
    (steps, validation entries, steps at which a warm start began).

    The last run's log lies beside the weights (``<name>.log.jsonl``); an earlier run of the chain
    (:func:`~dimp_core.checkpoints.training_runs`) is found in ``<weights_dir>/../runs/`` as the ``*.meta.json``
    holding the same configuration, commit and wall time, next to its ``*.log.jsonl``. Each run numbers its steps
    from 1; here they continue across runs.
    """
    from dimp_core.checkpoints import load_checkpoint_info, training_runs

    weights_dir = Path(weights_dir)
    runs_dir = weights_dir.parent / "runs"
    chain = training_runs(load_checkpoint_info(weights_dir / f"{name}.safetensors"))
    key = ("config", "git_commit", "wall_time_s")
    recorded = {path: json.loads(path.read_text()) for path in sorted(runs_dir.glob("*.meta.json"))}
    paths = []
    for run in chain[:-1]:
        found = [p for p, m in recorded.items() if all(m.get(k) == run.get(k) for k in key)]
        if not found:
            raise FileNotFoundError(f"no log in {runs_dir} for the {run['config']['steps']}-step "
                                    f"run that {name} was warm-started from (commit {run.get('git_commit')})")
        paths.append(found[0].with_name(found[0].name.replace(".meta.json", ".log.jsonl")))
    paths.append(weights_dir / f"{name}.log.jsonl")
    steps: list[dict[str, float]] = []
    val: list[dict[str, float]] = []
    starts: list[int] = []
    for path in paths:
        offset = steps[-1]["step"] if steps else 0
        if steps:
            starts.append(offset)
        run_steps, run_val = read_log(path)
        steps += [{**e, "step": e["step"] + offset} for e in run_steps]
        val += [{**e, "step": e["step"] + offset} for e in run_val]
    return steps, val, starts


def loss_terms(steps: SequenceOf[Mapping[str, float]]) -> list[str]:
    """The loss terms a log's step entries carry: every number but ``step``, ``lr``, ``seconds`` and the
    per-iterate ``clf_iterN``; ``total`` first, and left out when it is the sum of a single term."""
    skip = {"step", "lr", "seconds"}
    keys = [k for k, v in steps[0].items() if isinstance(v, (int, float)) and k not in skip
            and not (k.startswith("clf_iter") and k[8:].isdigit())]
    others = [k for k in keys if k != "total"]
    return others if len(others) == 1 else ["total", *others]


def moving_average(values: SequenceOf[float], window: int) -> np.ndarray:
    """Mean over the last ``window`` values at each point (fewer at the start).

    >>> moving_average([1, 2, 3, 4], 2).tolist()
    [1.0, 1.5, 2.5, 3.5]
    """
    v = np.asarray(values, dtype=np.float64)
    c = np.concatenate([[0.0], np.cumsum(v)])
    i = np.arange(1, len(v) + 1)
    lo = np.maximum(i - window, 0)
    return (c[i] - c[lo]) / (i - lo)


def plot_log(ax: Any, steps: list[dict[str, float]], val: list[dict[str, float]], terms: SequenceOf[str],
             title: str, window: int = 25, starts: SequenceOf[int] = ()) -> None:
    """Loss terms (raw, faint; moving average, solid) against the step, validation AUC on a second axis;
    dotted lines where a warm-started run began (``starts``)."""
    x = [e["step"] for e in steps]
    for k, start in enumerate(starts):
        ax.axvline(start, color="0.4", ls=":", lw=1.5, label="warm start: next run" if k == 0 else None)
    for k, term in enumerate(terms):
        y = [e[term] for e in steps]
        ax.plot(x, y, color=f"C{k}", lw=0.6, alpha=0.25)
        ax.plot(x, moving_average(y, window), color=f"C{k}", lw=2, label=f"{term} (mean of {window})")
    ax.set(xlabel="optimiser step", ylabel="loss", title=title)
    _log_axis(ax)
    ax.grid(True, alpha=0.4)
    lines, labels = ax.get_legend_handles_labels()
    if val:
        twin = ax.twinx()
        twin.plot([e["step"] for e in val], [e["val_auc"] for e in val], "D--", color="k", ms=7,
                  label="validation AUC (%)")
        twin.set_ylabel("validation AUC (%)")
        twin.set_ylim(0, 100)
        more = twin.get_legend_handles_labels()
        lines, labels = lines + more[0], labels + more[1]
    ax.legend(lines, labels, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, frameon=False)


def plot_shipped_logs(logs: Mapping[str, tuple[list[dict[str, float]], list[dict[str, float]], list[int]]],
                      terms: Mapping[str, SequenceOf[str]], window: int = 25) -> Figure:
    """One panel per shipped file (``logs``: name -> :func:`shipped_chain_log`), the given loss terms of each."""
    fig = Figure(figsize=(6.2 * len(logs), 5.0), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(logs)))
    for ax, (name, (steps, val, starts)) in zip(axes, logs.items(), strict=True):
        runs = f"{len(starts) + 1} runs" if starts else "one run"
        plot_log(ax, steps, val, terms[name], f"{name}: {runs}, {len(steps)} steps", window, starts)
    return fig


def plot_live_run(history: SequenceOf[Mapping[str, float]], terms: SequenceOf[str]) -> Figure:
    """Left: the loss terms of a short run per step; right: the test-frame LBHinge of each filter iterate
    (``clf_iter0`` .. ``clf_iterN``) at the first and the last step."""
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    axes = fig.subplots(1, 2)
    x = [h["step"] for h in history]
    for k, term in enumerate(terms):
        axes[0].plot(x, [h[term] for h in history], "o-", color=f"C{k}", ms=4, lw=1.8, label=term)
    axes[0].set(xlabel="optimiser step", ylabel="loss", title=f"Live run: {len(history)} steps")
    for h, style in ((history[0], "o--"), (history[-1], "s-")):
        values = iterate_log_means([h])
        axes[1].plot(range(len(values)), values, style, lw=2, label=f"step {h['step']}")
    axes[1].set(xlabel="filter iterate i", ylabel="test LBHinge (unweighted)",
                title="Loss of each iterate f_i on the test frames, one batch")
    for ax in axes:
        _log_axis(ax)
        ax.grid(True, alpha=0.4)
        ax.legend(fontsize=8)
    return fig
