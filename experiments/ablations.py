"""Ablations of DiMP's model predictor (the paper's Table 1, scaled down), trained and scored the same way.

Every variant is the ``dimp`` training run with one change; all share the preset, the seed and so the very same
training batches, and are scored by one-pass evaluation on the validation split (``synth-val``, 24 sequences)
and the test split (``synth-test``):

* ``fixed-step``: plain gradient descent with one learned, data-independent step size instead of the
  Gauss-Newton step length (same number of iterations). Its step starts at 0.05, the typical Gauss-Newton
  alpha of the untrained network (0.007-0.18 measured on training batches), so it starts neither unstable
  nor frozen.
* ``l2-loss``: a plain least-squares loss with a fixed Gaussian label, no target mask, uniform weight, instead
  of the learned label, mask and spatial weight.
* ``train-iter-0`` / ``train-iter-2``: 0 or 2 optimiser iterations at training time instead of 5 (tracking
  always runs the tracker's own iteration counts).
* ``resnet18-scratch``: not an ablation of the predictor but of the backbone: DiMP-18's ResNet-18 trained
  from random weights (no ImageNet weights can be downloaded here) at the reference's backbone rate 2e-4.

``atom`` and ``siamfc`` runs use the same preset, so one call trains the project's three trackers and the
ablations together (``tools/gpu_train.sh`` on a GPU machine).

Usage (from the repository root)::

    python experiments/ablations.py train VARIANT --preset gpu --out results/ablations [--set JSON]
    python experiments/ablations.py eval VARIANT --out results/ablations [--device cuda] [--dataset synth-val]
    python experiments/ablations.py collect --out results/ablations --preset gpu [--json JSON] [--keep OLD]
    python experiments/ablations.py doc      # the table in docs/experiments.md, from experiments/ablations.json
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

# variant -> (tracker trained, TrainConfig changes, network options, what it changes)
VARIANTS: dict[str, tuple[str, dict[str, Any], dict[str, Any], str]] = {
    "dimp": ("dimp", {}, {}, "the baseline: Gauss-Newton step, learned loss, 5 training iterations"),
    "fixed-step": ("dimp", {}, {"optim_step_rule": "fixed", "optim_init_step": 0.05},
                   "plain gradient descent, one learned fixed step size"),
    "l2-loss": ("dimp", {}, {"optim_loss": "l2"}, "plain L2 loss, Gaussian label, no mask, uniform weight"),
    "train-iter-0": ("dimp", {}, {"optim_iter": 0}, "0 optimiser iterations in training (initialiser only)"),
    "train-iter-2": ("dimp", {}, {"optim_iter": 2}, "2 optimiser iterations in training"),
    "resnet18-scratch": ("dimp", {"network": "dimp18", "lr_backbone": 2e-4}, {},
                         "ResNet-18 backbone trained from scratch (DiMP-18 architecture)"),
    "atom": ("atom", {}, {}, "ATOM (IoU-Net on the same Lite0 backbone)"),
    "siamfc": ("siamfc", {}, {}, "SiamFC (Lite0 embedding)"),
}
ABLATIONS = ("dimp", "fixed-step", "l2-loss", "train-iter-0", "train-iter-2")


def weights_path(out: Path, variant: str) -> Path:
    return out / variant / f"{VARIANTS[variant][0]}.safetensors"


def train(variant: str, preset_name: str, out: Path, overrides: dict[str, Any], device: str | None) -> Path:
    from dimp_core.train import preset
    from dimp_core.train import train as run

    tracker, changes, options, _ = VARIANTS[variant]
    config = preset(tracker, preset_name, **{**changes, **overrides}, network_options=options)
    return run(config, out / variant, device=device, progress=False)


EVAL_DIRS = {"synth-test": "eval", "synth-val": "eval-val"}  # where each dataset's results go, under the run


def evaluate(variant: str, out: Path, device: str | None, sequences: int | None = None,
             dataset_name: str = "synth-test") -> dict[str, Any]:
    """OPE of the variant's weights on ``dataset_name`` (synth-test or synth-val); writes and returns
    ``<out>/<variant>/eval/summary.json`` (``eval-val`` for synth-val)."""
    from dimp_core.data.benchmarks import Dataset, load_dataset
    from dimp_core.evaluation import evaluate as score
    from dimp_core.evaluation import run_tracker, write_summary
    from dimp_core.trackers import build_tracker

    tracker = VARIANTS[variant][0]
    weights = weights_path(out, variant)
    if variant == "resnet18-scratch":
        tracker = "dimp18"
    dataset = load_dataset(dataset_name)
    if sequences:
        dataset = Dataset(dataset.name, dataset.sequences[:sequences])
    eval_dir = out / variant / EVAL_DIRS[dataset_name]
    run_tracker(build_tracker(tracker, device=device, weights=str(weights)), dataset, eval_dir, tracker_name=variant)
    summary = score(dataset, eval_dir, [variant])
    write_summary(summary, eval_dir / "summary.json")
    return summary


def _summary(out: Path, variant: str, dataset_name: str) -> dict[str, Any] | None:
    path = out / variant / EVAL_DIRS[dataset_name] / "summary.json"
    return json.loads(path.read_text())["trackers"][variant] if path.exists() else None


def _versus_dimp(out: Path, variant: str, dataset_name: str) -> dict[str, float] | None:
    """The variant's AUC minus the ``dimp`` run's on ``dataset_name``: mean over sequences and the 95 % paired
    bootstrap interval (:mod:`dimp_core.evaluation.significance`); None unless both were scored there."""
    from dimp_core.evaluation import paired_bootstrap

    mine, base = _summary(out, variant, dataset_name), _summary(out, "dimp", dataset_name)
    if variant == "dimp" or mine is None or base is None:
        return None
    d = paired_bootstrap({k: v["auc"] for k, v in mine["sequences"].items()},
                         {k: v["auc"] for k, v in base["sequences"].items()}, variant, "dimp")
    return {"mean": d.mean, "low": d.low, "high": d.high, "p_higher": d.p_a_better}


def collect(out: Path, preset_name: str, hardware: str | None = None,
            keep: dict[str, Any] | None = None) -> dict[str, Any]:
    """One JSON of every variant trained under ``out``, from its log (and its summaries where it was scored):
    validation AUC at every validation step (6 short sequences, during training), how far it trained, AUC on
    synth-val (24 sequences) and AUC / precision on synth-test. DiMP variants not trained under ``out`` are
    copied from ``keep`` (an earlier JSON of this function), each row saying which run it comes from."""
    from dimp_core.train import preset

    rows: dict[str, Any] = {}
    for variant, (tracker, changes, options, what) in VARIANTS.items():
        log_path = out / variant / "log.jsonl"
        if not log_path.exists():
            if keep and variant in keep["variants"] and tracker == "dimp":  # DiMP variants only, not atom/siamfc
                rows[variant] = {"run": keep.get("hardware"), **keep["variants"][variant]}
            continue
        log = [json.loads(line) for line in log_path.read_text().splitlines()]
        steps = [e for e in log if "total" in e]
        summary, val = _summary(out, variant, "synth-test"), _summary(out, variant, "synth-val")
        rows[variant] = {"run": hardware,
            "what": what, "config_changes": changes, "network_options": options,
            "steps": preset(tracker, preset_name, **changes).steps, "steps_done": steps[-1]["step"] if steps else 0,
            "stopped_early": any(e.get("stopped_early") for e in log),
            "train_seconds": steps[-1]["seconds"] if steps else None,
            "val_auc": {str(e["step"]): e["val_auc"] for e in log if "val_auc" in e},
            "synth_val_auc": val["auc"] if val else None,
            "synth_val_vs_dimp": _versus_dimp(out, variant, "synth-val"),
            "test_vs_dimp": _versus_dimp(out, variant, "synth-test"),
            "test_auc": summary["auc"] if summary else None,
            "test_precision": summary["precision"] if summary else None,
        }
    return {"dataset": "synth-test", "preset": preset_name, "hardware": hardware, "variants": rows}


def table(data: dict[str, Any]) -> str:
    """Markdown: training-time validation AUC at the last validation step every run reached and at the end of each
    run, then AUC on synth-val and synth-test where the run was scored, with the difference to ``dimp`` and its
    95 % paired-bootstrap interval in brackets."""
    histories = [set(r["val_auc"]) for r in data["variants"].values()]
    shared = max((int(k) for k in set.intersection(*histories)), default=None) if histories else None

    def cell(value: float | None, versus: dict[str, float] | None = None) -> str:
        if value is None:
            return "-"
        if not versus:
            return f"{value:.1f}"
        return f"{value:.1f} ({versus['mean']:+.1f} [{versus['low']:+.1f}, {versus['high']:+.1f}])"

    rows = [f"| variant | what changes | steps done | training val AUC @{shared} | final training val AUC "
            "| synth-val AUC | synth-test AUC | synth-test P@20 |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for name, r in data["variants"].items():
        done = f"{r['steps_done']}/{r['steps']}" + (" (time limit)" if r["stopped_early"] else "")
        final = r["val_auc"][max(r["val_auc"], key=int)] if r["val_auc"] else None
        rows.append(f"| `{name}` | {r['what']} | {done} | {cell(r['val_auc'].get(str(shared)))} | {cell(final)} "
                    f"| {cell(r.get('synth_val_auc'), r.get('synth_val_vs_dimp'))} "
                    f"| {cell(r['test_auc'], r.get('test_vs_dimp'))} | {cell(r['test_precision'])} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    for cmd in ("train", "eval"):
        p = sub.add_parser(cmd)
        p.add_argument("variant", choices=sorted(VARIANTS))
        p.add_argument("--out", default="results/ablations")
        p.add_argument("--device", default=None)
        if cmd == "train":
            p.add_argument("--preset", default="cpu", choices=("smoke", "cpu", "gpu"))
            p.add_argument("--set", default=None, help="JSON of TrainConfig changes, e.g. '{\"steps\": 100}'")
        else:
            p.add_argument("--sequences", type=int, default=None, help="only the first N sequences (quick checks)")
            p.add_argument("--dataset", default="synth-test", choices=sorted(EVAL_DIRS))
    p = sub.add_parser("collect")
    p.add_argument("--out", default="results/ablations")
    p.add_argument("--preset", default="gpu", choices=("smoke", "cpu", "gpu"))
    p.add_argument("--hardware", default=None, help="what the runs trained on, recorded in the JSON")
    p.add_argument("--json", default="experiments/ablations.json")
    p.add_argument("--keep", default=None, help="an earlier JSON: its variants not trained under --out are kept")
    p = sub.add_parser("doc")
    p.add_argument("--json", default="experiments/ablations.json")
    args = parser.parse_args(argv)

    if args.cmd == "train":
        print(train(args.variant, args.preset, Path(args.out), json.loads(args.set or "{}"), args.device))
    elif args.cmd == "eval":
        summary = evaluate(args.variant, Path(args.out), args.device, args.sequences, args.dataset)
        print(json.dumps({args.variant: summary["trackers"][args.variant]["auc"]}))
    elif args.cmd == "collect":
        keep = json.loads(Path(args.keep).read_text()) if args.keep else None
        data = collect(Path(args.out), args.preset, args.hardware, keep)
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(data, indent=2) + "\n")
        print(f"wrote {args.json}: {', '.join(data['variants'])}")
    else:
        page = write_section("ablation-table", table(json.loads(Path(args.json).read_text())))
        print(f"updated the ablation table in {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
