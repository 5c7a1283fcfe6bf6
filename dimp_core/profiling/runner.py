"""``dimp profile``: where the milliseconds of one frame go, per stage, as JSON.

A tracker runs over the first frames of a few sequences of a benchmark (the synthetic test split by
default) with stage timing on (:func:`~dimp_core.profiling.timer.recording`; CUDA-synchronised on a GPU).
Frames are read from disk one at a time and that time is the ``decode`` stage; it is not part of the
tracker's time. The first ``warmup`` updates of every sequence (lazy initialisation, cuDNN autotuning, CUDA
graph capture, ``torch.compile``) are left out of the statistics; the first frame (``init``) is reported
separately.

Per stage the JSON holds the median and 90th percentile over the frames in which the stage ran, how many
frames that was, and the mean per frame over all frames (what the stage costs on average; the model update,
say, runs every 20th frame). ``other`` is the part of an update no stage accounts for (Python glue). FPS is
frames per second of ``update`` alone, the convention of pytracking and got10k.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import sys
import time
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch

from dimp_core.profiling.timer import StageTimer, recording, stage

SCHEMA = "dimp-lab/profile/1"
STAGE_ORDER = ("decode", "patch_extraction", "backbone", "features_graph", "classification_features", "scoring",
               "localization", "iou_features", "iou_refinement", "memory_update", "optimizer")


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (Linux) or platform.processor()."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def system_info(device: torch.device | str = "cpu") -> dict[str, Any]:
    """Device name, library versions and thread counts, for the JSON of a timing run."""
    device = torch.device(device)
    try:
        import cv2

        cv2_version = cv2.__version__
        has_contrib = hasattr(cv2, "TrackerCSRT_create") or hasattr(getattr(cv2, "legacy", None), "TrackerCSRT_create")
    except ImportError:  # pragma: no cover - a dependency
        cv2_version, has_contrib = None, False
    info = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": np.__version__,
        "cv2": cv2_version,
        "cv2_contrib": has_contrib,
        "platform": platform.platform(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if device.type == "cuda":
        info["cuda"] = torch.version.cuda
        info["cudnn"] = torch.backends.cudnn.version()
    return info


def tracker_params(tracker: Any) -> dict[str, Any] | None:
    """The tracker's parameter dataclass as a JSON-able dict (None for trackers without one)."""
    params = getattr(tracker, "params", None)
    if params is None or not dataclasses.is_dataclass(params):
        return None
    return _jsonable(dataclasses.asdict(params))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def run_sequence(tracker: Any, frames: Iterable[np.ndarray], init_box: np.ndarray,
                 timer: StageTimer | None = None) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    """Run ``tracker`` over ``frames`` (an iterable: decoding happens inside the ``decode`` stage).

    Returns the boxes (N, 4) (the first is ``init_box``), the seconds of ``init``, the seconds of each
    ``update`` (N - 1,) and the process CPU seconds of each (all threads; on a machine that other jobs share,
    the less disturbed number). Seconds are wall seconds, or the timer's clock with a ``timer``, whose frame 0
    then holds the stages of ``init`` and frame i those of update i (plus ``decode``).
    """
    sync = timer.synchronize if timer is not None else (lambda: None)
    clock = timer.clock if timer is not None else time.perf_counter
    init_box = np.array(init_box, dtype=np.float64)  # a writable copy (ground truth arrays are read-only)
    it = iter(frames)
    with stage("decode"):
        first = next(it)
    sync()
    start = clock()
    tracker.init(first, init_box)
    sync()
    init_s = clock() - start
    boxes, times, cpu_times = [np.asarray(init_box, dtype=np.float64)], [], []
    while True:
        if timer is not None:
            timer.next_frame()
        with stage("decode"):
            frame = next(it, None)
        if frame is None:
            if timer is not None:
                timer.frames.pop()
            break
        start, cpu_start = clock(), time.process_time()
        boxes.append(np.asarray(tracker.update(frame), dtype=np.float64))
        sync()
        times.append(clock() - start)
        cpu_times.append(time.process_time() - cpu_start)
        if timer is not None:
            timer.frames[-1]["update"] = times[-1]
    return np.stack(boxes), init_s, np.asarray(times), np.asarray(cpu_times)


