"""Ablations of DiMP's model predictor (the paper's Table 1, scaled down), trained and scored the same way.

Every variant is the ``dimp`` training run with one change; all share the preset, the seed and so the very same
training batches, and are scored by one-pass evaluation on the synthetic test split:

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
ablations together (``tools/gpu_train.sh`` on a lent GPU machine).

Usage (from the repository root)::

    python tools/ablations.py train VARIANT --preset gpu --out results/ablations [--set JSON]
    python tools/ablations.py eval VARIANT --out results/ablations [--device cuda]
    python tools/ablations.py collect --out results/ablations --json data/ablations.json
    python tools/ablations.py readme --json data/ablations.json   # the README table
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- ablation-table:start -->", "<!-- ablation-table:end -->"

# variant -> (tracker trained, TrainConfig changes, network options, what it changes)
VARIANTS: dict[str, tuple[str, dict[str, Any], dict[str, Any], str]] = {
    "dimp": ("dimp", {}, {}, "DiMP as shipped: Gauss-Newton step, learned loss, 5 training iterations"),
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


def evaluate(variant: str, out: Path, device: str | None, sequences: int | None = None) -> dict[str, Any]:
    """OPE of the variant's weights on synth-test; writes and returns ``<out>/<variant>/eval/summary.json``."""
    from dimp_core.data.benchmarks import Dataset, load_dataset
    from dimp_core.evaluation import evaluate as score
    from dimp_core.evaluation import run_tracker, write_summary
    from dimp_core.trackers import build_tracker

    tracker = VARIANTS[variant][0]
    weights = weights_path(out, variant)
    if variant == "resnet18-scratch":
        tracker = "dimp18"
    dataset = load_dataset("synth-test")
    if sequences:
        dataset = Dataset(dataset.name, dataset.sequences[:sequences])
    eval_dir = out / variant / "eval"
    run_tracker(build_tracker(tracker, device=device, weights=str(weights)), dataset, eval_dir, tracker_name=variant)
    summary = score(dataset, eval_dir, [variant])
    write_summary(summary, eval_dir / "summary.json")
    return summary


def collect(out: Path) -> dict[str, Any]:
    """One JSON of every variant found under ``out``: test AUC / precision, validation AUC, how far it trained."""
    from dimp_core import checkpoints

    rows: dict[str, Any] = {}
    for variant, (_, changes, options, what) in VARIANTS.items():
        weights, summary_path = weights_path(out, variant), out / variant / "eval" / "summary.json"
        if not weights.exists() or not summary_path.exists():
            continue
        meta = checkpoints.load_checkpoint_info(weights)
        summary = json.loads(summary_path.read_text())["trackers"][variant]
        log = [json.loads(line) for line in (out / variant / "log.jsonl").read_text().splitlines()]
        rows[variant] = {
            "what": what, "config_changes": changes, "network_options": options,
            "test_auc": summary["auc"], "test_precision": summary["precision"],
            "val_auc": meta.get("val_auc"), "steps_done": meta.get("steps_done"), "steps": meta["config"]["steps"],
            "batch_size": meta["config"]["batch_size"], "preset": meta["config"]["preset"], "seed": meta["seed"],
            "wall_time_s": meta.get("wall_time_s"), "device": meta.get("device"), "git_commit": meta.get("git_commit"),
            "final_loss": next((e["total"] for e in reversed(log) if "total" in e), None),
        }
    import torch

    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    return {"dataset": "synth-test", "variants": rows, "gpu": gpu, "python": platform.python_version(),
            "torch": torch.__version__}


def table(data: dict[str, Any]) -> str:
    rows = ["| variant | what changes | steps done x batch | val AUC | test AUC | test P@20 |",
            "|---|---|---:|---:|---:|---:|"]
    for name, r in data["variants"].items():
        steps = f"{r['steps_done']}/{r['steps']} x {r['batch_size']}"
        val = "-" if r["val_auc"] is None else f"{r['val_auc']:.1f}"
        rows.append(f"| `{name}` | {r['what']} | {steps} | {val} | {r['test_auc']:.1f} | {r['test_precision']:.1f} |")
    return "\n".join(rows)


def write_readme(data: dict[str, Any], readme: Path = ROOT / "README.md") -> None:
    text = readme.read_text()
    if text.count(START) != 1 or text.count(END) != 1:
        raise ValueError(f"README must hold exactly one {START} ... {END} pair")
    head, rest = text.split(START)
    _, tail = rest.split(END)
    readme.write_text(f"{head}{START}\n{table(data)}\n{END}{tail}")


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
    p = sub.add_parser("collect")
    p.add_argument("--out", default="results/ablations")
    p.add_argument("--json", default="data/ablations.json")
    p = sub.add_parser("readme")
    p.add_argument("--json", default="data/ablations.json")
    args = parser.parse_args(argv)

    if args.cmd == "train":
        print(train(args.variant, args.preset, Path(args.out), json.loads(args.set or "{}"), args.device))
    elif args.cmd == "eval":
        summary = evaluate(args.variant, Path(args.out), args.device, args.sequences)
        print(json.dumps({args.variant: summary["trackers"][args.variant]["auc"]}))
    elif args.cmd == "collect":
        data = collect(Path(args.out))
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(data, indent=2) + "\n")
        print(f"wrote {args.json}: {', '.join(data['variants'])}")
    else:
        write_readme(json.loads(Path(args.json).read_text()))
        print("updated the ablation table in README.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
