"""Tracker parameters from the official parameter files, compared on the validation split (``synth-val``).

Usage (from the repository root)::

    python experiments/params_on_val.py dimp atom      # run the candidates (2 processes), write params_selection.json
    python experiments/params_on_val.py --doc          # the table in docs/experiments.md from that JSON

The defaults of ``dimp`` and ``atom`` are pytracking's ``dimp18.py`` and ``atom/default.py``, tuned on OTB, VOT,
LaSOT and TrackingNet sequences hundreds of frames long. The candidates are the other settings those authors
shipped, nothing invented here:

- ``vot18-online``: the online learning of ``dimp18_vot18.py`` (optimise every 10th frame with 3 iterations, 3
  after a hard negative, 250 memory samples, learning rate 0.0075, no minimum weight for the first frame's
  samples): faster adaptation, which might suit our sequences of 100-150 frames;
- ``window``: the cosine window of the VOT variants (``window_output`` with ``perform_hn_without_windowing``, see
  :mod:`dimp_core.trackers.localization`), a motion prior against look-alike distractors; for both trackers.

Two more ``dimp`` candidates are not from any official file; they were planned (and committed) before their runs.
The update-schedule swap of ``experiments/component_swap.py`` found that the learner, not the schedule, separates DiMP's
update from ATOM's, and a diagnostic on three synth-val sequences (``val_000``, ``val_005``, ``val_015``; 83
updates; the learned objective on the sample memory at each update, from the filter before it) showed the
reference's steps (2, or 1 after a hard negative) reaching a median of 28 % of the decrease that 30 steps reach,
10 steps 96 %:

- ``update-10``: 10 iterations at every scheduled update (as many as pytracking runs on the first frame), 1 after
  a hard negative as in the reference;
- ``update-10+hn-10``: 10 iterations at every update, also after a hard negative.

Each candidate runs with the shipped weights over ``synth-val`` into ``results/params-synth-val/`` (existing result
files are reused, as by ``dimp eval``). The rule, fixed before the runs: a tracker keeps its reference parameters
unless a candidate is ahead of them on synth-val beyond doubt, i.e. the 95 % paired-bootstrap interval of the AUC
difference (:mod:`dimp_core.evaluation.significance`) lies above zero. The test split plays no part.
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

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "params-synth-val"

VOT18_ONLINE = {"train_skipping": 10, "net_opt_update_iter": 3, "net_opt_hn_iter": 3, "sample_memory_size": 250,
                "learning_rate": 0.0075, "init_samples_minimum_weight": 0.0}
WINDOW = {"localization": {"window_output": True}}
CANDIDATES: dict[str, dict[str, dict[str, Any]]] = {
    "dimp": {"reference": {}, "vot18-online": VOT18_ONLINE, "window": WINDOW,
             "vot18-online+window": {**VOT18_ONLINE, **WINDOW},
             "update-10": {"net_opt_update_iter": 10},
             "update-10+hn-10": {"net_opt_update_iter": 10, "net_opt_hn_iter": 10}},
    "atom": {"reference": {}, "window": WINDOW},
}


def _overrides(params: dict[str, Any]) -> dict[str, Any]:
    """JSON-able candidate -> ``build_tracker`` keyword arguments (nested dataclasses built)."""
    from dimp_core.trackers.localization import LocalizationParams

    out = dict(params)
    if "localization" in out:
        out["localization"] = LocalizationParams(**out["localization"])
    return out


def run_candidate(tracker: str, name: str) -> dict[str, float]:
    """OPE of the shipped ``tracker`` with candidate ``name``'s parameters on synth-val; AUC per sequence."""
    import torch

    from dimp_core.data.benchmarks import load_dataset
    from dimp_core.evaluation import evaluate, run_tracker
    from dimp_core.trackers import build_tracker

    torch.set_num_threads(1)
    dataset = load_dataset("synth-val")
    label = f"{tracker}-{name}"
    run_tracker(build_tracker(tracker, device="cpu", **_overrides(CANDIDATES[tracker][name])), dataset, OUT,
                tracker_name=label)
    summary = evaluate(dataset, OUT, [label])["trackers"][label]
    return {seq: s["auc"] for seq, s in summary["sequences"].items()}


