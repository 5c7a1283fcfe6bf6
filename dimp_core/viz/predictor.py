"""DiMP's model predictor on a real first frame, step by step, and its solvers compared (notebook 02).

:func:`first_frame` initialises a :class:`~dimp_core.trackers.dimp.DiMPTracker` on a frame and keeps what its
model predictor worked on: the train samples' features x_j and boxes (13 augmented patches + 2 dropout
copies), the identity patch, and the :class:`~dimp_core.nets.model_predictor.PredictorTrace` (f0, every
steepest-descent iterate, the loss and the step length alpha per iteration). :func:`compare_solvers` then
minimises the same objective with fixed-step gradient descent and Gauss-Newton + CG
(:mod:`dimp_core.solvers`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from torch import Tensor

from dimp_core.geometry import sample_patch
from dimp_core.nets.dimpnet import normalize_image
from dimp_core.nets.model_predictor import PredictorTrace, SteepestDescentGN, apply_filter
from dimp_core.solvers import (
    Objective,
    SolverRun,
    gauss_newton_cg,
    gradient_descent,
    largest_eigenvalue,
    steepest_descent,
    with_overrides,
)
from dimp_core.trackers.dimp import DiMPTracker
from dimp_core.trackers.target import first_frame_samples
from dimp_core.viz.figures import GT_COLOR
from dimp_core.viz.frames import draw_box

SCORE_CMAP = "viridis"


@dataclass(frozen=True)
class FirstFrame:
    """What DiMP's model predictor learned the target filter from, on the first frame.

    Attributes:
        feat: (N, 1, C, H, W) classification features x_j of the N train samples (sample 0: the identity patch).
        boxes: (N, 1, 4) the target box in each sample, patch pixels (x, y, w, h).
        patch: (P, P, 3) uint8, the identity patch (P = 288).
        trace: the tracker's ``init_trace``: f0, the iterates, the losses and alphas.
        optimizer: the tracker's (trained) :class:`SteepestDescentGN`.
    """

    feat: Tensor
    boxes: Tensor
    patch: np.ndarray
    trace: PredictorTrace
    optimizer: SteepestDescentGN

    @property
    def f0(self) -> Tensor:
        """(1, C, k, k) the initialiser's filter."""
        return self.trace.iterates[0]

    def objective(self, optimizer: SteepestDescentGN | None = None) -> Objective:
        """L(f) on these samples, with the learned loss of ``optimizer`` (default: the tracker's)."""
        return Objective.from_predictor(optimizer or self.optimizer, self.feat, self.boxes,
                                        filter_size=self.f0.shape[-1])

    def scores(self, f: Tensor, feat: Tensor | None = None) -> np.ndarray:
        """(Ho, Wo) scores of filter ``f`` on the identity sample (or on ``feat`` (1, 1, C, H, W))."""
        with torch.no_grad():
            return apply_filter(self.feat[:1] if feat is None else feat, f)[0, 0].numpy()


def first_frame(tracker: DiMPTracker, image: np.ndarray, box: np.ndarray) -> FirstFrame:
    """``tracker.init(image, box)`` and what its model predictor saw (its sample memory right after init)."""
    if not isinstance(tracker, DiMPTracker):
        raise TypeError(f"need a DiMP tracker (build_tracker('dimp')), got {type(tracker).__name__}")
    tracker.init(image, box)
    samples, boxes, _ = tracker.memory.stored()  # the first-frame samples, in the order init used them
    patches, _ = first_frame_samples(torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1), tracker.state,
                                     tracker.params.image_sample_size, tracker.params.augmentation,
                                     torch.Generator().manual_seed(0))
    patch = patches[0].permute(1, 2, 0).clamp(0, 255).round().to(torch.uint8).numpy()  # identity sample
    return FirstFrame(samples[:, None].cpu(), boxes[:, None].cpu(), patch, tracker.init_trace,
                      tracker.net.classifier.filter_optimizer)


