"""The accuracy cost of every CPU speed knob on real-val: per-sequence AUC, the paired bootstrap against the
current defaults and the FPS ratio to OpenCV CSRT, measured side by side in one run, as one JSON.

Usage (from the repository root; the full real-val takes about an hour on one thread of the 2-core CPU)::

    OMP_NUM_THREADS=1 python benchmarks/knob_accuracy.py                          # all knobs, all of real-val
    OMP_NUM_THREADS=1 python benchmarks/knob_accuracy.py --sequences 2 --frames 20 --out /tmp/knobs.json

The configurations are the ``dimp`` rows of the CPU knob table (``benchmarks/fps.py``'s ``cpu_configs``: the
defaults, the reference-faithful settings, each knob changed alone, and the ``fast`` preset) plus OpenCV CSRT as
the speed anchor; they run over the same frames with the order rotating from sequence to sequence
(``benchmarks/fps.py``'s ``benchmark``). For each configuration other than the defaults, the JSON (schema
``dimp-lab/knob-accuracy/1``) holds its AUC per sequence, :func:`~dimp_core.evaluation.significance.
paired_bootstrap` of (configuration - defaults) over the sequences, its FPS and ratio to CSRT (wall clock and
process CPU time), and ``verdict``: ``no measurable cost`` when the mean difference is at least -0.5 AUC points
and the 95 % interval reaches 0 or above, else ``accuracy cost``. The script decides nothing: the defaults are
changed by hand, from this JSON, and only where the verdict says so.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # runnable as a script from a checkout that is not pip-installed
    sys.path.insert(0, str(ROOT))

SCHEMA = "dimp-lab/knob-accuracy/1"
BASELINE = "dimp"  # the current defaults
TOLERANCE = 0.5  # AUC points: the largest loss a knob may cost and still count as free
RULE = (f"no measurable cost: mean(knob - defaults) >= -{TOLERANCE} AUC points and the 95 % paired-bootstrap "
        "interval's upper end >= 0; else accuracy cost")


def _fps_module() -> Any:
    """``benchmarks/fps.py`` (a script beside this one, not a package module)."""
    if "fps_benchmark" in sys.modules:
        return sys.modules["fps_benchmark"]
    spec = importlib.util.spec_from_file_location("fps_benchmark", Path(__file__).with_name("fps.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules["fps_benchmark"] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def knob_configs(only: set[str] | None = None) -> list[Any]:
    """CSRT (the anchor), the defaults and every other ``dimp`` configuration of the CPU knob table."""
    fps = _fps_module()
    configs = [c for c in fps.cpu_configs() if c.tracker == fps.ANCHOR or c.tracker == "dimp"]
    if only:
        unknown = only - {c.label for c in configs}
        if unknown:
            raise ValueError(f"unknown configuration(s) {', '.join(sorted(unknown))}; choose from "
                             + ", ".join(c.label for c in configs))
        configs = [c for c in configs if c.label in only or c.label == BASELINE or c.tracker == fps.ANCHOR]
    return configs


def verdicts(results: list[dict[str, Any]], resamples: int = 10_000) -> list[dict[str, Any]]:
    """Per configuration: AUCs, the paired bootstrap against the defaults, speed ratios and the verdict."""
    from dimp_core.evaluation.significance import paired_bootstrap

    base = next((r for r in results if r["label"] == BASELINE and r.get("auc")), None)
    rows = []
    for r in results:
        if r["tracker"] != "dimp" or not r.get("auc"):
            continue
        row = {k: r.get(k) for k in ("label", "knob", "overrides", "auc", "auc_mean", "fps", "fps_cpu_time",
                                     "ratio_to_anchor", "ratio_to_anchor_cpu_time", "init_ms", "frames",
                                     "error_count")}
        if base is not None and r["label"] != BASELINE:
            diff = paired_bootstrap(r["auc"], base["auc"], r["label"], BASELINE, resamples=resamples)
            row["vs_defaults"] = {"mean": diff.mean, "low": diff.low, "high": diff.high,
                                  "p_better": diff.p_a_better, "sequences": diff.sequences, "level": diff.level}
            row["speedup_vs_defaults"] = r["fps"] / base["fps"] if base.get("fps") and r.get("fps") else None
            free = diff.mean >= -TOLERANCE and diff.high >= 0
            row["verdict"] = "no measurable cost" if free else "accuracy cost"
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="real-val", help="dataset spec (default: %(default)s)")
    parser.add_argument("--sequences", type=int, default=None, help="first N sequences (default: all)")
    parser.add_argument("--frames", type=int, default=None, help="first N frames of each sequence (default: all)")
    parser.add_argument("--warmup", type=int, default=3, help="updates per sequence not timed (default: 3)")
    parser.add_argument("--only", default=None, help="comma-separated labels (the defaults and CSRT always run)")
    parser.add_argument("--threads", type=int, default=1, help="torch and OpenCV threads (default: %(default)s)")
    parser.add_argument("--resamples", type=int, default=10_000, help="bootstrap resamples (default: %(default)s)")
    parser.add_argument("--out", default=None,
                        help="JSON path (default: data/benchmarks/knob-accuracy-<dataset>-<date>.json)")
    args = parser.parse_args(argv)

    import cv2
    import torch

    from dimp_core.data.benchmarks import load_dataset
    from dimp_core.profiling.runner import system_info

    fps = _fps_module()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)  # CSRT gets as many threads as the trackers it is the anchor of
    only = {w.strip() for w in args.only.split(",") if w.strip()} if args.only else None
    configs = knob_configs(only)
    dataset = load_dataset(args.dataset)
    used = list(dataset)[:args.sequences] if args.sequences else list(dataset)
    out = Path(args.out) if args.out else (ROOT / "data" / "benchmarks" /
                                           f"knob-accuracy-{args.dataset}-{time.strftime('%Y-%m-%d')}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    start = time.time()

    def save(results: list[dict[str, Any]], partial: bool) -> None:
        report = {"schema": SCHEMA, "dataset": args.dataset, "sequences": [s.name for s in used],
                  "frames_limit": args.frames, "warmup": args.warmup, "device": "cpu",
                  "system": {**system_info("cpu"), "cv2_threads": cv2.getNumThreads()},
                  "command_args": " ".join(argv if argv is not None else sys.argv[1:]), "baseline": BASELINE,
                  "anchor": fps.ANCHOR, "rule": RULE, "tolerance_auc": TOLERANCE, "partial": partial,
                  "wall_s": time.time() - start, "configurations": verdicts(results, args.resamples),
                  "anchor_result": next((r for r in results if r["tracker"] == fps.ANCHOR), None)}
        out.write_text(json.dumps(report, indent=1) + "\n")

    results = fps.benchmark(configs, dataset, args.sequences, args.frames, "cpu", args.warmup,
                            after_sequence=lambda r: save(r, True))
    save(results, False)
    for row in verdicts(results, args.resamples):
        diff = row.get("vs_defaults")
        ratio = f"{row['ratio_to_anchor']:.2f}x CSRT" if row.get("ratio_to_anchor") else "no CSRT ratio"
        cost = (f", {diff['mean']:+.2f} [{diff['low']:+.2f}, {diff['high']:+.2f}] vs defaults: {row['verdict']}"
                if diff else " (the defaults)")
        print(f"{row['label']:26s} AUC {row['auc_mean']:5.1f}, {row['fps']:5.1f} FPS, {ratio}{cost}")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
