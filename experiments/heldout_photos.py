"""The held-out-photo experiment: what does each tracker lose on photos its offline training never saw?

Usage (from the repository root)::

    python experiments/heldout_photos.py train [--preset cpu]   # 4 runs in 2 lanes of one thread (~65 min on 2 cores)
    python experiments/heldout_photos.py score                  # OPE + one-shot test on synth-val-heldout -> JSON
    python experiments/heldout_photos.py doc                    # the docs table from heldout_photos.json

``dimp`` and ``atom`` each train twice with the same preset and seed: once on the train split (all 13 train
photos, ``full``) and once on ``train-kept``, the same random stream without the 4 photos of ``HELD_OUT_PHOTOS``
(``kept``; :mod:`dimp_core.data.synthetic`). All four are scored on ``synth-val-heldout``: 24 sequences planned
like synth-val, made of those 4 photos only. On these sequences ``full`` has seen the photos and ``kept`` has not,
everything else being equal, so per sequence ``full - kept`` is what not having seen the photos costs a tracker.
If DiMP's trained classification features learn the training photos' appearance, the cost is larger for ``dimp``
than for ``atom``, whose online classifier works on the ImageNet backbone features. Two measures: the tracking
AUC, and the one-shot hit rate of :mod:`dimp_core.evaluation.discrimination` (first-frame model, no updates, many
more trials). Differences are paired over the 24 sequences (:func:`~dimp_core.evaluation.paired_bootstrap`).
The test split plays no part. Fixed before the first run: the hit rate is the primary measure (the AUC turns
on single frames), and the hypothesis counts as supported only if the interval of dimp's cost minus atom's
lies above zero.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))  # the shared doc_section, make_eval_table
from doc_section import write_section  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "results" / "train" / "holdout"
DATASET = "synth-val-heldout"
TRACKERS = ("dimp", "atom")
VARIANTS = {"full": "train", "kept": "train-kept"}  # variant -> TrainConfig.train_split


def weights(tracker: str, variant: str) -> Path:
    return RUNS / f"{tracker}-{variant}" / f"{tracker}.safetensors"


def train(preset: str) -> None:
    """Two lanes (full, kept) of one torch thread each: dimp, then atom."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    lanes = []
    for variant, split in VARIANTS.items():
        cmds = [f"dimp train --tracker {t} --preset {preset} --out {RUNS / f'{t}-{variant}'} "
                f"--set '{json.dumps({'num_threads': 1, 'train_split': split})}' "
                f"> {RUNS / f'{t}-{variant}.out'} 2>&1" for t in TRACKERS]
        RUNS.mkdir(parents=True, exist_ok=True)
        lanes.append(subprocess.Popen(" && ".join(cmds), shell=True, env=env, cwd=ROOT))
    codes = [lane.wait() for lane in lanes]
    if any(codes):
        raise SystemExit(f"a training lane failed (exit codes {codes}); see {RUNS}/*.out")


def _score_one(job: tuple[str, str]) -> dict[str, Any]:
    import torch

    from dimp_core.data.benchmarks import load_dataset
    from dimp_core.evaluation import evaluate, run_tracker
    from dimp_core.evaluation.discrimination import first_frame_discrimination
    from dimp_core.trackers import build_tracker

    tracker, variant = job
    torch.set_num_threads(1)
    dataset = load_dataset(DATASET)
    out, label = ROOT / "results" / DATASET, f"{tracker}-{variant}"
    path = weights(tracker, variant)
    run_tracker(build_tracker(tracker, device="cpu", weights=str(path)), dataset, out, tracker_name=label)
    auc = {s: v["auc"] for s, v in evaluate(dataset, out, [label])["trackers"][label]["sequences"].items()}
    fresh = build_tracker(tracker, device="cpu", weights=str(path))
    hit = {seq.name: 100 * first_frame_discrimination(fresh, seq).summary()["hit_rate"] for seq in dataset}
    from dimp_core import checkpoints

    meta = checkpoints.load_checkpoint_info(path)
    return {"auc": auc, "hit_rate": hit, "train_split": meta["config"]["train_split"],
            "preset": meta["config"]["preset"], "steps": meta.get("steps_done", meta["config"]["steps"]),
            "wall_time_s": meta.get("wall_time_s"), "git_commit": meta.get("git_commit")}


