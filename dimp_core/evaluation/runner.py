"""One-pass evaluation (OPE): run trackers over a dataset, write result files, score them.

Files under ``out_dir`` (the result-file contract of SPEC section 3, pytracking's layout for times)::

    results/<tracker>/<sequence>.txt        one "x,y,w,h" line per frame (%.3f), the first the initial box
    results/<tracker>/<sequence>_time.txt   seconds per frame (%.8f): init on frame 0, update after
    summary.json                            written by :func:`write_summary` (``summary`` module docstring)

OPE: each sequence starts with ``tracker.init(frame_0, ground_truth[0])`` and the tracker runs to the
end without re-initialisation. :func:`run_tracker` resumes: a sequence whose result file exists with
one line per frame is skipped, and result files are written only once a sequence is complete.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from tqdm import tqdm

from dimp_core.data.benchmarks import Dataset, Sequence, read_boxes
from dimp_core.evaluation.metrics import SequenceScores, score_sequence
from dimp_core.evaluation.summary import summarize_tracker


class TrackerLike(Protocol):
    """The got10k protocol: what :func:`run_tracker` needs of a tracker."""

    def init(self, image: np.ndarray, box: np.ndarray) -> None: ...

    def update(self, image: np.ndarray) -> Any: ...


# --------------------------------------------------------------------------- result files


def result_path(out_dir: str | Path, tracker_name: str, seq_name: str) -> Path:
    """``out_dir/results/<tracker>/<sequence>.txt``."""
    return Path(out_dir) / "results" / tracker_name / f"{seq_name}.txt"


def time_path(out_dir: str | Path, tracker_name: str, seq_name: str) -> Path:
    """``out_dir/results/<tracker>/<sequence>_time.txt``."""
    return Path(out_dir) / "results" / tracker_name / f"{seq_name}_time.txt"


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def write_results(path: Path, boxes: np.ndarray, times: np.ndarray | None = None,
                  times_file: Path | None = None) -> None:
    """Write (N, 4) boxes as comma-separated ``%.3f`` lines, and the (N,) times next to them."""
    if times is not None and times_file is not None:  # times first: the result file marks completion
        _write_atomically(times_file, "".join(f"{t:.8f}\n" for t in times))
    _write_atomically(path, "".join(",".join(f"{v:.3f}" for v in box) + "\n" for box in boxes))


def read_results(path: Path) -> np.ndarray:
    """A result file (comma- or tab-separated ``x,y,w,h`` lines) as an (N, 4) array."""
    if not path.is_file():
        raise FileNotFoundError(f"result file {path} not found (run the tracker first)")
    return read_boxes(path)


def read_times(path: Path) -> np.ndarray | None:
    """A ``_time.txt`` file as an (N,) array of seconds, None if there is none."""
    if not path.is_file():
        return None
    return np.asarray([float(v) for v in path.read_text().split()], dtype=np.float64)


def _count_lines(path: Path) -> int:
    with path.open() as f:
        return sum(1 for line in f if line.strip())


# --------------------------------------------------------------------------- running


def track_sequence(tracker: TrackerLike, seq: Sequence, on_frame: Callable[[], Any] | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Run ``tracker`` over ``seq`` once (OPE); returns boxes (N, 4), the first the initial box, and times (N,)."""
    boxes = np.zeros((len(seq), 4), dtype=np.float64)
    times = np.zeros(len(seq), dtype=np.float64)
    boxes[0] = seq.init_box
    for i, frame in enumerate(seq):
        start = time.perf_counter()
        if i == 0:
            tracker.init(frame, seq.init_box.copy())
        else:
            boxes[i] = tracker.update(frame)
        times[i] = time.perf_counter() - start
        if on_frame is not None:
            on_frame()
    return boxes, times


def run_tracker(tracker: TrackerLike | Callable[[], TrackerLike], dataset: Dataset | Iterable[Sequence],
                out_dir: str | Path, tracker_name: str | None = None, progress: bool = True) -> Path:
    """Run a tracker over every sequence of ``dataset`` and write its result and time files.

    Args:
        tracker: a tracker (``init``/``update``; re-initialised for every sequence) or a function that
            returns a fresh tracker, called once per sequence.
        dataset: the sequences.
        out_dir: evaluation folder; files go to ``out_dir/results/<tracker_name>/``.
        tracker_name: folder name of the results; defaults to ``tracker.name``.
        progress: show a tqdm bar over the frames of all sequences still to run.

    Returns:
        The folder holding the result files.
    """
    is_instance = hasattr(tracker, "init") and hasattr(tracker, "update")
    name = tracker_name or getattr(tracker, "name", None)
    if not name:
        raise ValueError("tracker_name is required for a tracker without a .name")
    todo = [seq for seq in dataset
            if not (result_path(out_dir, name, seq.name).is_file()
                    and _count_lines(result_path(out_dir, name, seq.name)) == len(seq))]
    with tqdm(total=sum(len(s) for s in todo), desc=name, unit="frame", disable=not progress) as bar:
        for seq in todo:
            bar.set_postfix_str(seq.name)
            instance = tracker if is_instance else tracker()  # type: ignore[operator]
            boxes, times = track_sequence(instance, seq, on_frame=lambda: bar.update(1))
            write_results(result_path(out_dir, name, seq.name), boxes, times, time_path(out_dir, name, seq.name))
    return Path(out_dir) / "results" / name


# --------------------------------------------------------------------------- scoring


def score_tracker(dataset: Dataset | Iterable[Sequence], out_dir: str | Path, tracker_name: str
                  ) -> dict[str, SequenceScores]:
    """Per-sequence scores of the result files of ``tracker_name`` under ``out_dir``."""
    scores = {}
    for seq in dataset:
        boxes = read_results(result_path(out_dir, tracker_name, seq.name))
        if len(boxes) != len(seq):
            raise ValueError(f"{tracker_name} on {seq.name}: {len(boxes)} result lines for {len(seq)} frames "
                             f"in {result_path(out_dir, tracker_name, seq.name)}")
        times = read_times(time_path(out_dir, tracker_name, seq.name))
        scores[seq.name] = score_sequence(boxes, seq.ground_truth, seq.visible, times)
    return scores


def evaluate(dataset: Dataset, out_dir: str | Path, tracker_names: Iterable[str]) -> dict[str, Any]:
    """The summary (``summary`` module docstring) of the result files of several trackers on ``dataset``."""
    attributes = {seq.name: seq.attributes for seq in dataset}
    return {
        "dataset": dataset.name,
        "num_sequences": len(dataset),
        "trackers": {name: summarize_tracker(score_tracker(dataset, out_dir, name), attributes)
                     for name in tracker_names},
    }


def write_summary(summary: dict[str, Any], path: str | Path) -> Path:
    """Write the summary as indented JSON."""
    path = Path(path)
    _write_atomically(path, json.dumps(summary, indent=2) + "\n")
    return path
