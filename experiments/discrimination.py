"""One-shot discrimination of the shipped ``dimp`` and ``atom`` on synth-val and synth-test (no online updates).

Usage (from the repository root)::

    python experiments/discrimination.py            # ~3 min on 2 CPU cores: discrimination.json + docs table
    python experiments/discrimination.py --doc      # the table only, from the JSON

Why: ``dimp`` is level with ``atom`` on synth-val (train photos, new scenes) but behind on synth-test (unseen
photos), in both training rounds. If DiMP's *trained* classification features had learnt the training photos'
appearance, its first-frame filter would find the target on later frames as often as ATOM's on synth-val and less
often on synth-test, whatever the online updates do. :mod:`dimp_core.evaluation.discrimination` measures exactly
that, on the same frames for both trackers; the difference per split comes with a paired bootstrap interval over
the sequences.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))  # the shared doc_section, make_eval_table
from doc_section import write_section  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TRACKERS = ("dimp", "atom")
SPLITS = ("synth-val", "synth-test")


def measure(every: int) -> dict[str, Any]:
    import numpy as np
    import torch

    from dimp_core.data.benchmarks import load_dataset
    from dimp_core.evaluation.discrimination import first_frame_discrimination
    from dimp_core.trackers import build_tracker

    torch.set_num_threads(2)
    out: dict[str, Any] = {"every": every, "splits": {}}
    for split in SPLITS:
        dataset = load_dataset(split)
        per_tracker = {}
        for name in TRACKERS:
            tracker = build_tracker(name, device="cpu")
            per_tracker[name] = {seq.name: first_frame_discrimination(tracker, seq, every).summary()
                                 for seq in dataset}
        out["splits"][split] = per_tracker
        print(split, {n: round(float(np.mean([s["hit_rate"] for s in v.values()])), 3)
                      for n, v in per_tracker.items()}, flush=True)
    return out


def summarise(data: dict[str, Any]) -> dict[str, Any]:
    """Per split: mean hit rate and median distractor ratio per tracker, and dimp - atom with its interval."""
    import numpy as np

    from dimp_core.evaluation.significance import difference_change, paired_bootstrap

    rows: dict[str, Any] = {}
    gaps = {}
    for split, per_tracker in data["splits"].items():
        hit = {n: {s: 100 * v["hit_rate"] for s, v in seqs.items()} for n, seqs in per_tracker.items()}
        gaps[split] = {s: hit["dimp"][s] - hit["atom"][s] for s in hit["dimp"]}
        d = paired_bootstrap(hit["dimp"], hit["atom"], "dimp", "atom")
        rows[split] = {"hit_rate": {n: float(np.mean(list(h.values()))) for n, h in hit.items()},
                       "median_ratio": {n: float(np.median([v["median_ratio"] for v in seqs.values()]))
                                        for n, seqs in per_tracker.items()},
                       "dimp_minus_atom": {"mean": d.mean, "low": d.low, "high": d.high, "p_better": d.p_a_better},
                       "frames": int(sum(v["frames"] for v in per_tracker["dimp"].values()))}
    change = difference_change(gaps["synth-val"], gaps["synth-test"], "synth-val", "synth-test")
    return {"splits": rows, "gap_val_minus_test": {"mean": change.mean, "low": change.low, "high": change.high,
                                                    "p_positive": change.p_a_better}}


def table(summary: dict[str, Any]) -> str:
    lines = ["| split | frames tested | `dimp` top score on target | `atom` | dimp - atom [95 % interval] "
             "| median distractor ratio, dimp / atom |", "|---|---:|---:|---:|---:|---:|"]
    for split, r in summary["splits"].items():
        d = r["dimp_minus_atom"]
        lines.append(f"| {split} | {r['frames']} | {r['hit_rate']['dimp']:.1f} % | {r['hit_rate']['atom']:.1f} % "
                     f"| {d['mean']:+.1f} [{d['low']:+.1f}, {d['high']:+.1f}] "
                     f"| {r['median_ratio']['dimp']:.2f} / {r['median_ratio']['atom']:.2f} |")
    g = summary["gap_val_minus_test"]
    lines.append(f"\n`dimp` - `atom` on synth-val minus the same on synth-test: {g['mean']:+.1f} points, 95 % interval "
                 f"[{g['low']:+.1f}, {g['high']:+.1f}] (sequences of each split resampled on their own), positive "
                 f"in {100 * g['p_positive']:.0f} % of the draws.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--every", type=int, default=5, help="test every n-th frame (default 5)")
    parser.add_argument("--json", default=str(ROOT / "experiments" / "discrimination.json"))
    parser.add_argument("--doc", action="store_true", help="write the table in docs/ from the JSON and exit")
    args = parser.parse_args(argv)
    path = Path(args.json)
    data = measure(args.every) if not args.doc else json.loads(path.read_text())
    data["summary"] = summarise(data)
    path.write_text(json.dumps(data, indent=1) + "\n")
    summary = data["summary"]
    write_section("discrimination-table", table(summary))
    print(table(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
