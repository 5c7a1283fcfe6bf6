"""How sure is a ranking? A paired bootstrap over sequences of the difference in success AUC.

Two trackers ran on the same sequences, with success AUCs ``a_i`` and ``b_i`` per sequence. The benchmark's
AUC difference is ``mean_i(a_i - b_i)``. Drawing the sequences with replacement ``B`` times (seeded) gives the
spread of that mean over benchmarks like this one: its 2.5 and 97.5 percentiles are a 95 % interval, and the
fraction of draws with a positive mean is how often A would rank above B. Pairing matters: tracking sequences
differ far more from each other than two trackers differ on one sequence, so the per-sequence differences,
not the two AUCs apart, carry the evidence. With 24 sequences and single-sequence swings of tens of points,
differences of a few AUC points are usually inside the interval (Efron and Tibshirani, *An Introduction to
the Bootstrap*, 1993, ch. 13; the percentile interval).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class PairedDifference:
    """A's AUC minus B's over the shared sequences (points), its bootstrap interval and P(A ranks above B)."""

    a: str
    b: str
    mean: float
    low: float
    high: float
    p_a_better: float
    sequences: int
    level: float


def paired_bootstrap(auc_a: Mapping[str, float], auc_b: Mapping[str, float], a: str = "A", b: str = "B",
                     resamples: int = 10_000, seed: int = 0, level: float = 0.95) -> PairedDifference:
    """Paired percentile bootstrap of ``mean(auc_a - auc_b)`` over the sequences both dictionaries score."""
    shared = sorted(set(auc_a) & set(auc_b))
    if not shared:
        raise ValueError(f"{a} and {b} share no scored sequence")
    if resamples < 1 or not 0 < level < 1:
        raise ValueError(f"need resamples >= 1 and 0 < level < 1, got {resamples} and {level}")
    diff = np.array([auc_a[s] - auc_b[s] for s in shared], dtype=float)  # (S,)
    rng = np.random.default_rng(seed)
    draws = diff[rng.integers(len(diff), size=(resamples, len(diff)))].mean(axis=1)  # (B,)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail])
    return PairedDifference(a, b, float(diff.mean()), float(low), float(high), float((draws > 0).mean()),
                            len(shared), level)


def difference_change(diff_x: Mapping[str, float], diff_y: Mapping[str, float], x: str = "X", y: str = "Y",
                      resamples: int = 10_000, seed: int = 0, level: float = 0.95) -> PairedDifference:
    """Is a paired difference (A - B per sequence) larger on benchmark X than on benchmark Y?

    The two benchmarks have different sequences, so each is resampled on its own (seeded) and the statistic is
    ``mean(diff_x) - mean(diff_y)``; ``p_a_better`` is the fraction of draws where it is positive.
    """
    if not diff_x or not diff_y:
        raise ValueError("both benchmarks need at least one sequence")
    if resamples < 1 or not 0 < level < 1:
        raise ValueError(f"need resamples >= 1 and 0 < level < 1, got {resamples} and {level}")
    dx = np.array(list(diff_x.values()), dtype=float)  # (Sx,)
    dy = np.array(list(diff_y.values()), dtype=float)  # (Sy,)
    rng = np.random.default_rng(seed)
    draws = (dx[rng.integers(len(dx), size=(resamples, len(dx)))].mean(axis=1)
             - dy[rng.integers(len(dy), size=(resamples, len(dy)))].mean(axis=1))  # (B,)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail])
    return PairedDifference(x, y, float(dx.mean() - dy.mean()), float(low), float(high), float((draws > 0).mean()),
                            len(dx) + len(dy), level)


def sequence_aucs(summary: Mapping[str, Any], tracker: str) -> dict[str, float]:
    """Per-sequence AUC (percent) of ``tracker`` in an evaluation summary (``dimp eval``'s summary.json)."""
    return {name: s["auc"] for name, s in summary["trackers"][tracker]["sequences"].items()}


def difference_table(summary: Mapping[str, Any], reference: str, resamples: int = 10_000, seed: int = 0) -> str:
    """Markdown: ``reference`` minus every other tracker, with the 95 % paired-bootstrap interval."""
    ref = sequence_aucs(summary, reference)
    lines = [f"| `{reference}` minus | AUC difference | 95 % interval | P(`{reference}` ranks higher) |",
             "|---|---:|---:|---:|"]
    for other in summary["trackers"]:
        if other == reference:
            continue
        d = paired_bootstrap(ref, sequence_aucs(summary, other), reference, other, resamples, seed)
        lines.append(f"| {other} | {d.mean:+.1f} | [{d.low:+.1f}, {d.high:+.1f}] | {d.p_a_better:.2f} |")
    return "\n".join(lines) + "\n"