def stage_stats(entries: Sequence[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Per stage: median and p90 (ms) over the frames where it ran, those frames, and the mean per frame."""
    names = {k for e in entries for k in e}
    order = [n for n in STAGE_ORDER if n in names] + sorted(names - set(STAGE_ORDER) - {"update"})
    out: dict[str, dict[str, float]] = {}
    n = max(len(entries), 1)
    for name in order:
        ran = np.array([e[name] for e in entries if name in e]) * 1000
        out[name] = {"median_ms": float(np.median(ran)), "p90_ms": float(np.percentile(ran, 90)),
                     "mean_per_frame_ms": float(ran.sum() / n), "frames": int(len(ran))}
    if entries and all("update" in e for e in entries):
        covered = [sum(v for k, v in e.items() if k in names and k not in ("update", "decode")) for e in entries]
        other = np.array([e["update"] - c for e, c in zip(entries, covered, strict=True)]) * 1000
        out["other"] = {"median_ms": float(np.median(other)), "p90_ms": float(np.percentile(other, 90)),
                        "mean_per_frame_ms": float(other.mean()), "frames": int(len(other))}
    return out


def profile_tracker(name: str, device: str | None = None, frames: int = 50, sequences: int = 1, warmup: int = 5,
                    weights: str | None = None, params: dict[str, Any] | None = None,
                    dataset: Any = "synth-test", tracker: Any = None, clock: str = "wall") -> dict[str, Any]:
    """Per-stage timings of tracker ``name`` on the first ``frames`` frames of ``sequences`` sequences.

    Args:
        name: a tracker of :func:`~dimp_core.trackers.build_tracker`.
        device: torch device (None: CUDA if available).
        frames: frames per sequence, the first one included (it initialises the tracker).
        sequences: how many sequences of ``dataset``, from the first.
        warmup: updates per sequence left out of the statistics.
        weights: as ``build_tracker``'s (None: shipped; 'random': untrained).
        params: parameter overrides (``build_tracker(**params)``).
        dataset: a spec of :func:`~dimp_core.data.benchmarks.load_dataset`, or a loaded dataset.
        tracker: an already built tracker to use instead of building ``name``.
        clock: ``wall`` or ``thread`` (CPU time of the calling thread; only with one torch thread on a CPU).

    Returns:
        The JSON-able report (schema ``dimp-lab/profile/1``, see the module docstring).
    """
    from dimp_core.data.benchmarks import load_dataset
    from dimp_core.trackers import build_tracker

    if frames < 2:
        raise ValueError(f"frames must be at least 2 (one init, one update), got {frames}")
    if not 0 <= warmup < frames - 1:
        raise ValueError(f"warmup must lie in [0, frames - 1), got {warmup} with frames={frames}")
    if tracker is None:
        tracker = build_tracker(name, device=device, weights=weights, **(params or {}))
    dev = torch.device(getattr(tracker, "device", "cpu"))
    if clock == "thread" and (dev.type != "cpu" or torch.get_num_threads() != 1):
        raise ValueError("clock='thread' measures one thread's CPU time: use it on the CPU with one torch thread")
    data = load_dataset(dataset) if isinstance(dataset, str) else dataset
    if sequences < 1 or sequences > len(data):
        raise ValueError(f"sequences must lie in [1, {len(data)}], got {sequences}")
    entries: list[dict[str, float]] = []
    init_entries: list[dict[str, float]] = []
    update_times: list[float] = []
    init_times: list[float] = []
    seq_names = []
    for seq in list(data)[:sequences]:
        n = min(frames, len(seq))
        with recording(dev, clock) as timer:
            _, init_s, times, _ = run_sequence(tracker, (seq.frame(i) for i in range(n)), seq.init_box, timer)
        init_entries.append(dict(timer.frames[0]))
        entries += [dict(e) for e in timer.frames[1 + warmup:]]
        update_times += list(times[warmup:])
        init_times.append(init_s)
        seq_names.append(seq.name)
    ms = np.array(update_times) * 1000
    return {
        "schema": SCHEMA,
        "tracker": name,
        "weights": "shipped" if weights is None else str(weights),
        "device": str(dev),
        "system": system_info(dev),
        "params": tracker_params(tracker),
        "graph_status": getattr(tracker, "graph_status", None),
        "dataset": dataset if isinstance(dataset, str) else getattr(dataset, "name", "custom"),
        "sequences": seq_names,
        "frames_per_sequence": frames,
        "warmup": warmup,
        "frames_timed": int(len(ms)),
        "clock": clock,
        "update": {"median_ms": float(np.median(ms)), "p90_ms": float(np.percentile(ms, 90)),
                   "mean_ms": float(ms.mean()), "fps": float(1000 / ms.mean())},
        "init": {"median_ms": float(np.median(init_times) * 1000), "stages": stage_stats(init_entries)},
        "stages": stage_stats(entries),
    }


def format_profile(report: dict[str, Any]) -> str:
    """A plain-text table of a :func:`profile_tracker` report."""
    clock = " (thread CPU time)" if report.get("clock") == "thread" else ""
    lines = [f"{report['tracker']} on {report['system']['device_name']} ({report['device']}, "
             f"{report['system']['torch_threads']} threads){clock}: {report['update']['fps']:.1f} FPS, "
             f"update median {report['update']['median_ms']:.1f} ms, p90 {report['update']['p90_ms']:.1f} ms, "
             f"init {report['init']['median_ms']:.0f} ms",
             f"{'stage':26s} {'median ms':>10s} {'p90 ms':>8s} {'mean/frame':>11s} {'frames':>7s}"]
    for name, s in report["stages"].items():
        lines.append(f"{name:26s} {s['median_ms']:10.2f} {s['p90_ms']:8.2f} {s['mean_per_frame_ms']:11.2f} "
                     f"{s['frames']:7d}")
    return "\n".join(lines)
