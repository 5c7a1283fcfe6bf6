"""How much does a tracker's own randomness move its benchmark score? OPE with several tracker seeds.

Usage (from the repository root)::

    python experiments/seed_spread.py [--dataset synth-test] [--seeds 0 1 2]   # -> seed_spread.json + docs table

``dimp`` and ``atom`` draw random numbers while tracking (the first frame's augmentation shifts and dropout, the
IoU-Net's jittered boxes, ATOM's initial projection), all from ``params.seed``. A benchmark AUC is one draw. This
script runs both shipped trackers with several seeds over the same sequences, one torch thread per run (the
boxes depend on the thread count; ``results/seeds-<dataset>/``;
existing result files are reused, as by ``dimp eval``) and reports each tracker's AUC per seed and the
``dimp - atom`` difference per seed and averaged over the seeds. Reporting only: nothing is selected on it.
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))  # the shared doc_section, make_eval_table
from doc_section import write_section  # noqa: E402
from make_eval_table import drop_stale_results  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TRACKERS = ("dimp", "atom")


def run_one(dataset_name: str, tracker: str, seed: int) -> dict[str, float]:
    """Per-sequence AUC of the shipped ``tracker`` with ``seed`` on ``dataset_name``."""
    import torch

    from dimp_core.data.benchmarks import load_dataset
    from dimp_core.evaluation import evaluate, run_tracker
    from dimp_core.trackers import build_tracker

    torch.set_num_threads(1)
    dataset = load_dataset(dataset_name)
    out, label = ROOT / "results" / f"seeds-{dataset_name}", f"{tracker}-seed{seed}"
    drop_stale_results(out, [tracker], {tracker: label})  # reused result files must come from the shipped weights
    run_tracker(build_tracker(tracker, device="cpu", seed=seed), dataset, out, tracker_name=label)
    return {s: v["auc"] for s, v in evaluate(dataset, out, [label])["trackers"][label]["sequences"].items()}


def summarise(per_sequence: dict[str, dict[str, dict[str, float]]]) -> dict[str, Any]:
    """Mean AUC per tracker and seed, dimp - atom per seed, and the seed-averaged difference with a paired
    interval over the sequences."""
    import numpy as np

    from dimp_core.evaluation import paired_bootstrap

    seeds = sorted(per_sequence["dimp"], key=int)
    mean = {t: {s: float(np.mean(list(per_sequence[t][s].values()))) for s in seeds} for t in TRACKERS}
    averaged = {t: {q: float(np.mean([per_sequence[t][s][q] for s in seeds])) for q in per_sequence[t][seeds[0]]}
                for t in TRACKERS}
    d = paired_bootstrap(averaged["dimp"], averaged["atom"], "dimp", "atom")
    return {"seeds": seeds, "auc": mean, "dimp_minus_atom": {s: mean["dimp"][s] - mean["atom"][s] for s in seeds},
            "seed_averaged": {"mean": d.mean, "low": d.low, "high": d.high, "p_positive": d.p_a_better}}


def table(data: dict[str, Any]) -> str:
    s = data["summary"]
    rows = [f"| {data['dataset']} | " + " | ".join(f"seed {x}" for x in s["seeds"]) + " | spread (max - min) |",
            "|---|" + "---:|" * (len(s["seeds"]) + 1)]
    for t in TRACKERS:
        values = [s["auc"][t][x] for x in s["seeds"]]
        cells = " | ".join(f"{v:.1f}" for v in values)
        rows.append(f"| `{t}` AUC | {cells} | {max(values) - min(values):.1f} |")
    diffs = [s["dimp_minus_atom"][x] for x in s["seeds"]]
    rows.append("| `dimp` - `atom` | " + " | ".join(f"{v:+.1f}" for v in diffs) + f" | {max(diffs) - min(diffs):.1f} |")
    a = s["seed_averaged"]
    rows.append(f"\nAveraged over the seeds per sequence: `dimp` - `atom` = {a['mean']:+.1f}, 95 % paired interval "
                f"[{a['low']:+.1f}, {a['high']:+.1f}], positive in {100 * a['p_positive']:.0f} % of the draws.")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="synth-test")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--workers", type=int, default=2, help="runs in parallel (one thread each)")
    parser.add_argument("--json", default=str(ROOT / "experiments" / "seed_spread.json"))
    parser.add_argument("--doc", action="store_true", help="write the table in docs/ from the JSON and exit")
    args = parser.parse_args(argv)
    path = Path(args.json)
    if not args.doc:
        jobs = [(t, s) for t in TRACKERS for s in args.seeds]
        with ProcessPoolExecutor(args.workers) as pool:
            results = list(pool.map(run_one, [args.dataset] * len(jobs), *zip(*jobs, strict=True)))
        per_sequence: dict[str, dict[str, dict[str, float]]] = {t: {} for t in TRACKERS}
        for (t, s), aucs in zip(jobs, results, strict=True):
            per_sequence[t][str(s)] = aucs
        path.write_text(json.dumps({"dataset": args.dataset, "torch_threads": 1, "per_sequence": per_sequence,
                                    "summary": summarise(per_sequence)}, indent=1) + "\n")
    data = json.loads(path.read_text())
    write_section("seed-table", table(data))
    print(table(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
