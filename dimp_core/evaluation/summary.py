"""From per-sequence scores to one summary per tracker, and the summary as a markdown table.

Curves are averaged over sequences, each sequence weighing the same (OTB, got10k's ``ExperimentOTB`` and
pytracking); the scores are read off the averaged curves (``metrics`` module docstring) and reported in
percent. The tracker's speed is got10k's: the mean of the per-sequence FPS over the sequences that have
one. A per-attribute AUC averages the success curves of the sequences carrying that attribute.

Summary layout (what ``summary.json`` holds)::

    {"dataset": str, "num_sequences": int,
     "trackers": {name: {"auc", "precision", "norm_precision", "success_rate": percent,
                         "fps": float | None,
                         "attributes": {attribute: {"auc": percent, "num_sequences": int}},
                         "sequences": {sequence: {"auc": percent, "fps": float | None}},
                         "curves": {"success": [21 fractions], "precision": [51], "norm_precision": [51]}}}}

``dimp eval`` adds ``"torch_threads"``: the CPU thread count it tracked with (boxes can depend on it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from dimp_core.evaluation.metrics import PRECISION_AT, SUCCESS_RATE_AT, SequenceScores

SCORE_COLUMNS = (  # summary key, table header
    ("auc", "AUC"),
    ("precision", "Precision (20 px)"),
    ("norm_precision", "Norm. precision (0.20)"),
    ("success_rate", "Success rate (IoU > 0.5)"),
    ("fps", "FPS"),
)


def summarize_tracker(scores: Mapping[str, SequenceScores],
                      attributes: Mapping[str, Sequence[str]] | None = None) -> dict[str, Any]:
    """One tracker's summary from its per-sequence scores (sequence name -> scores) and attribute labels."""
    if not scores:
        raise ValueError("no sequences to summarize")
    success = np.mean([s.success for s in scores.values()], axis=0)  # (21,)
    precision = np.mean([s.precision for s in scores.values()], axis=0)  # (51,)
    norm_precision = np.mean([s.norm_precision for s in scores.values()], axis=0)  # (51,)
    speeds = [s.fps for s in scores.values() if s.fps is not None]
    by_attribute: dict[str, list[str]] = {}
    for name in scores:
        for attribute in (attributes or {}).get(name, ()):
            by_attribute.setdefault(attribute, []).append(name)
    return {
        "auc": 100.0 * float(np.mean(success)),
        "precision": 100.0 * float(precision[PRECISION_AT]),
        "norm_precision": 100.0 * float(norm_precision[PRECISION_AT]),
        "success_rate": 100.0 * float(success[SUCCESS_RATE_AT]),
        "fps": float(np.mean(speeds)) if speeds else None,
        "attributes": {a: {"auc": 100.0 * float(np.mean([scores[n].auc for n in names])), "num_sequences": len(names)}
                       for a, names in sorted(by_attribute.items())},
        "sequences": {n: {"auc": 100.0 * s.auc, "fps": s.fps} for n, s in scores.items()},
        "curves": {"success": success.tolist(), "precision": precision.tolist(),
                   "norm_precision": norm_precision.tolist()},
    }


def _cell(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def format_table(summary: Mapping[str, Any], attributes: bool = True, fps: bool = True) -> str:
    """The summary as markdown: one row per tracker, then (optionally) AUC per attribute.

    ``fps=False`` leaves out the speed column (CPU speeds belong in the benchmark, as ratios measured side by
    side; FPS recorded while other jobs shared the machine says little).
    """
    trackers: Mapping[str, Any] = summary["trackers"]
    columns = [c for c in SCORE_COLUMNS if fps or c[0] != "fps"]
    lines = [f"OPE on `{summary['dataset']}` ({summary['num_sequences']} sequences); scores in percent, "
             "AUC = mean of the success curve on IoU thresholds 0, 0.05, ..., 1.", ""]
    lines.append("| Tracker | " + " | ".join(header for _, header in columns) + " |")
    lines.append("|---|" + "---:|" * len(columns))
    for name, t in trackers.items():
        lines.append(f"| {name} | " + " | ".join(_cell(t[key]) for key, _ in columns) + " |")
    names = sorted({a for t in trackers.values() for a in t["attributes"]})
    if attributes and names:
        lines += ["", "AUC per attribute (number of sequences):", ""]
        lines.append("| Attribute | " + " | ".join(trackers) + " |")
        lines.append("|---|" + "---:|" * len(trackers))
        for a in names:
            count = max(t["attributes"].get(a, {}).get("num_sequences", 0) for t in trackers.values())
            cells = [_cell(t["attributes"][a]["auc"]) if a in t["attributes"] else "n/a" for t in trackers.values()]
            lines.append(f"| {a} ({count}) | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
