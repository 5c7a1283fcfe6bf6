"""A 2 000-frame run of DiMP keeps its memory flat: the sample memory stays at its capacity, the tensors the
tracker holds (memory, filter, graph buffers, caches) do not grow, and neither do Python's allocations
(tracemalloc, over the last 600 frames) nor the process's resident set beyond allocator noise.

The run is cheap by construction: a 40-frame loop of a red box on noise at 160 x 120, search patches of 96 px,
2 refinement steps on 4 boxes, and the not-found threshold disabled so that every frame runs the whole pipeline
(scoring, localisation, IoU refinement, memory update, and the optimiser every 20th frame).
"""

from __future__ import annotations

import collections
import tracemalloc

import numpy as np
import pytest
import torch
from helpers import red_box_sequence

from dimp_core import build_tracker
from dimp_core.profiling.memory import MiB, rss_bytes, tensor_bytes
from dimp_core.trackers.localization import LocalizationParams
from dimp_core.trackers.refinement import RefinementParams

FRAMES = 2000
WARM = 200  # frames after which every buffer has its final size (the sample memory fills after 50 updates)
PERIOD = 40
TRACED = 600  # the last frames, traced by tracemalloc


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _loop() -> tuple[list[np.ndarray], tuple[float, ...]]:
    def path(t: int) -> tuple[float, float]:
        return 60 + 30 * np.sin(2 * np.pi * t / PERIOD), 40 + 15 * np.cos(2 * np.pi * t / PERIOD)

    frames, boxes = red_box_sequence(num=PERIOD, path=path, shape=(120, 160))
    return frames, boxes[0]


def test_two_thousand_frames_keep_memory_flat(one_thread):
    frames, box = _loop()
    tracker = build_tracker("dimp", device="cpu", image_sample_size=96,
                            localization=LocalizationParams(target_not_found_threshold=-1e9),
                            refinement=RefinementParams(num_init_random_boxes=3, box_refinement_iter=2))
    tracker.init(frames[0], box)
    capacity = tracker.params.sample_memory_size
    flags: collections.Counter[str] = collections.Counter()
    samples_shape = tuple(tracker.memory.samples.shape)
    try:
        for i in range(1, FRAMES + 1):
            tracker.update(frames[i % PERIOD])
            flags[tracker.info["flag"]] += 1
            assert "error" not in tracker.info, tracker.info["error"]
            if i == WARM:
                held, rss = tensor_bytes(tracker), rss_bytes()
            if i == FRAMES - TRACED:  # tracemalloc slows Python down: on for the last frames only
                tracemalloc.start()
                python_before = tracemalloc.take_snapshot()
        python_after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    updates = flags["normal"] + flags["hard_negative"]
    assert updates > FRAMES // 2, flags  # the memory update and the optimiser ran on most frames
    assert tracker.memory.num_stored == capacity and tuple(tracker.memory.samples.shape) == samples_shape
    assert tracker.frame_num == FRAMES + 1
    assert abs(tensor_bytes(tracker) - held) <= 64 * 1024, (tensor_bytes(tracker), held)
    growth = sum(s.size_diff for s in python_after.compare_to(python_before, "filename"))
    assert growth < MiB / 4, python_after.compare_to(python_before, "lineno")[:5]  # < 450 bytes a frame
    if rss is not None:  # a coarse guard (allocator noise); the held-tensor check above is the precise one
        assert rss_bytes() - rss < 64 * MiB


def test_tensor_bytes_counts_each_storage_once_and_sees_growth():
    class Holder:
        def __init__(self) -> None:
            self.buffer = torch.zeros(10, 25)  # 1 000 bytes
            self.view = self.buffer[2:]  # the same storage
            self.cache: dict[str, list[torch.Tensor]] = {"frames": []}

    holder = Holder()
    assert tensor_bytes(holder) == 1000
    holder.cache["frames"].append(torch.zeros(50))  # a cache that grows: 200 bytes a frame
    holder.cache["frames"].append(torch.zeros(50))
    assert tensor_bytes(holder) == 1400
    assert tensor_bytes(torch.nn.Linear(4, 2)) == (8 + 2) * 4
