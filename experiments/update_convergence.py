"""How far does one of DiMP's online updates get in minimising its own objective on the sample memory?

Usage (from the repository root)::

    python experiments/update_convergence.py [--sequences val_000 val_005 val_015] [--json JSON]

The shipped ``dimp`` tracks each sequence of ``synth-val`` (one torch thread, tracker seed 0). At every frame where
the model update changes the filter, the learned discriminative objective L(f) on the memory (samples, boxes and
weights as the update saw them) is evaluated along 30 steepest-descent steps from the filter before the update,

    reached(n) = (L(f_0) - L(f_n)) / (L(f_0) - L(f_30)),

for n = the steps the tracker ran (``net_opt_update_iter`` = 2, or ``net_opt_hn_iter`` = 1 after a hard negative)
and n = 10 (as many as the first frame runs). A value near 1 means the update fits the memory about as well as
more steps would; near 0, the filter barely moves towards that fit. Analysis on the validation split only.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEEP_STEPS = 30  # the reference point: what many more steps reach


def update_fractions(sequence_name: str, deep_steps: int = DEEP_STEPS) -> list[dict[str, float]]:
    """One row per update of the shipped ``dimp`` on a synth-val sequence: frame, steps run, reached(steps),
    reached(10)."""
    import torch

    from dimp_core.data.benchmarks import load_dataset
    from dimp_core.trackers import build_tracker

    torch.set_num_threads(1)
    dataset = load_dataset("synth-val")
    sequence = next((s for s in dataset if s.name == sequence_name), None)
    if sequence is None:
        raise ValueError(f"no sequence {sequence_name!r} in synth-val")
    tracker = build_tracker("dimp", device="cpu")
    tracker.init(sequence.frame(0), sequence.init_box)
    optimizer, p = tracker.net.classifier.filter_optimizer, tracker.params
    rows, before = [], tracker.filter.clone()
    for k in range(1, len(sequence.frame_paths)):
        tracker.update(sequence.frame(k))
        if torch.equal(before, tracker.filter):
            continue
        steps = p.net_opt_hn_iter if tracker.info["flag"] == "hard_negative" else p.net_opt_update_iter
        samples, boxes, weights = tracker.memory.stored()
        with torch.inference_mode():
            trace = optimizer(before, samples[:, None], boxes[:, None], sample_weight=weights, num_iter=deep_steps,
                              compute_losses=True)
        loss = [float(x) for x in trace.losses]  # L(f_0) .. L(f_deep)
        total = max(loss[0] - loss[-1], 1e-12)
        rows.append({"frame": k, "steps": steps, "reached": (loss[0] - loss[steps]) / total,
                     "reached_10": (loss[0] - loss[10]) / total})
        before = tracker.filter.clone()
    return rows


def main(argv: list[str] | None = None) -> int:
    import numpy as np

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sequences", nargs="+", default=["val_000", "val_005", "val_015"])
    parser.add_argument("--json", default=str(ROOT / "experiments" / "update_convergence.json"))
    args = parser.parse_args(argv)
    per_sequence = {name: update_fractions(name) for name in args.sequences}
    rows = [r for seq in per_sequence.values() for r in seq]
    summary = {"updates": len(rows), "median_reached": float(np.median([r["reached"] for r in rows])),
               "median_reached_10": float(np.median([r["reached_10"] for r in rows])), "deep_steps": DEEP_STEPS}
    Path(args.json).write_text(json.dumps({"dataset": "synth-val", "summary": summary,
                                           "per_sequence": per_sequence}, indent=1) + "\n")
    print(f"{summary['updates']} updates: the tracker's own steps reach a median "
          f"{100 * summary['median_reached']:.0f} % of the {DEEP_STEPS}-step decrease, "
          f"10 steps {100 * summary['median_reached_10']:.0f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
