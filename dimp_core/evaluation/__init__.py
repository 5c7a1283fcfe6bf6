"""Evaluation: the OPE runner (``runner``), the metrics (``metrics``), summaries and tables (``summary``),
paired-bootstrap intervals of AUC differences (``significance``) and plots (``plots``). ``got10k_adapter``
(needs the got10k toolkit) is imported on its own."""

from dimp_core.evaluation.metrics import (
    SequenceScores,
    center_error,
    frame_errors,
    normalized_center_error,
    precision_curve,
    rect_iou,
    score_sequence,
    sequence_fps,
    success_curve,
    valid_frames,
)
from dimp_core.evaluation.plots import plot_curves, save_plots
from dimp_core.evaluation.runner import evaluate, read_results, run_tracker, score_tracker, write_summary
from dimp_core.evaluation.significance import PairedDifference, difference_change, difference_table, paired_bootstrap
from dimp_core.evaluation.summary import format_table, summarize_tracker

__all__ = [
    "PairedDifference",
    "SequenceScores",
    "center_error",
    "difference_change",
    "difference_table",
    "evaluate",
    "format_table",
    "frame_errors",
    "normalized_center_error",
    "paired_bootstrap",
    "plot_curves",
    "precision_curve",
    "read_results",
    "rect_iou",
    "run_tracker",
    "save_plots",
    "score_sequence",
    "score_tracker",
    "sequence_fps",
    "success_curve",
    "summarize_tracker",
    "valid_frames",
    "write_summary",
]
