"""Saving figures, and the colours every teaching figure uses for boxes."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

GT_COLOR = "#2ca02c"  # ground truth: green
PRED_COLOR = "#d62728"  # prediction: red


def savefig(fig: Figure, figures_dir: str | Path, name: str, dpi: int = 110) -> Path:
    """Write ``fig`` to ``figures_dir/<name>.png`` (creating the folder) and return the path."""
    if not name or "/" in name or name.endswith(".png"):
        raise ValueError(f"name must be a bare file stem such as '01_frames', got {name!r}")
    out = Path(figures_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.png"
    fig.savefig(path, dpi=dpi)
    return path
