"""Frames per second and accuracy of every tracker and speed knob, side by side in one run, as JSON.

Usage (from the repository root)::

    python benchmarks/fps.py                                  # CPU suite, whole synthetic test split
    python benchmarks/fps.py --sequences 2 --frames 30        # a quick look
    python benchmarks/fps.py --suite gpu --device cuda --out $OUT/fps-gpu.json --profile-dir $OUT
    python benchmarks/fps.py --section data/benchmarks/cpu-2026-11-26.json  # the speed table of docs/speed.md
    python benchmarks/fps.py --section data/benchmarks/bench-cpu-2026-12-08.json  # its dimp bench table

Every configuration (a tracker, its weights and parameter overrides) runs over the same frames: for each
sequence the frames are decoded once into memory, then every configuration tracks them in turn (the order
rotates from sequence to sequence), so a machine that other jobs share slows all of them alike and the ratio
to OpenCV's CSRT, run in the same loop, is the number to compare across machines. FPS counts ``update``
only (decoding excluded, as pytracking and got10k count it); the first frame's ``init`` is reported apart.
AUC is the success AUC (x 100) over the frames tracked (a ``--frames`` limit truncates every sequence).

Suites:

- ``cpu``: OpenCV CSRT (the anchor) and KCF, ``dimp`` with the project's defaults, the reference-faithful
  settings (every exact speed knob off) and one knob changed at a time, the ``fast`` preset, ``atom`` and
  ``siamfc`` (shipped weights, or ``weights='random'`` labelled as such when none are shipped).
- ``gpu``: DiMP-18 (official architecture, random weights: no ResNet weights can ship) with the full
  pipeline forced on every frame (the not-found threshold is disabled, so the IoU refinement always runs),
  reference-faithful, with each exact knob added, the defaults (CUDA graphs on) and without CUDA graphs,
  bf16/fp16, refinement box by box, and the fast preset; ``dimp`` (Lite0, shipped weights) eager, default
  and fast; ``atom``; CSRT/KCF when this OpenCV has them. With ``--profile-dir`` it also writes ``dimp
  profile`` JSONs of DiMP-18 and ``dimp``.

The JSON (schema ``dimp-lab/fps/1``) holds the system (device, versions, threads, load), the frames used and
one record per configuration: fps, ms per frame (mean, median, p90), process CPU ms per frame (all threads;
less disturbed by other jobs than wall time), init ms, AUC (mean over sequences and per sequence), ratio to
the anchor, errors caught by the tracker (``info['error']``) and notes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # runnable as a script from a checkout that is not pip-installed
    sys.path.insert(0, str(ROOT))

SCHEMA = "dimp-lab/fps/1"
ANCHOR = "opencv-csrt"
SECTIONS = {"cpu": "speed-table", "gpu": "gpu-speed-table"}  # docs/speed.md sections: <!-- NAME:start --> ... end
PAPER_FPS = 57.0  # DiMP-18 on a GTX 1080 (a pytracking maintainer: https://github.com/visionml/pytracking/issues/231)


@dataclass
class Config:
    """One benchmarked configuration."""

    label: str
    tracker: str
    weights: str | None = None  # None: shipped; 'random': untrained
    params: dict[str, Any] = field(default_factory=dict)
    knob: str = ""  # what this configuration changes, for the tables
    note: str = ""


# --------------------------------------------------------------------------- configurations


def _exact_off() -> dict[str, Any]:
    """The reference-faithful settings: every exact speed knob off (the tracker as pytracking runs it)."""
    return {"inference_mode": False, "fuse_batchnorm": False, "channels_last": False, "cuda_graphs": False}


def weights_or_random(name: str) -> tuple[str | None, str]:
    """Shipped weights of ``name`` if the file exists, else 'random' with a note saying so."""
    from dimp_core.trackers import shipped_weights

    try:
        shipped_weights(name)
        return None, ""
    except FileNotFoundError:
        return "random", f"no shipped {name} weights: random (untrained) weights, speed only"


def opencv_available(name: str) -> bool:
    import cv2

    return hasattr(cv2, {"opencv-csrt": "TrackerCSRT_create", "opencv-kcf": "TrackerKCF_create"}[name])


def cpu_configs(with_compile: bool = False) -> list[Config]:
    from dimp_core.trackers.augmentation import AugmentationParams
    from dimp_core.trackers.dimp import preset_params
    from dimp_core.trackers.refinement import RefinementParams

    siamfc_weights, siamfc_note = weights_or_random("siamfc")
    configs = [
        Config("opencv-csrt", "opencv-csrt", knob="anchor"),
        Config("opencv-kcf", "opencv-kcf"),
        Config("dimp", "dimp", knob="defaults (exact knobs on)"),
        Config("dimp reference-faithful", "dimp", params=_exact_off(), knob="exact knobs off"),
        Config("dimp -inference_mode", "dimp", params={"inference_mode": False}, knob="no_grad, not inference_mode"),
        Config("dimp -fuse_batchnorm", "dimp", params={"fuse_batchnorm": False}, knob="BatchNorm not folded"),
        Config("dimp -channels_last", "dimp", params={"channels_last": False}, knob="NCHW"),
        Config("dimp +bf16", "dimp", params={"autocast": "bf16"}, knob="bf16 autocast"),
        Config("dimp refine per box", "dimp", params={"refinement": RefinementParams(batched=False)},
               knob="refinement box by box, not batched"),
        Config("dimp refine 3 steps", "dimp", params={"refinement": RefinementParams(box_refinement_iter=3)},
               knob="3 refinement steps (5)"),
        Config("dimp refine 5 boxes", "dimp", params={"refinement": RefinementParams(num_init_random_boxes=4)},
               knob="5 boxes refined (10)"),
        Config("dimp no refinement", "dimp", params={"use_iou_net": False}, knob="no IoU-Net"),
        Config("dimp 7 augmentations", "dimp", params={"augmentation": AugmentationParams(
            blur_sigmas=((2.0, 2.0),), rotations=(10.0, -10.0))}, knob="first frame: 9 patches (13)"),
        Config("dimp update every 40", "dimp", params={"train_skipping": 40}, knob="model update every 40th frame"),
        Config("dimp fast", "dimp", params=preset_params("fast"), knob="fast preset"),
        Config("atom", "atom"),
        Config("siamfc", "siamfc", weights=siamfc_weights, note=siamfc_note),
    ]
    if with_compile:
        configs.append(Config("dimp +compile", "dimp", params={"compile": True}, knob="torch.compile backbone"))
    return configs


def gpu_configs() -> list[Config]:
    from dimp_core.trackers.dimp import preset_params
    from dimp_core.trackers.localization import LocalizationParams
    from dimp_core.trackers.refinement import RefinementParams

    full = {"localization": LocalizationParams(target_not_found_threshold=-1e9)}  # never skip the refinement
    ref = {**full, **_exact_off()}
    note = "random weights (official DiMP-18 architecture); full pipeline forced on every frame"
    configs = [
        Config("dimp18 reference-faithful", "dimp18", "random", ref, "exact knobs off", note),
        Config("dimp18 +inference_mode", "dimp18", "random", {**ref, "inference_mode": True}, "inference_mode", note),
        Config("dimp18 +channels_last", "dimp18", "random", {**ref, "channels_last": True}, "channels-last", note),
        Config("dimp18 -cuda_graphs", "dimp18", "random", {**full, "cuda_graphs": False}, "eager (no CUDA graphs)",
               note),
        Config("dimp18", "dimp18", "random", full, "defaults (exact knobs and CUDA graphs on)", note),
        Config("dimp18 +bf16", "dimp18", "random", {**full, "autocast": "bf16"}, "bf16 autocast", note),
        Config("dimp18 +fp16", "dimp18", "random", {**full, "autocast": "fp16"}, "fp16 autocast", note),
        Config("dimp18 refine per box", "dimp18", "random", {**full, "refinement": RefinementParams(batched=False)},
               "refinement box by box", note),
        Config("dimp18 fast", "dimp18", "random", {**preset_params("fast"), **full}, "fast preset", note),
        Config("dimp -cuda_graphs", "dimp", params={"cuda_graphs": False}, knob="eager (no CUDA graphs)"),
        Config("dimp", "dimp", knob="defaults (CUDA graphs on)"),
        Config("dimp fast", "dimp", params=preset_params("fast"), knob="fast preset"),
        Config("atom", "atom"),
    ]
    return configs + [Config(name, name, knob="anchor" if name == ANCHOR else "") for name in (ANCHOR, "opencv-kcf")]


# --------------------------------------------------------------------------- running


def load_frames(seq: Any, limit: int | None) -> list[np.ndarray]:
    n = len(seq) if limit is None else min(limit, len(seq))
    return [seq.frame(i) for i in range(n)]


def run_config(tracker: Any, frames: list[np.ndarray], init_box: np.ndarray) -> dict[str, Any]:
    """Track ``frames`` (in memory); boxes, init seconds, update seconds and errors caught by the tracker."""
    from dimp_core.profiling.runner import run_sequence

    errors: list[str] = []

    def watched() -> Any:
        for frame in frames:
            yield frame
            error = getattr(tracker, "info", {}).get("error")
            if error:
                errors.append(error)

    boxes, init_s, times, cpu_times = run_sequence(tracker, watched(), init_box)
    sync = getattr(getattr(tracker, "device", None), "type", "cpu") == "cuda"
    if sync:  # update() returns a numpy box, so the GPU is idle here already; this is a belt and braces
        import torch

        torch.cuda.synchronize()
    return {"boxes": boxes, "init_s": init_s, "times": times, "cpu_times": cpu_times, "errors": errors}


def benchmark(configs: list[Config], dataset: Any, sequences: int | None, frames: int | None, device: str | None,
              warmup: int = 3, progress: bool = True,
              after_sequence: Any = None) -> list[dict[str, Any]]:
    """Run every configuration over the same frames (see the module docstring); one record per configuration.

    ``after_sequence(records)`` is called with the summary so far after every sequence (to save partial results).
    """
    from dimp_core.evaluation import score_sequence
    from dimp_core.profiling.runner import tracker_params
    from dimp_core.trackers import build_tracker

    records: dict[str, dict[str, Any]] = {}
    trackers: dict[str, Any] = {}
    for c in configs:
        rec = records[c.label] = {"label": c.label, "tracker": c.tracker, "knob": c.knob, "note": c.note,
                                  "weights": "shipped" if c.weights is None else c.weights,
                                  "overrides": {k: repr(v) for k, v in c.params.items()},
                                  "available": True, "times": [], "cpu_times": [], "init_ms": [], "auc": {},
                                  "errors": []}
        if c.tracker.startswith("opencv") and not opencv_available(c.tracker):
            rec.update(available=False, note="this OpenCV build has no contrib trackers")
            continue
        try:
            trackers[c.label] = build_tracker(c.tracker, device=device, weights=c.weights, **c.params)
        except (FileNotFoundError, ImportError, RuntimeError, ValueError) as err:
            rec.update(available=False, note=f"{type(err).__name__}: {err}"[:300])
            continue
        rec["params"] = tracker_params(trackers[c.label])
    seqs = list(dataset)[:sequences] if sequences else list(dataset)
    order = [c for c in configs if c.label in trackers]
    for s, seq in enumerate(seqs):
        seq_frames = load_frames(seq, frames)
        gt = seq.ground_truth[:len(seq_frames)]
        visible = None if seq.visible is None else seq.visible[:len(seq_frames)]
        rotated = order[s % len(order):] + order[:s % len(order)] if order else []
        for c in rotated:
            rec = records[c.label]
            try:
                out = run_config(trackers[c.label], seq_frames, seq.init_box)
            except Exception as err:  # noqa: BLE001 - e.g. init failing on this device: record, go on
                rec["errors"].append(f"{seq.name}: {err!r}"[:300])
                continue
            skip = warmup if len(out["times"]) > warmup + 1 else 0
            rec["times"] += list(out["times"][skip:])
            rec["cpu_times"] += list(out["cpu_times"][skip:])
            rec["init_ms"].append(out["init_s"] * 1000)
            rec["errors"] += out["errors"][:3]
            rec["auc"][seq.name] = 100 * score_sequence(out["boxes"], gt, visible).auc
            if progress:
                print(f"[{s + 1}/{len(seqs)}] {seq.name} {c.label}: {1 / max(np.mean(out['times']), 1e-9):.1f} FPS",
                      flush=True)
        if after_sequence is not None:
            after_sequence(summarize(configs, records, trackers))
    return summarize(configs, records, trackers)


def summarize(configs: list[Config], records: dict[str, dict[str, Any]], trackers: dict[str, Any]
              ) -> list[dict[str, Any]]:
    """The JSON records (fps, ms, AUC, ratio to the anchor) from the raw per-configuration data."""
    anchor_fps = None
    result = []
    for c in configs:
        rec = dict(records[c.label])
        times = np.asarray(rec.pop("times")) * 1000
        cpu_times = np.asarray(rec.pop("cpu_times")) * 1000
        if rec["available"] and len(times):
            rec.update(frames=int(len(times)), ms_mean=float(times.mean()), ms_median=float(np.median(times)),
                       ms_p90=float(np.percentile(times, 90)), fps=float(1000 / times.mean()),
                       cpu_ms_mean=float(cpu_times.mean()), fps_cpu_time=float(1000 / max(cpu_times.mean(), 1e-9)),
                       init_ms=float(np.median(rec["init_ms"])), auc=dict(rec["auc"]),
                       auc_mean=float(np.mean(list(rec["auc"].values()))))
            if c.tracker == ANCHOR:
                anchor_fps = rec["fps"]
            graph_status = getattr(trackers.get(c.label), "graph_status", None)
            if graph_status not in (None, "off"):
                rec["graph_status"] = graph_status
        else:
            rec["init_ms"] = None
        rec["errors"] = list(rec["errors"])
        rec["error_count"] = len(rec["errors"])
        result.append(rec)
    anchor = next((r for r in result if r["tracker"] == ANCHOR and r.get("fps")), None)
    for rec in result:
        rec["ratio_to_anchor"] = rec["fps"] / anchor_fps if anchor_fps and rec.get("fps") else None
        rec["ratio_to_anchor_cpu_time"] = (rec["fps_cpu_time"] / anchor["fps_cpu_time"]
                                           if anchor is not None and rec.get("fps_cpu_time") else None)
    return result


def write_profiles(out_dir: Path, device: str | None, frames: int, dataset: str) -> list[Path]:
    """``dimp profile`` JSONs of DiMP-18 (reference-faithful and fast) and dimp, into ``out_dir``."""
    from dimp_core.profiling.runner import profile_tracker
    from dimp_core.trackers.dimp import preset_params
    from dimp_core.trackers.localization import LocalizationParams

    full = {"localization": LocalizationParams(target_not_found_threshold=-1e9)}
    runs = [("profile-dimp18-reference.json", "dimp18 reference-faithful", "dimp18", "random",
             {**full, **_exact_off()}),
            ("profile-dimp18-fast.json", "dimp18 fast", "dimp18", "random", {**preset_params("fast"), **full}),
            ("profile-dimp.json", "dimp", "dimp", None, {})]
    paths = []
    out_dir.mkdir(parents=True, exist_ok=True)
    for filename, label, name, weights, params in runs:
        try:
            report = profile_tracker(name, device=device, frames=frames, warmup=min(5, frames - 2), weights=weights,
                                     params=params, dataset=dataset)
        except Exception as err:  # noqa: BLE001 - one failed profile must not lose the others
            report = {"schema": "dimp-lab/profile/1", "tracker": name, "error": repr(err)}
        report["label"] = label
        report["overrides"] = {k: repr(v) for k, v in params.items()}
        path = out_dir / filename
        path.write_text(json.dumps(report, indent=1) + "\n")
        paths.append(path)
        print(f"wrote {path}", flush=True)
    return paths


def synth_subset(count: int) -> str:
    """The first ``count`` sequences of the synthetic test split that this machine can render, generated into
    ``$DIMP_LAB_DATA/synth-test-first<count>`` if missing; returns an ``otb:PATH`` dataset spec.

    They are synth-test's own sequences (same names, seeds, frames). A sequence whose source photo cannot be
    loaded here (scikit-learn's photos on a machine without scikit-learn, say) is skipped, with a message.
    """
    from dimp_core.data.synthetic import benchmark_plan, benchmark_root, make_sequence, write_sequence

    root = benchmark_root("test").with_name(f"synth-test-first{count}")
    if not (root / "attributes.json").exists():
        written: dict[str, list[str]] = {}
        for spec in benchmark_plan("test"):
            try:
                seq = make_sequence(spec.seed, "test", spec.attributes, spec.num_frames, name=spec.name)
            except Exception as err:  # noqa: BLE001 - a missing optional photo source: take the next sequence
                print(f"synth subset: skipping {spec.name} ({err!r})", flush=True)
                continue
            write_sequence(seq, root)
            written[spec.name] = list(spec.attributes)
            if len(written) == count:
                break
        (root / "attributes.json").write_text(json.dumps(written, indent=1) + "\n")
    return f"otb:{root}"


# --------------------------------------------------------------------------- docs table


def speed_table(report: dict[str, Any]) -> str:
    """The markdown speed table of a benchmark JSON."""
    sysinfo = report["system"]
    threads = sysinfo["torch_threads"]
    load = sysinfo.get("load_average")
    load_note = f", load average {load[0]:.1f} (a shared machine)" if load and load[0] > 1.5 else ""
    lines = [f"Measured {report['system']['time'][:10]} on {sysinfo['device_name']} ({report['device']}, "
             f"{threads} torch thread{'' if threads == 1 else 's'}, torch {sysinfo['torch']}{load_note}), "
             f"{report['frames_timed_note']}; `python benchmarks/fps.py{report.get('command_args', '')}`. "
             "FPS counts update() only; CPU-time columns use the process CPU time per frame.", "",
             "| configuration | what changes | FPS | x CSRT | FPS (CPU time) | x CSRT (CPU time) | init ms | AUC |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    anchor = next((r for r in report["results"] if r["tracker"] == ANCHOR and r.get("cpu_ms_mean")), None)
    for r in report["results"]:
        if not r.get("available") or "fps" not in r:
            lines.append(f"| {r['label']} | {r['knob'] or '-'} | n/a | | | | | ({r['note']}) |")
            continue
        ratio = f"{r['ratio_to_anchor']:.2f}" if r.get("ratio_to_anchor") else "-"
        fps_cpu = 1000 / r["cpu_ms_mean"]
        ratio_cpu = f"{anchor['cpu_ms_mean'] / r['cpu_ms_mean']:.2f}" if anchor else "-"
        weights = " (random weights)" if r["weights"] == "random" else ""
        lines.append(f"| `{r['label']}`{weights} | {r['knob'] or '-'} | {r['fps']:.1f} | {ratio} | "
                     f"{fps_cpu:.1f} | {ratio_cpu} | {r['init_ms']:.0f} | {r['auc_mean']:.1f} |")
    return "\n".join(lines)


def doc_section(report: dict[str, Any]) -> str:
    """The table between ``<!-- speed-table:start/end -->`` (a CPU run) or ``gpu-speed-table`` (a CUDA run)."""
    name = SECTIONS["gpu" if str(report.get("device", "cpu")).startswith("cuda") else "cpu"]
    return f"<!-- {name}:start -->\n{speed_table(report)}\n<!-- {name}:end -->"


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--device", default=None, help="torch device of the learned trackers (default: cpu for "
                        "the cpu suite, cuda for the gpu suite)")
    parser.add_argument("--sequences", type=int, default=None, help="first N sequences (default: all)")
    parser.add_argument("--frames", type=int, default=None, help="first N frames of each sequence (default: all)")
    parser.add_argument("--warmup", type=int, default=3, help="updates per sequence not timed (default: 3)")
    parser.add_argument("--dataset", default="synth-test", help="dataset spec (default: synth-test)")
    parser.add_argument("--synth-subset", type=int, default=None,
                        help="generate only the first N synth-test sequences (faster) and use them")
    parser.add_argument("--only", default=None, help="comma-separated labels to run (the anchor runs too)")
    parser.add_argument("--no-anchor", action="store_true",
                        help="leave out OpenCV CSRT (for accuracy-only sweeps; no ratios then)")
    parser.add_argument("--compile", action="store_true", help="also benchmark torch.compile (slow to start)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--out", default=None, help="JSON path (default: data/benchmarks/<suite>-<date>.json)")
    parser.add_argument("--profile-dir", default=None, help="also write dimp profile JSONs there")
    parser.add_argument("--profile-frames", type=int, default=40)
    parser.add_argument("--section", default=None, metavar="JSON",
                        help="print the docs/speed.md section of a benchmark JSON (of this script or of "
                        "`dimp bench`) and exit")
    args = parser.parse_args(argv)

    if args.section:
        report = json.loads(Path(args.section).read_text())
        if report.get("schema") == "dimp-lab/bench/1":  # a `dimp bench` JSON: its own table
            from dimp_core.profiling.bench import doc_section as bench_section

            print(bench_section(report))
        else:
            print(doc_section(report))
        return 0

    import torch

    from dimp_core.data.benchmarks import load_dataset

    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device or ("cuda" if args.suite == "gpu" else "cpu")
    dataset_spec = synth_subset(args.synth_subset) if args.synth_subset else args.dataset
    dataset = load_dataset(dataset_spec)
    configs = cpu_configs(args.compile) if args.suite == "cpu" else gpu_configs()
    if args.only:
        wanted = {w.strip() for w in args.only.split(",")}
        configs = [c for c in configs if c.label in wanted or c.tracker == ANCHOR]
    if args.no_anchor:
        configs = [c for c in configs if c.tracker != ANCHOR]
    start = time.time()
    used = list(dataset)[:args.sequences] if args.sequences else list(dataset)
    default_out = ROOT / "data" / "benchmarks" / f"{args.suite}-{time.strftime('%Y-%m-%d')}.json"
    out = Path(args.out) if args.out else default_out
    out.parent.mkdir(parents=True, exist_ok=True)

    def save(results: list[dict[str, Any]], partial: bool) -> dict[str, Any]:
        report = make_report(args, argv, device, dataset_spec, used, results, time.time() - start, partial)
        out.write_text(json.dumps(report, indent=1) + "\n")
        return report

    if args.profile_dir:  # first: the per-stage profiles are short and must not be lost to a time limit
        write_profiles(Path(args.profile_dir), device, args.profile_frames, dataset_spec)
    results = benchmark(configs, dataset, args.sequences, args.frames, device, args.warmup,
                        after_sequence=lambda r: save(r, True))
    report = save(results, False)
    print(speed_table(report))
    print(f"wrote {out}")
    return 0


def make_report(args: argparse.Namespace, argv: list[str] | None, device: str, dataset_spec: str, used: list[Any],
                results: list[dict[str, Any]], wall_s: float, partial: bool) -> dict[str, Any]:
    from dimp_core.profiling.runner import system_info

    return {
        "schema": SCHEMA,
        "suite": args.suite,
        "device": device,
        "system": system_info(device),
        "dataset": dataset_spec,
        "sequences": [s.name for s in used],
        "frames_limit": args.frames,
        "warmup": args.warmup,
        "frames_timed_note": f"{len(used)} sequences of synth-test" + (f", first {args.frames} frames each"
                                                                      if args.frames else ""),
        "command_args": " " + " ".join(argv if argv is not None else sys.argv[1:]),
        "paper_fps": PAPER_FPS,
        "wall_s": wall_s,
        "partial": partial,
        "anchor": None if args.no_anchor else ANCHOR,
        "results": results,
    }


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
