"""Per-stage wall-clock timing that the trackers call around their stages, a no-op unless profiling is on.

A tracker wraps each stage of its frame in ``with stage("backbone"): ...``. Outside :func:`recording` the
call returns one shared ``nullcontext`` (a dictionary lookup and nothing else), so the trackers pay no
price and read like the paper. Inside ``with recording(device) as timer:`` each stage's wall time is
added to the current frame's entry; on a CUDA device the timer calls ``torch.cuda.synchronize()`` on
entering and leaving a stage, so a stage is charged for its own kernels and not for the ones queued
before it (this serialises the GPU, so a profiled run is a little slower than an unprofiled one).

``clock="thread"`` times with the calling thread's CPU time instead of the wall clock: on a CPU that other
jobs share, and with one torch thread, that is what a stage would take on an idle core (with more torch
threads it would miss the work of the others, so the runner refuses that combination).

Stages may nest (``"iou_refinement"`` inside nothing, say, but a tracker may also time a sub-stage); the
timer records every name it sees, so nested names simply overlap: only top-level stages should be summed.
"""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict
from collections.abc import Iterator

import torch

__all__ = ["StageTimer", "paused", "recording", "stage"]

CLOCKS = {"wall": time.perf_counter, "thread": time.thread_time}
_NULL = contextlib.nullcontext()
_ACTIVE: StageTimer | None = None


class StageTimer:
    """Wall time per stage and per frame: ``frames[i][name]`` is the seconds spent in ``name`` in frame i."""

    def __init__(self, device: torch.device | str = "cpu", clock: str = "wall") -> None:
        if clock not in CLOCKS:
            raise ValueError(f"clock must be one of {', '.join(CLOCKS)}, got {clock!r}")
        self.device = torch.device(device)
        self.sync = self.device.type == "cuda"
        self.clock = CLOCKS[clock]
        self.frames: list[dict[str, float]] = [defaultdict(float)]

    def synchronize(self) -> None:
        if self.sync:
            torch.cuda.synchronize(self.device)

    def next_frame(self) -> None:
        """Start the entry of the next frame."""
        self.frames.append(defaultdict(float))

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self.synchronize()
        start = self.clock()
        try:
            yield
        finally:
            self.synchronize()
            self.frames[-1][name] += self.clock() - start


def stage(name: str) -> contextlib.AbstractContextManager:
    """Time the enclosed block as stage ``name`` when a :func:`recording` is active; otherwise do nothing."""
    return _NULL if _ACTIVE is None else _ACTIVE.stage(name)


@contextlib.contextmanager
def recording(device: torch.device | str = "cpu", clock: str = "wall") -> Iterator[StageTimer]:
    """Switch stage timing on for the enclosed block; yields the :class:`StageTimer` that collects it."""
    global _ACTIVE
    previous, _ACTIVE = _ACTIVE, StageTimer(device, clock)
    try:
        yield _ACTIVE
    finally:
        _ACTIVE = previous


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """Switch stage timing off for the enclosed block (CUDA-graph capture, where synchronising is an error)."""
    global _ACTIVE
    previous, _ACTIVE = _ACTIVE, None
    try:
        yield
    finally:
        _ACTIVE = previous
