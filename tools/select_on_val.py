"""Choose the weights to ship on the validation split (``synth-val``), never on the test split.

Usage (from the repository root)::

    python tools/select_on_val.py dimp gpu-1000=results/candidates/dimp-gpu-1000.safetensors \\
        gpu-2000=results/candidates/dimp-gpu-2000.safetensors
    python tools/select_on_val.py --doc             # the selection table in docs/training.md, from the JSON

Each candidate of a tracker is run over ``synth-val`` (24 sequences of the train photos drawn from their own random
stream, see :mod:`dimp_core.data.synthetic`) into ``results/synth-val/results/<tracker>-<name>/`` (existing
result files are reused, as by ``dimp eval``) and scored; ``experiments/selection.json`` records, per tracker, every
candidate's AUC and precision on synth-val, its training schedule and the SHA-256 of its file, and which one has
the highest AUC. Shipping that one (``data/weights/<tracker>.safetensors``) is left to the caller.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from doc_section import write_section

ROOT = Path(__file__).resolve().parents[1]


def score_candidate(tracker: str, name: str, weights: Path, out: Path) -> dict[str, Any]:
    """OPE of one candidate on synth-val: AUC / precision (percent) and what the weights record of their training."""
    import torch

    from dimp_core import checkpoints
    from dimp_core.data.benchmarks import load_dataset
    from dimp_core.evaluation import evaluate, run_tracker
    from dimp_core.trackers import build_tracker

    torch.set_num_threads(1)  # the boxes depend on the thread count; the accuracy tables in docs/ use one
    dataset = load_dataset("synth-val")
    label = f"{tracker}-{name}"
    run_tracker(build_tracker(tracker, device="cpu", weights=str(weights)), dataset, out, tracker_name=label)
    summary = evaluate(dataset, out, [label])["trackers"][label]
    meta = checkpoints.load_checkpoint_info(weights)
    config = meta.get("config", {})
    entry = {"weights": str(weights), "sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
             "auc": summary["auc"], "precision": summary["precision"],
             "steps": meta.get("steps_done", config.get("steps")), "batch_size": config.get("batch_size"),
             "pool_sequences": config.get("pool_sequences"), "preset": config.get("preset"),
             "hardware": meta.get("hardware")}
    if "init_weights_meta" in meta:  # a warm start: the runs before this one (first run first), for the table
        entry["warm_start"] = {"sha256": meta["init_weights_sha256"], "runs": [
            {"steps": run.get("steps_done"), "batch_size": run.get("config", {}).get("batch_size"),
             "pool_sequences": run.get("config", {}).get("pool_sequences")}
            for run in checkpoints.training_runs(meta)[:-1]]}
    if "average_of" in meta:  # a weight average (experiments/average_weights.py): its source files
        entry["average_of"] = [source["file"] for source in meta["average_of"]]
    return entry


def select(tracker: str, candidates: dict[str, Path], out: Path, json_path: Path) -> str:
    data = json.loads(json_path.read_text()) if json_path.exists() else {"dataset": "synth-val", "trackers": {}}
    scores = {name: score_candidate(tracker, name, path, out) for name, path in candidates.items()}
    best = max(scores, key=lambda n: scores[n]["auc"])
    data["trackers"][tracker] = {"candidates": scores, "selected": best}
    json_path.write_text(json.dumps(data, indent=1) + "\n")
    return best


def table(data: dict[str, Any]) -> str:
    rows = ["| tracker | candidate | steps x batch | training pool | synth-val AUC | synth-val P@20 | shipped |",
            "|---|---|---|---:|---:|---:|---|"]
    for tracker, entry in data["trackers"].items():
        by_file = {c["weights"]: name for name, c in entry["candidates"].items()}
        for name, c in entry["candidates"].items():
            steps, pool = f"{c['steps']} x {c['batch_size']}", f"{c['pool_sequences']} sequences"
            if "average_of" in c:  # a weight average: named by the candidates it averages
                steps, pool = "mean of " + " and ".join(by_file.get(f, f) for f in c["average_of"]), "as those"
            elif "warm_start" in c:  # continued from another file: the schedules before it first
                runs = c["warm_start"]["runs"]
                steps = " + ".join([f"{r['steps']} x {r['batch_size']}" for r in runs] + [steps])
                pool = " + ".join([str(r["pool_sequences"]) for r in runs] + [pool])
            rows.append(f"| `{tracker}` | {name} | {steps} | {pool} "
                        f"| {c['auc']:.1f} | {c['precision']:.1f} | {'yes' if name == entry['selected'] else ''} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tracker", nargs="?", help="dimp, atom or siamfc")
    parser.add_argument("candidates", nargs="*", metavar="NAME=WEIGHTS")
    parser.add_argument("--out", default=str(ROOT / "results" / "synth-val"))
    parser.add_argument("--json", default=str(ROOT / "experiments" / "selection.json"))
    parser.add_argument("--doc", action="store_true", help="write the selection table in docs/ and exit")
    args = parser.parse_args(argv)
    if args.doc:
        page = write_section("selection-table", table(json.loads(Path(args.json).read_text())))
        print(f"updated the selection table in {page}")
        return 0
    if not args.tracker or not args.candidates:
        parser.error("give a tracker and at least one NAME=WEIGHTS candidate")
    candidates = {}
    for item in args.candidates:
        name, sep, path = item.partition("=")
        if not sep or not Path(path).is_file():
            parser.error(f"candidate {item!r} is not NAME=WEIGHTS with an existing file")
        candidates[name] = Path(path)
    best = select(args.tracker, candidates, Path(args.out), Path(args.json))
    print(f"{args.tracker}: highest synth-val AUC: {best} ({candidates[best]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