def search_features(tracker: DiMPTracker, image: np.ndarray) -> tuple[Tensor, np.ndarray]:
    """Features (1, 1, C, H, W) and patch (P, P, 3) of ``image`` cropped where the tracker's state is now
    (after :func:`first_frame`: the first-frame target region), as ``track`` would crop it."""
    p, state = tracker.params, tracker.state
    patch, _ = sample_patch(torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1),
                            (float(state.center[0]), float(state.center[1])), state.scale, p.image_sample_size)
    with torch.no_grad():
        feat = tracker.net.extract_backbone_features(normalize_image(patch[None].to(tracker.device)))
        x = tracker.net.classification_features(feat, num_sequences=1)
    return x.cpu(), patch.permute(1, 2, 0).clamp(0, 255).round().to(torch.uint8).numpy()


# --------------------------------------------------------------------------- figures of the tracker's own run


def _score_panel(ax: Axes, scores: np.ndarray, title: str, vmin: float, vmax: float, centre: tuple[float, float]):
    image = ax.imshow(scores, cmap=SCORE_CMAP, vmin=vmin, vmax=vmax)
    ax.plot(*centre, "o", markerfacecolor="none", markeredgecolor="white", markersize=9, markeredgewidth=1)
    ax.set(xticks=[], yticks=[], title=title)
    return image


def target_cell(box: Tensor, stride: int = 16) -> tuple[float, float]:
    """(col, row) of the target centre on the score grid (the model predictor's c_j for an even filter)."""
    b = box.reshape(4).tolist()
    return ((b[0] + b[2] / 2) / stride, (b[1] + b[3] / 2) / stride)


def plot_iterate_scores(first: FirstFrame, test: tuple[Tensor, np.ndarray] | None = None,
                        test_label: str = "a later frame") -> Figure:
    """The score map x * f_i of the initial filter and of every steepest-descent iterate: on the identity
    train sample (top) and, with ``test`` = :func:`search_features` of a later frame, on that frame."""
    iterates = first.trace.iterates
    rows = [("train frame", first.feat[:1], first.patch)] + ([(test_label, test[0], test[1])] if test else [])
    maps = [[first.scores(f, feat) for f in iterates] for _, feat, _ in rows]
    vmin, vmax = min(m.min() for r in maps for m in r), max(m.max() for r in maps for m in r)
    ncol = len(iterates) + 1
    fig = Figure(figsize=(1.55 * ncol + 0.6, 1.9 * len(rows) + 0.7), layout="constrained")
    axes = fig.subplots(len(rows), ncol, squeeze=False)
    centre = target_cell(first.boxes[0])
    for r, ((name, _, patch), row_maps) in enumerate(zip(rows, maps, strict=True)):
        axes[r, 0].imshow(patch)
        draw_box(axes[r, 0], first.boxes[0, 0].numpy(), GT_COLOR)
        axes[r, 0].set(xticks=[], yticks=[], title=name, ylabel="scores x * f")
        for i, m in enumerate(row_maps):
            image = _score_panel(axes[r, i + 1], m, "f0 (init)" if i == 0 else f"f{i}", vmin, vmax, centre)
    fig.colorbar(image, ax=axes[:, -1].tolist(), label="score", shrink=0.9)
    fig.suptitle("Score maps of the initial filter f0 and of each steepest-descent iterate "
                 "(circle: first-frame target centre; green box: first-frame target)")
    return fig


def plot_trace(trace: PredictorTrace, beta: float) -> Figure:
    """Loss L(f_i) per iterate and the Gauss-Newton step length alpha_i per iteration (and beta * alpha_i)."""
    losses = [float(v) for v in trace.losses]
    alphas = [float(a[0]) for a in trace.alphas]
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    ax1.plot(range(len(losses)), losses, "o-", color="C0", label="L(f_i)")
    ax1.set(xlabel="iterate i (0 = initialiser)", ylabel="loss L(f_i)", ylim=(0, None),
            title="Discriminative loss per steepest-descent iterate")
    ax1.grid(True, alpha=0.3)
    ax1.legend()
    steps = range(1, len(alphas) + 1)
    ax2.plot(steps, alphas, "o-", color="C1", label="alpha_i (Gauss-Newton)")
    ax2.plot(steps, [beta * a for a in alphas], "s--", color="C2", label=f"beta * alpha_i (learned beta = {beta:.2f})")
    ax2.set(xlabel="iteration i", ylabel="step length", title="Step length per iteration")
    ax2.grid(True, alpha=0.3)
    ax2.legend()
    for ax in (ax1, ax2):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return fig


