"""``dimp eval --trackers A,B --dataset SPEC --out DIR``: OPE of trackers on a dataset, with summary and plots."""

from __future__ import annotations

import argparse
from pathlib import Path


def run(args: argparse.Namespace) -> int:
    import torch

    from dimp_core.data.benchmarks import load_dataset
    from dimp_core.evaluation import evaluate, format_table, run_tracker, save_plots, write_summary
    from dimp_core.trackers import TRACKERS, build_tracker

    names = [n.strip() for n in args.trackers.split(",") if n.strip()]
    if not names:
        raise ValueError("--trackers needs at least one tracker name")
    unknown = [n for n in names if n not in TRACKERS]
    if unknown:
        raise ValueError(f"unknown tracker(s) {', '.join(unknown)}; choose from {', '.join(TRACKERS)}")
    weights = _parse_weights(args.weights, names)
    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be at least 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    dataset = load_dataset(args.dataset)
    out = Path(args.out)
    for name in names:
        extra = {"weights": weights[name]} if name in weights else {}
        run_tracker(build_tracker(name, device=args.device, **extra), dataset, out, tracker_name=name)
    summary = {**evaluate(dataset, out, names), "torch_threads": torch.get_num_threads()}
    write_summary(summary, out / "summary.json")
    save_plots(summary, out)
    print(format_table(summary))
    print(f"wrote {out / 'results'}, {out / 'summary.json'} and the plots in {out}")
    return 0


def _parse_weights(spec: str | None, names: list[str]) -> dict[str, str]:
    """``dimp=PATH,atom=random`` -> {'dimp': 'PATH', 'atom': 'random'}; names must be among the trackers run."""
    weights: dict[str, str] = {}
    for item in filter(None, (spec or "").split(",")):
        name, sep, value = item.partition("=")
        if not sep or name.strip() not in names:
            raise ValueError(f"--weights expects TRACKER=PATH for trackers in --trackers ({', '.join(names)}), "
                             f"got {item!r}")
        weights[name.strip()] = value.strip()
    return weights


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="run trackers over a benchmark (OPE) and report success/precision",
                       description="Run each tracker once over every sequence (one-pass evaluation, initialised "
                       "with the first ground-truth box), write results/<tracker>/<sequence>.txt and per-frame "
                       "times under --out (sequences already done are skipped), then write summary.json "
                       "(AUC, precision at 20 px, normalised precision at 0.20, success rate at IoU 0.5, FPS, "
                       "per-attribute and per-sequence AUC), success and precision plots, and print a markdown "
                       "table.")
    p.add_argument("--trackers", default="opencv-kcf,opencv-csrt",
                   help="comma-separated tracker names (default: %(default)s)")
    p.add_argument("--dataset", default="synth-test",
                   help="real-val (real video and photographs), synth-test, synth-val, synth-val-heldout, otb:PATH, "
                   "lasot:PATH, got10k:PATH[:val|test|train], "
                   "trackingnet:PATH[:TEST|TRAIN_n], or a benchmark folder PATH (default: %(default)s)")
    p.add_argument("--out", required=True, help="output folder, e.g. results/synth-test")
    p.add_argument("--weights", default=None,
                   help="weights per learned tracker, e.g. dimp=results/train/dimp-cpu/dimp.safetensors,atom=random "
                   "(default: the shipped weights)")
    p.add_argument("--device", default=None, help="torch device of the learned trackers (default: CUDA if available)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads on the CPU (default: PyTorch's, one per core). The boxes can depend on it: "
                   "the summation order of a convolution does, and ATOM's tracks amplify that last bit. "
                   "summary.json records the count (result files reused from an earlier run keep theirs)")
    p.set_defaults(func=run)