def score(json_path: Path, workers: int) -> dict[str, Any]:
    from concurrent.futures import ProcessPoolExecutor

    jobs = [(t, v) for t in TRACKERS for v in VARIANTS]
    missing = [str(weights(*j)) for j in jobs if not weights(*j).is_file()]
    if missing:
        raise SystemExit(f"missing weights (run `train` first): {', '.join(missing)}")
    with ProcessPoolExecutor(workers) as pool:
        runs = dict(zip([f"{t}-{v}" for t, v in jobs], pool.map(_score_one, jobs), strict=True))
    data = {"dataset": DATASET, "runs": runs, "summary": summarise(runs)}
    json_path.write_text(json.dumps(data, indent=1) + "\n")
    return data


def summarise(runs: dict[str, Any]) -> dict[str, Any]:
    """Per measure: each run's mean, each tracker's cost (full - kept) and dimp's cost minus atom's, with
    paired intervals over the sequences."""
    from dimp_core.evaluation import paired_bootstrap

    def interval(a: dict[str, float], b: dict[str, float], na: str, nb: str) -> dict[str, float]:
        d = paired_bootstrap(a, b, na, nb)
        return {"mean": d.mean, "low": d.low, "high": d.high, "p_positive": d.p_a_better}

    out: dict[str, Any] = {}
    for measure in ("auc", "hit_rate"):
        per = {name: run[measure] for name, run in runs.items()}
        cost = {t: {s: per[f"{t}-full"][s] - per[f"{t}-kept"][s] for s in per[f"{t}-full"]} for t in TRACKERS}
        zero = dict.fromkeys(cost["dimp"], 0.0)
        out[measure] = {"mean": {n: sum(v.values()) / len(v) for n, v in per.items()},
                        "cost": {t: interval(cost[t], zero, t, "none") for t in TRACKERS},
                        "dimp_cost_minus_atom_cost": interval(cost["dimp"], cost["atom"], "dimp", "atom")}
    return out


def table(data: dict[str, Any]) -> str:
    s = data["summary"]
    rows = ["| measure on synth-val-heldout | `dimp` full | `dimp` kept | cost to `dimp` | `atom` full | `atom` kept "
            "| cost to `atom` | dimp's cost - atom's |", "|---|---:|---:|---:|---:|---:|---:|---:|"]

    def ci(d: dict[str, float]) -> str:
        return f"{d['mean']:+.1f} [{d['low']:+.1f}, {d['high']:+.1f}]"

    for measure, label in (("auc", "tracking AUC"), ("hit_rate", "one-shot hit rate (%)")):
        m = s[measure]
        mean = m["mean"]
        rows.append(f"| {label} | {mean['dimp-full']:.1f} | {mean['dimp-kept']:.1f} | {ci(m['cost']['dimp'])} "
                    f"| {m['mean']['atom-full']:.1f} | {m['mean']['atom-kept']:.1f} | {ci(m['cost']['atom'])} "
                    f"| {ci(m['dimp_cost_minus_atom_cost'])} |")
    run = data["runs"]["dimp-full"]
    rows.append(f"\nAll four runs: `{run['preset']}` preset, {run['steps']} steps, seed 0, one torch thread each, two "
                "at a time on the 2-core CPU; intervals: 95 % paired bootstrap over the 24 sequences.")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("train", "score", "doc"))
    parser.add_argument("--preset", default="cpu", help="training preset of the four runs (default cpu)")
    parser.add_argument("--workers", type=int, default=2, help="runs scored in parallel (one thread each)")
    parser.add_argument("--json", default=str(ROOT / "experiments" / "heldout_photos.json"))
    args = parser.parse_args(argv)
    json_path = Path(args.json)
    if args.command == "train":
        train(args.preset)
        return 0
    data = score(json_path, args.workers) if args.command == "score" else json.loads(json_path.read_text())
    write_section("heldout-table", table(data))
    print(table(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
