"""Online-update settings chosen on photos the networks never saw.

Usage (from the repository root)::

    python experiments/update_on_heldout.py run      # 5 OPE runs, 2 processes of one thread (~24 min on 2 cores)
    python experiments/update_on_heldout.py contrast # dimp's update with networks that saw the photos (4 runs, ~13 min)
    python experiments/update_on_heldout.py doc      # the docs tables from update_selection.json

Why. ``synth-val``, the split every earlier choice was made on, is drawn from the training photos. The IoU-Net
swap table (``experiments/component_swap.py``) found DiMP's online model update worth about +4 AUC there; its synth-test
column, which shows the update costing points on unseen photos, is what prompted this check, so this is the one
choice in the project whose *question* came from the test split. The answer must not: it is taken on
``val-heldout``, photos from the train list that the models used here never saw, and synth-test is only reported.

Models: the ``kept`` runs of the held-out-photo experiment (``experiments/heldout_photos.py``; ``cpu`` preset, seed 0,
trained on ``train-kept``, the 13 train photos less the 4 of ``HELD_OUT_PHOTOS``). The shipped files saw those 4
photos, so they cannot be scored on them; the assumption, stated here and not tested, is that which update setting
suits unseen photos carries over from these weaker networks to the shipped ones.

Candidates, per tracker (the update knobs of the official parameter files, and switching the update off):

- ``reference``: the defaults (``dimp18.py``: optimise every 20th frame with 2 iterations, 50 memory samples,
  learning rate 0.01; ATOM ``default.py``: every 10th frame, 1 Gauss-Newton x 5 CG iterations, 250 samples);
- ``vot18-online`` (``dimp`` only): ``dimp18_vot18.py``'s update, as in ``experiments/params_on_val.py``;
- ``first-frame``: ``update_classifier=False``, the first frame's model is kept for the whole sequence.

Data: 48 sequences planned like ``synth-val-heldout`` (its generator seed 0, twice its 24 sequences for power),
written once to ``results/update-heldout/data``. Each candidate is one OPE run, one torch thread, tracker seed 0.

The rule, fixed before the first run: per tracker, the reference stays unless a candidate is ahead of it beyond
doubt (the 95 % paired-bootstrap interval of the AUC difference over the 48 sequences lies above zero), as in
``experiments/params_on_val.py``; the best such candidate wins and becomes the setting the shipped weights are used
with.

Contrast (added after the selection, which it does not change): what DiMP's update is worth on the same sequences
with networks that *did* see the 4 photos: the experiment's ``full`` network (same preset and seed as ``kept``,
all 13 train photos) and the shipped file. ``kept`` against ``full`` isolates the photos; ``full`` against
``shipped`` the longer training.
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
from params_on_val import candidate_rows, decide  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "update-heldout"
DATA = OUT / "data"
SPLIT, NUM_SEQUENCES, SEED = "val-heldout", 48, 0
MODELS = ROOT / "results" / "train" / "holdout"

FIRST_FRAME = {"update_classifier": False}
CANDIDATES: dict[str, dict[str, dict[str, Any]]] = {
    "dimp": {"reference": {}, "vot18-online": {"train_skipping": 10, "net_opt_update_iter": 3, "net_opt_hn_iter": 3,
                                               "sample_memory_size": 250, "learning_rate": 0.0075,
                                               "init_samples_minimum_weight": 0.0},
             "first-frame": FIRST_FRAME},
    "atom": {"reference": {}, "first-frame": FIRST_FRAME},
}


CONTRAST = {"dimp": ("full", "shipped")}  # tracker -> networks that saw the val-heldout photos
SPLIT_OF = {"kept": "train-kept", "full": "train"}  # network -> the split it must have been trained on


def weights(tracker: str, network: str = "kept") -> Path:
    """``tracker``'s network: the held-out-photo experiment's ``kept`` or ``full`` run, or the ``shipped`` file."""
    if network == "shipped":
        from dimp_core.trackers import shipped_weights

        return shipped_weights(tracker)
    return MODELS / f"{tracker}-{network}" / f"{tracker}.safetensors"


def check_weights(tracker: str, network: str = "kept") -> dict[str, Any]:
    """The metadata of ``weights(tracker, network)``, after checking it exists and was trained on the split the
    experiment needs (``kept``: without the held-out photos)."""
    from dimp_core import checkpoints

    path = weights(tracker, network)
    if not path.is_file():
        raise SystemExit(f"missing {path}: run `python experiments/heldout_photos.py train` first")
    meta = checkpoints.load_checkpoint_info(path)
    split = meta["config"]["train_split"]
    if network in SPLIT_OF and split != SPLIT_OF[network]:
        raise SystemExit(f"{path} was trained on {split!r}, not {SPLIT_OF[network]!r}")
    return meta


def dataset_root() -> Path:
    """The 48 val-heldout sequences, generated on first use (a folder with another recipe is regenerated)."""
    from dimp_core.data.synthetic import benchmark_recipe, write_benchmark

    recipe = benchmark_recipe(SPLIT, NUM_SEQUENCES, seed=SEED)
    done = DATA / "recipe.json"
    if not (done.is_file() and json.loads(done.read_text()) == json.loads(json.dumps(recipe))):
        write_benchmark(DATA, SPLIT, NUM_SEQUENCES, seed=SEED, progress=True)
    return DATA


def run_candidate(tracker: str, name: str, network: str = "kept") -> dict[str, float]:
    """OPE of ``tracker``'s ``network`` with candidate ``name``; AUC per sequence."""
    import torch

    from dimp_core.data.benchmarks import load_otb
    from dimp_core.evaluation import evaluate, run_tracker
    from dimp_core.trackers import build_tracker

    torch.set_num_threads(1)
    dataset = load_otb(DATA, name=f"synth-{SPLIT}-{NUM_SEQUENCES}")
    label = f"{tracker}-{network}-{name}"
    if network == "shipped":  # reused result files must come from the file shipped now
        drop_stale_results(OUT / "results", [tracker], {tracker: label})
    tracker_obj = build_tracker(tracker, device="cpu", weights=str(weights(tracker, network)),
                                **CANDIDATES[tracker][name])
    run_tracker(tracker_obj, dataset, OUT / "results", tracker_name=label)
    summary = evaluate(dataset, OUT / "results", [label])["trackers"][label]
    return {seq: s["auc"] for seq, s in summary["sequences"].items()}