# --------------------------------------------------------------------------- solvers compared


@dataclass(frozen=True)
class SolverComparison:
    """Steepest descent, fixed-step gradient descent and Gauss-Newton + CG on one objective.

    Attributes:
        reg, mask_factor, num_iter: the settings (lambda, target-mask logit factor gamma, iterations).
        lambda_max: the largest eigenvalue of the Gauss-Newton matrix at f0 (the fixed steps are c / lambda_max).
        sd: DiMP's steepest descent; gd: one run per fixed step; cg: Gauss-Newton + CG with ``num_iter`` CG steps
        in all; solution: Gauss-Newton + CG run to convergence (the reference minimum).
        scores: final score map of each on the identity sample, by name.
    """

    reg: float
    mask_factor: float
    num_iter: int
    lambda_max: float
    sd: SolverRun
    gd: list[SolverRun]
    cg: SolverRun
    solution: SolverRun
    scores: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def best_loss(self) -> float:
        """The lowest loss any solver reached (the reference minimum up to CG's tolerance)."""
        return min(min(run.losses) for run in (self.sd, self.cg, self.solution, *self.gd))


def compare_solvers(first: FirstFrame, reg: float | None = None, mask_factor: float = 1.0, num_iter: int = 10,
                    step_factors: tuple[float, ...] = (0.5, 1.0, 1.9), cg_steps_per_gn: int = 5,
                    solution_iters: tuple[int, int] = (4, 10)) -> SolverComparison:
    """Run the solvers of :mod:`dimp_core.solvers` from the initialiser's f0 on the first frame's objective.

    Args:
        first: from :func:`first_frame`.
        reg: lambda (None: the learned one); mask_factor: gamma (see :func:`~dimp_core.solvers.with_overrides`).
        num_iter: iterations of steepest descent, of each gradient descent and CG steps of the compared CG run.
        step_factors: the fixed steps are eta = c / lambda_max for each c (gradient descent on the quadratic
            model converges only for c < 2).
        cg_steps_per_gn: CG steps before the signs are refrozen (Gauss-Newton outer iteration) in the CG run.
        solution_iters: (Gauss-Newton iterations, CG steps each) of the reference solution.
    """
    if num_iter < 1:
        raise ValueError(f"num_iter must be at least 1, got {num_iter}")
    optimizer = with_overrides(first.optimizer, reg, mask_factor)
    objective = first.objective(optimizer)
    f0 = first.f0
    with torch.no_grad():
        lam_max = largest_eigenvalue(objective.normal_equations(f0)[0], f0)
    sd = steepest_descent(optimizer, objective, f0, first.boxes, num_iter)
    gd = [replace(gradient_descent(objective, f0, c / lam_max, num_iter), name=f"GD, eta = {c:g} / lambda_max")
          for c in step_factors]
    num_gn = -(-num_iter // cg_steps_per_gn)
    cg = gauss_newton_cg(objective, f0, num_gn, cg_steps_per_gn)
    cg = SolverRun(f"GN + CG (signs refrozen every {cg_steps_per_gn} CG steps)", cg.iterates[:num_iter + 1],
                   cg.losses[:num_iter + 1], [])
    solution = replace(gauss_newton_cg(objective, f0, *solution_iters), name="CG solution")
    scores = {"f0 (initialiser)": first.scores(f0), f"steepest descent f{num_iter}": first.scores(sd.iterates[-1]),
              f"GD (c={step_factors[-1]:g}) f{len(gd[-1].iterates) - 1}": first.scores(gd[-1].iterates[-1]),
              "CG solution": first.scores(solution.iterates[-1])}
    return SolverComparison(float(objective.reg), mask_factor, num_iter, lam_max, sd, gd, cg, solution, scores)


def plot_comparison(comparison: SolverComparison, first: FirstFrame, fig: Figure | None = None) -> Figure:
    """Score maps of f0 and of each solver's last iterate (top); loss per iteration and step sizes (bottom).

    Draws into ``fig`` (cleared first) when given, so a widget can redraw the same figure.
    """
    c = comparison
    if fig is None:
        fig = Figure(figsize=(13, 7.2), layout="constrained")
    fig.clear()
    grid = fig.add_gridspec(2, len(c.scores), height_ratios=(1, 1.25))
    maps = list(c.scores.items())
    vmin, vmax = min(m.min() for _, m in maps), max(m.max() for _, m in maps)
    centre = target_cell(first.boxes[0])
    top = [fig.add_subplot(grid[0, i]) for i in range(len(maps))]
    for ax, (name, m) in zip(top, maps, strict=True):
        image = _score_panel(ax, m, name, vmin, vmax, centre)
    fig.colorbar(image, ax=top, label="score", shrink=0.9)
    half = len(c.scores) // 2
    ax_loss, ax_step = fig.add_subplot(grid[1, :half]), fig.add_subplot(grid[1, half:])
    styles = [(c.sd, "o-", "C0")] + [(run, "--", f"C{k + 1}") for k, run in enumerate(c.gd)] + [(c.cg, "^-.", "C5")]
    for run, style, color in styles:
        ax_loss.plot(range(len(run.losses)), run.losses, style, color=color, markersize=4,
                     label=f"{run.name} ({run.losses[-1]:.3g})")
    ax_loss.axhline(c.solution.losses[-1], color="k", linestyle=":", label=f"CG solution ({c.solution.losses[-1]:.3g})")
    ax_loss.set(xlabel="iteration i", ylabel="loss L(f_i)", ylim=(0, None),
                title=f"Loss per iteration (lambda = {c.reg:.3g}, mask factor = {c.mask_factor:g})")
    ax_loss.grid(True, alpha=0.3)
    ax_loss.legend(fontsize="small")
    ax_step.plot(range(1, len(c.sd.steps) + 1), c.sd.steps, "o-", color="C0", label="steepest descent: beta * alpha_i")
    for k, run in enumerate(c.gd):
        if run.steps:
            ax_step.axhline(run.steps[0], color=f"C{k + 1}", linestyle="--", label=run.name)
    ax_step.axhline(2 / c.lambda_max, color="k", linestyle=":", label="2 / lambda_max (GD stability limit)")
    ax_step.set(xlabel="iteration i", ylabel="step size (log scale)", yscale="log",
                title="Step sizes: adaptive (GN) vs fixed")
    for ax in (ax_loss, ax_step):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_step.grid(True, which="both", alpha=0.3)
    ax_step.legend(fontsize="small")
    return fig


# --------------------------------------------------------------------------- train-set size (the frames probe)


def plot_train_frames(probe: dict) -> Figure:
    """Test-frame loss and score-peak hit rate of the filter predicted from k train frames, against k.

    ``probe`` is the JSON of ``experiments/train_frames_probe.py``: one row per k with the means ``clf_init`` (f0),
    ``clf_final`` (f5, as trained), ``clf_deep`` (f30) and ``peak_hit`` / ``peak_hit_deep``. The dashed line marks
    the 3 train frames per example the predictor was trained with.
    """
    rows = probe["rows"]
    k = [r["k"] for r in rows]
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    for key, style, label in (("clf_init", "o:", "f0 (initialiser)"), ("clf_final", "o-", "f5 (5 steps, as trained)"),
                              ("clf_deep", "s--", "f30 (30 steps)")):
        ax1.plot(k, [r[key] for r in rows], style, label=label)
    ax1.set(ylabel="test loss (100 x LBHinge)", title="Filter from k train frames, scored on 3 later frames")
    for key, style, label in (("peak_hit", "o-", "f5"), ("peak_hit_deep", "s--", "f30")):
        ax2.plot(k, [100 * r[key] for r in rows], style, color="C1" if key == "peak_hit" else "C2", label=label)
    ax2.set(ylabel="score peak within 1 cell of the target (%)",
            title=f"Localisation ({probe['examples']} val-split examples)")
    for ax in (ax1, ax2):
        ax.set_xscale("log")
        ax.set_xticks(k, [str(v) for v in k])
        ax.minorticks_off()
        ax.axvline(3, color="grey", ls="--", lw=1)
        ax.set_xlabel("train frames k (dashed: trained with 3)")
        ax.grid(True, alpha=0.3)
        ax.legend()
    return fig
