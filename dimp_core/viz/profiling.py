"""Notebook 05: where the milliseconds of a frame go, FPS against the paper's claim, the knobs and their cost.

Inputs are the JSON reports of :func:`dimp_core.profiling.runner.profile_tracker` (``dimp profile``, schema
``dimp-lab/profile/1``) and of ``benchmarks/fps.py`` (schema ``dimp-lab/fps/1``), live or recorded under
``data/benchmarks/``:

- :func:`load_recorded`: the newest recorded CPU and GPU benchmark and the GPU per-stage profiles in a folder;
- :func:`plot_stages`: one stacked bar per report, a segment per stage (mean ms per frame), so the bar's
  length is the frame time and the segments show where it goes;
- :func:`plot_fps`: FPS of several configurations against a reference line (the paper's 57 FPS);
- :func:`knob_rows`, :func:`knob_table`, :func:`plot_knobs`: each knob's FPS and AUC relative to the default.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

STAGE_LABELS = {
    "decode": "decode (JPEG, not in FPS)",
    "patch_extraction": "patch extraction",
    "backbone": "backbone",
    "features_graph": "backbone + heads (CUDA graph)",
    "classification_features": "classification features",
    "scoring": "scoring s = x * f",
    "localization": "localisation",
    "iou_features": "IoU-Net features",
    "iou_refinement": "IoU-Net refinement",
    "memory_update": "memory update",
    "optimizer": "optimiser steps",
    "other": "other (Python glue)",
}
PROFILE_SCHEMA = "dimp-lab/profile/1"
FPS_SCHEMA = "dimp-lab/fps/1"


# --------------------------------------------------------------------------- recorded runs


def load_recorded(folder: str | Path) -> dict[str, Any]:
    """The recorded benchmarks in ``folder``: of each kind the most complete (most configurations), then the newest.

    Returns ``{"cpu": report | None, "gpu": report | None, "cpu_accuracy": report | None,
    "gpu_profiles": {label: report}}``, each report with its file name under ``"_file"``. ``cpu``/``gpu`` are
    speed benchmarks (OpenCV CSRT ran in them as the anchor); ``cpu_accuracy`` is a sweep run without the
    anchor (``--no-anchor``), read for its AUCs. Files that are not JSON reports of ours are ignored.
    """
    found: dict[str, Any] = {"cpu": None, "gpu": None, "cpu_accuracy": None, "gpu_profiles": {}}
    for path in sorted(Path(folder).glob("*.json")):
        try:
            report = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if not isinstance(report, dict):
            continue
        report["_file"] = path.name
        if report.get("schema") == FPS_SCHEMA:
            kind = "gpu" if str(report.get("device", "cpu")).startswith("cuda") else "cpu"
            has_anchor = any(r.get("tracker") == "opencv-csrt" and r.get("fps") for r in report.get("results", []))
            if kind == "cpu" and not has_anchor:
                kind = "cpu_accuracy"
            if found[kind] is None or _rank(report) >= _rank(found[kind]):
                found[kind] = report
        elif report.get("schema") == PROFILE_SCHEMA and str(report.get("device", "")).startswith("cuda"):
            if "stages" in report:
                found["gpu_profiles"][path.stem] = report
    return found


def _when(report: Mapping[str, Any]) -> str:
    return str(report.get("system", {}).get("time", ""))


def _rank(report: Mapping[str, Any]) -> tuple[int, str]:
    """The most complete benchmark first (most configurations measured), then the newest."""
    return sum(1 for r in report.get("results", []) if r.get("fps")), _when(report)


def device_label(report: Mapping[str, Any]) -> str:
    """'NVIDIA H100 80GB HBM3 (cuda)' or 'AMD EPYC, 2 threads (cpu)'."""
    system = report.get("system", {})
    name = system.get("device_name", "?")
    device = str(report.get("device", "?"))
    if device.startswith("cpu"):
        threads = system.get("torch_threads", "?")
        return f"{name}, {threads} thread{'' if threads == 1 else 's'} (cpu)"
    return f"{name} ({device})"


# --------------------------------------------------------------------------- per-stage timings


def plot_stages(reports: Mapping[str, Mapping[str, Any]], title: str = "Where the time of one frame goes") -> Figure:
    """One horizontal stacked bar per profile report: mean ms per frame of each stage (decode excluded).

    Stages are measured separately (with CUDA synchronisation on a GPU), so a bar's total is the frame time
    as profiled, a little above the unprofiled time on a GPU.
    """
    if not reports:
        raise ValueError("no profile reports to plot")
    stages = [s for s in STAGE_LABELS if s != "decode" and any(s in r["stages"] for r in reports.values())]
    labels = list(reports)
    fig = Figure(figsize=(10, 2.4 + 0.6 * len(labels)), layout="constrained")
    ax = fig.add_subplot()
    colors = _stage_colors(stages)
    left = np.zeros(len(labels))
    for stage in stages:
        widths = np.array([r["stages"].get(stage, {}).get("mean_per_frame_ms", 0.0) for r in reports.values()])
        ax.barh(labels, widths, left=left, color=colors[stage], label=STAGE_LABELS[stage], edgecolor="white",
                linewidth=0.5)
        left += widths
    for y, r in enumerate(reports.values()):
        ax.text(left[y] * 1.01, y, f"{r['update']['mean_ms']:.1f} ms, {r['update']['fps']:.0f} FPS", va="center",
                fontsize=9)
    ax.set_xlim(0, left.max() * 1.3)
    ax.invert_yaxis()
    ax.set_xlabel("mean time per frame (ms); each segment one stage")
    ax.set_title(title)
    fig.legend(loc="outside lower center", ncol=4, fontsize=8, frameon=False)
    return fig


def _stage_colors(stages: Sequence[str]) -> dict[str, Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab20"]
    return {s: cmap(i % 20) for i, s in enumerate(stages)}


def stage_medians(report: Mapping[str, Any]) -> dict[str, float]:
    """{stage: median ms} of a profile report (over the frames where the stage ran)."""
    return {name: float(s["median_ms"]) for name, s in report["stages"].items()}


# --------------------------------------------------------------------------- FPS against a claim


def plot_fps(entries: Sequence[tuple[str, float]], reference: float = 57.0,
             reference_label: str = "paper: DiMP-18, 57 FPS (GTX 1080)",
             title: str = "Frames per second against the paper's claim") -> Figure:
    """Horizontal bars of ``(label, fps)`` with a vertical line at ``reference`` FPS (log scale)."""
    if not entries:
        raise ValueError("no FPS entries to plot")
    labels = [e[0] for e in entries]
    fps = np.array([e[1] for e in entries], dtype=float)
    fig = Figure(figsize=(9, 1.8 + 0.42 * len(entries)), layout="constrained")
    ax = fig.add_subplot()
    colors = ["#2ca02c" if v >= reference else "#1f77b4" for v in fps]
    ax.barh(labels, fps, color=colors)
    ax.axvline(reference, color="#d62728", linestyle="--", label=reference_label)
    for y, v in enumerate(fps):
        ax.text(v * 1.05, y, f"{v:.1f}", va="center", fontsize=8)
    ax.set_xscale("log")
    ax.set_xlim(max(fps.min() / 2, 0.1), max(fps.max(), reference) * 3)
    ax.invert_yaxis()
    ax.set_xlabel("frames per second of update() (log scale; green: at or above the line)")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    return fig


# --------------------------------------------------------------------------- knobs


def knob_rows(report: Mapping[str, Any], base_label: str = "dimp") -> list[dict[str, Any]]:
    """Each configuration of the tracker of ``base_label`` in an FPS report, with its FPS and AUC change
    relative to ``base_label`` (the defaults), sorted by FPS."""
    results = {r["label"]: r for r in report["results"] if r.get("available") and "fps" in r}
    if base_label not in results:
        raise ValueError(f"{base_label!r} is not in the report ({', '.join(results)})")
    base = results[base_label]
    rows = []
    for label, r in results.items():
        if r["tracker"] != base["tracker"] or r["weights"] != base["weights"]:
            continue
        cpu_ms = r.get("cpu_ms_mean")
        rows.append({"label": label, "knob": r["knob"] or "-", "fps": r["fps"], "ms": r["ms_mean"],
                     "fps_cpu_time": 1000 / cpu_ms if cpu_ms else None,
                     "speedup": r["fps"] / base["fps"],
                     "speedup_cpu_time": base["cpu_ms_mean"] / cpu_ms if cpu_ms and base.get("cpu_ms_mean") else None,
                     "auc": r["auc_mean"], "delta_auc": r["auc_mean"] - base["auc_mean"],
                     "ratio_to_anchor": r.get("ratio_to_anchor")})
    return sorted(rows, key=lambda row: row["fps"])


def knob_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Markdown table of :func:`knob_rows`."""
    lines = ["| configuration | what changes | FPS | x default | x CSRT | FPS (CPU time) | x default (CPU time) "
             "| AUC | AUC change |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        ratio = f"{r['ratio_to_anchor']:.2f}" if r.get("ratio_to_anchor") else "-"
        cpu = f"{r['fps_cpu_time']:.1f}" if r.get("fps_cpu_time") else "-"
        cpu_x = f"{r['speedup_cpu_time']:.2f}" if r.get("speedup_cpu_time") else "-"
        lines.append(f"| `{r['label']}` | {r['knob']} | {r['fps']:.1f} | {r['speedup']:.2f} | {ratio} | {cpu} | "
                     f"{cpu_x} | {r['auc']:.1f} | {r['delta_auc']:+.1f} |")
    return "\n".join(lines)


def plot_knobs(rows: Sequence[Mapping[str, Any]], base_label: str = "dimp",
               title: str = "Speed knobs: FPS against accuracy") -> Figure:
    """Scatter of FPS (x) against AUC (y), one numbered point per configuration (the key is on the right);
    the defaults are the red point.

    FPS from process CPU time when every row has it (less disturbed by other jobs on a shared machine), else
    wall-clock FPS; the axis says which.
    """
    if not rows:
        raise ValueError("no knob rows to plot")
    cpu = all(r.get("fps_cpu_time") for r in rows)
    fig = Figure(figsize=(11, 5.5), layout="constrained")
    ax, key = fig.subplots(1, 2, width_ratios=(2.2, 1))
    ordered = sorted(rows, key=lambda row: -(row["fps_cpu_time"] if cpu else row["fps"]))
    lines = []
    for i, r in enumerate(ordered, start=1):
        base = r["label"] == base_label
        x = r["fps_cpu_time"] if cpu else r["fps"]
        ax.scatter(x, r["auc"], s=60 if base else 30, color="#d62728" if base else "#1f77b4", zorder=3,
                   label="defaults (exact knobs on)" if base else None)
        ax.annotate(str(i), (x, r["auc"]), textcoords="offset points", xytext=(4, 4), fontsize=8)
        lines.append(f"{i:2d}  {r['label']}: {x:.1f} FPS, AUC {r['auc']:.1f}")
    ax.set_xlabel("frames per second from process CPU time (same frames)" if cpu
                  else "frames per second (same run, same frames)")
    ax.set_ylabel("success AUC (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    key.axis("off")
    key.text(0, 1, "\n".join(lines), va="top", ha="left", fontsize=8, family="monospace", transform=key.transAxes)
    return fig