def run(json_path: Path, workers: int) -> dict[str, Any]:
    metas = {t: check_weights(t) for t in CANDIDATES}
    dataset_root()
    jobs = [(t, n) for t in CANDIDATES for n in CANDIDATES[t]]
    with ProcessPoolExecutor(workers) as pool:
        results = dict(zip(jobs, pool.map(run_candidate, *zip(*jobs, strict=True)), strict=True))
    data: dict[str, Any] = {"dataset": f"synth-{SPLIT}", "num_sequences": NUM_SEQUENCES, "generator_seed": SEED,
                            "trackers": {}}
    for tracker in CANDIDATES:
        entry = decide(CANDIDATES[tracker], {n: results[(t, n)] for t, n in jobs if t == tracker})
        entry["per_sequence"] = {n: results[(tracker, n)] for n in CANDIDATES[tracker]}
        meta = metas[tracker]
        entry["weights"] = {"path": str(weights(tracker).relative_to(ROOT)), "preset": meta["config"]["preset"],
                            "train_split": meta["config"]["train_split"], "git_commit": meta.get("git_commit")}
        data["trackers"][tracker] = entry
        print(f"{tracker}: {entry['selected']}  " + ", ".join(f"{n} {c['auc']:.1f}"
                                                             for n, c in entry["candidates"].items()))
    json_path.write_text(json.dumps(data, indent=1) + "\n")
    return data


def contrast(json_path: Path, workers: int) -> dict[str, Any]:
    """Default update against none, for the networks of ``CONTRAST``; added to the selection's JSON, whose own
    ``kept`` runs make the first row."""
    from dimp_core.checkpoints import training_runs
    from dimp_core.evaluation import paired_bootstrap

    data = json.loads(json_path.read_text())
    both = ("reference", "first-frame")
    jobs = [(t, n, net) for t, nets in CONTRAST.items() for net in nets for n in both]
    metas = {(t, net): check_weights(t, net) for t in CONTRAST for net in ("kept", *CONTRAST[t])}
    dataset_root()
    with ProcessPoolExecutor(workers) as pool:
        results = dict(zip(jobs, pool.map(run_candidate, *zip(*jobs, strict=True)), strict=True))
    results |= {(t, n, "kept"): data["trackers"][t]["per_sequence"][n] for t in CONTRAST for n in both}
    data["contrast"] = {}
    for (tracker, net), meta in metas.items():
        per = {n: results[(tracker, n, net)] for n in both}
        d = paired_bootstrap(per["reference"], per["first-frame"], "update", "no update")
        data["contrast"][f"{tracker}-{net}"] = {
            "auc": {n: sum(v.values()) / len(v) for n, v in per.items()}, "per_sequence": per,
            "update_worth": {"mean": d.mean, "low": d.low, "high": d.high, "p_positive": d.p_a_better},
            "train_split": meta["config"]["train_split"],
            "runs": [f"{r['config']['preset']} {r['config']['steps']} x {r['config']['batch_size']}"
                     for r in training_runs(meta)]}
    json_path.write_text(json.dumps(data, indent=1) + "\n")
    return data


def contrast_table(data: dict[str, Any]) -> str:
    rows = ["| `dimp` network | training runs | saw the 4 photos | AUC, default update | AUC, no update "
            "| update worth [95 % interval] | P(> 0) |", "|---|---|---|---:|---:|---:|---:|"]
    for name, c in data["contrast"].items():
        w = c["update_worth"]
        saw = "no" if c["train_split"] == "train-kept" else "yes"
        worth = f"{w['mean']:+.1f} [{w['low']:+.1f}, {w['high']:+.1f}]"
        rows.append(f"| {name.split('-', 1)[1]} | {' + '.join(c['runs'])} | {saw} | {c['auc']['reference']:.1f} "
                    f"| {c['auc']['first-frame']:.1f} | {worth} | {100 * w['p_positive']:.0f} % |")
    return "\n".join(rows)


def table(data: dict[str, Any]) -> str:
    rows = [f"| tracker (kept network) | update | {data['dataset']} AUC ({data['num_sequences']} sequences) "
            "| vs reference [95 % interval] | P(better) | selected |", "|---|---|---:|---:|---:|---|"]
    return "\n".join(rows + candidate_rows(data["trackers"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("run", "contrast", "doc"))
    parser.add_argument("--json", default=str(ROOT / "experiments" / "update_selection.json"))
    parser.add_argument("--workers", type=int, default=2, help="candidate runs in parallel (one thread each)")
    args = parser.parse_args(argv)
    json_path = Path(args.json)
    if args.command == "run":
        run(json_path, args.workers)
    elif args.command == "contrast":
        contrast(json_path, args.workers)
    else:
        data = json.loads(json_path.read_text())
        page = write_section("update-table", table(data))
        if "contrast" in data:
            write_section("update-contrast-table", contrast_table(data))
        print(f"updated the online-update tables in {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