def decide(candidates: dict[str, dict[str, Any]], per_sequence: dict[str, dict[str, float]]) -> dict[str, Any]:
    """Mean AUC of every candidate (``candidates``: name -> parameters), its paired interval against the
    reference, and the rule's choice: the best candidate whose interval lies above zero, else the reference."""
    from dimp_core.evaluation.significance import paired_bootstrap

    ref = per_sequence["reference"]
    entry: dict[str, Any] = {"candidates": {}, "selected": "reference"}
    for name, aucs in per_sequence.items():
        row: dict[str, Any] = {"params": candidates[name], "auc": sum(aucs.values()) / len(aucs)}
        if name != "reference":
            d = paired_bootstrap(aucs, ref, name, "reference")
            row.update(vs_reference=d.mean, low=d.low, high=d.high, p_better=d.p_a_better)
        entry["candidates"][name] = row
    resolved = {n: r for n, r in entry["candidates"].items() if r.get("low", 0.0) > 0}
    if resolved:
        entry["selected"] = max(resolved, key=lambda n: resolved[n]["auc"])
    return entry


def table(data: dict[str, Any]) -> str:
    rows = ["| tracker | parameters | synth-val AUC | vs reference [95 % interval] | P(better) | used |",
            "|---|---|---:|---:|---:|---|"]
    return "\n".join(rows + candidate_rows(data["trackers"]))


def candidate_rows(trackers: dict[str, Any]) -> list[str]:
    """One markdown row per candidate of each tracker's :func:`decide` entry: AUC, difference to the reference
    with its interval, P(better), and whether the rule chose it."""
    rows = []
    for tracker, entry in trackers.items():
        for name, c in entry["candidates"].items():
            diff = (f"{c['vs_reference']:+.1f} [{c['low']:+.1f}, {c['high']:+.1f}]" if "low" in c else "")
            better = f"{100 * c['p_better']:.0f} %" if "p_better" in c else ""
            rows.append(f"| `{tracker}` | {name} | {c['auc']:.1f} | {diff} | {better} "
                        f"| {'yes' if name == entry['selected'] else ''} |")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("trackers", nargs="*", help="dimp and/or atom")
    parser.add_argument("--json", default=str(ROOT / "experiments" / "params_selection.json"))
    parser.add_argument("--workers", type=int, default=2, help="candidate runs in parallel (one thread each)")
    parser.add_argument("--doc", action="store_true", help="write the table in docs/ and exit")
    args = parser.parse_args(argv)
    json_path = Path(args.json)
    if args.doc:
        page = write_section("params-table", table(json.loads(json_path.read_text())))
        print(f"updated the parameter table in {page}")
        return 0
    if not args.trackers or set(args.trackers) - set(CANDIDATES):
        parser.error(f"name one or more trackers of {', '.join(CANDIDATES)}")
    jobs = [(t, n) for t in args.trackers for n in CANDIDATES[t]]
    with ProcessPoolExecutor(args.workers) as pool:
        results = dict(zip(jobs, pool.map(run_candidate, [t for t, _ in jobs], [n for _, n in jobs]), strict=True))
    data = json.loads(json_path.read_text()) if json_path.exists() else {"dataset": "synth-val", "trackers": {}}
    for tracker in args.trackers:
        entry = decide(CANDIDATES[tracker], {n: results[(t, n)] for t, n in jobs if t == tracker})
        data["trackers"][tracker] = entry
        print(f"{tracker}: {entry['selected']}  " + ", ".join(f"{n} {c['auc']:.1f}"
                                                             for n, c in entry["candidates"].items()))
    json_path.write_text(json.dumps(data, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
