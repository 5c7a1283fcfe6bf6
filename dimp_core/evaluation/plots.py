"""Success and precision plots of OPE, drawn from a summary (``summary`` module docstring).

OTB's convention: one curve per tracker, the legend sorted by score and showing it in brackets (the AUC
for the success plot, the precision at 20 px for the precision plot), as fractions. Figures are built
with :class:`matplotlib.figure.Figure` (Agg canvas, no pyplot), so nothing changes a notebook's backend.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from dimp_core.evaluation.metrics import CENTER_THRESHOLDS, IOU_THRESHOLDS, NORM_CENTER_THRESHOLDS

LINE_STYLES = ("-", "--", "-.", ":")

# plot kind: (curve key, score key, x values, x label, y label, title)
PLOTS = {
    "success": ("success", "auc", IOU_THRESHOLDS, "Overlap threshold (IoU)", "Success rate", "Success plots of OPE"),
    "precision": ("precision", "precision", CENTER_THRESHOLDS, "Location error threshold (pixels)", "Precision",
                  "Precision plots of OPE"),
    "norm_precision": ("norm_precision", "norm_precision", NORM_CENTER_THRESHOLDS,
                       "Normalized location error threshold", "Normalized precision",
                       "Normalized precision plots of OPE"),
}


def plot_curves(summary: Mapping[str, Any], kind: str = "success") -> Figure:
    """One OPE plot (``success``, ``precision`` or ``norm_precision``) of every tracker in ``summary``."""
    if kind not in PLOTS:
        raise ValueError(f"unknown plot kind {kind!r}; choose from {', '.join(PLOTS)}")
    curve_key, score_key, x, xlabel, ylabel, title = PLOTS[kind]
    # a tracker keeps its colour (its place in the summary) in every plot; the legend is sorted by score
    trackers = sorted(enumerate(summary["trackers"].items()), key=lambda item: -item[1][1][score_key])
    fig = Figure(figsize=(6.0, 4.5))
    ax = fig.add_subplot()
    for i, (name, t) in trackers:
        ax.plot(x, t["curves"][curve_key], LINE_STYLES[i // 10 % len(LINE_STYLES)], color=f"C{i % 10}", linewidth=2,
                label=f"{name} [{t[score_key] / 100:.3f}]")
    ax.set(xlabel=xlabel, ylabel=ylabel, xlim=(x[0], x[-1]), ylim=(0, 1),
           title=f"{title} on {summary['dataset']} ({summary['num_sequences']} sequences)")
    ax.grid(True, alpha=0.4)
    ax.legend(loc="lower left" if kind == "success" else "lower right", fontsize="small")
    fig.tight_layout()
    return fig


def save_plots(summary: Mapping[str, Any], out_dir: str | Path, dpi: int = 150) -> list[Path]:
    """Write ``success_plot.png`` and ``precision_plot.png`` (and ``norm_precision_plot.png``) to ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for kind in PLOTS:
        path = out_dir / f"{kind}_plot.png"
        plot_curves(summary, kind).savefig(path, dpi=dpi)
        paths.append(path)
    return paths
