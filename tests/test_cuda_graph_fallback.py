"""The default CUDA-graph path of DiMP, checked on the CPU: its plumbing and its fallback give the eager boxes.

CUDA graphs need a CUDA device, so the CPU tests pretend one: ``accel.cuda_graphs_supported`` is patched to
say yes, and ``accel.GraphedCall`` is replaced either by a capture that raises (capture unavailable: the
tracker must warn once and track eagerly) or by an eager stand-in with a graph's semantics (fixed input and
output buffers, overwritten by each call), which runs the graph path's bookkeeping without a GPU.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
from helpers import red_box_sequence, track_frames
from torch import Tensor

from dimp_core import build_tracker
from dimp_core.profiling import accel
from dimp_core.trackers import dimp as dimp_module
from dimp_core.trackers.atom import ATOMParams
from dimp_core.trackers.dimp import DiMPParams, preset_params

SIZE = 160


class FailingCapture:
    """A capture that is not possible here (as on a driver or build without graph support)."""

    def __init__(self, fn: Callable[..., Any], example_inputs: Sequence[Tensor], warmup: int = 3) -> None:
        raise RuntimeError("CUDA graph capture unavailable (simulated)")


class EagerReplay:
    """``GraphedCall``'s contract without CUDA: fixed input buffers, fixed output buffers overwritten per call."""

    calls = 0

    def __init__(self, fn: Callable[..., Any], example_inputs: Sequence[Tensor], warmup: int = 3) -> None:
        self.fn = fn
        self.inputs = [x.detach().clone() for x in example_inputs]
        self.outputs = tuple(o.clone() for o in fn(*self.inputs))

    def __call__(self, *inputs: Tensor) -> Any:
        EagerReplay.calls += 1
        for static, x in zip(self.inputs, inputs, strict=True):
            static.copy_(x)
        for static, out in zip(self.outputs, self.fn(*self.inputs), strict=True):
            static.copy_(out)
        return self.outputs


@pytest.fixture(scope="module")
def frames_box() -> tuple[list[np.ndarray], tuple[float, ...]]:
    frames, boxes = red_box_sequence(num=10)
    return frames, boxes[0]


@pytest.fixture(scope="module")
def eager_boxes(frames_box) -> np.ndarray:
    frames, box = frames_box
    tracker = build_tracker("dimp", device="cpu", weights="random", image_sample_size=SIZE, cuda_graphs=False)
    return track_frames(tracker, frames, box)[0]


@pytest.fixture
def pretend_cuda(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setattr(accel, "cuda_graphs_supported", lambda device: True)
    monkeypatch.setattr(dimp_module, "_capture_warned", False)
    return monkeypatch


def test_defaults_are_auto_graphs_and_batched_refinement():
    assert DiMPParams().cuda_graphs == "auto"
    assert DiMPParams().refinement.batched and ATOMParams().refinement.batched
    assert preset_params("fast")["refinement"].batched
    tracker = build_tracker("dimp", device="cpu", weights="random", image_sample_size=SIZE)
    assert tracker.graph_status == "off" and not tracker.use_graphs  # on the CPU the knob does nothing
    with pytest.raises(ValueError, match="cuda_graphs must be"):
        DiMPParams(cuda_graphs="always")


def test_capture_unavailable_falls_back_to_the_eager_boxes_with_one_warning(pretend_cuda, frames_box, eager_boxes):
    pretend_cuda.setattr(accel, "GraphedCall", FailingCapture)
    frames, box = frames_box
    tracker = build_tracker("dimp", device="cpu", weights="random", image_sample_size=SIZE)
    assert tracker.use_graphs and tracker.graph_status == "pending"
    with pytest.warns(RuntimeWarning, match="capture of 'frame' failed .* running eagerly") as caught:
        out, infos = track_frames(tracker, frames, box)
    assert len([w for w in caught if issubclass(w.category, RuntimeWarning)]) == 1
    assert tracker.graph_status.startswith("failed") and "unavailable" in tracker.graph_status
    assert not tracker.use_graphs and not tracker._graphs
    assert all("error" not in info for info in infos)
    np.testing.assert_allclose(out, eager_boxes, atol=1e-6)

    second = build_tracker("dimp", device="cpu", weights="random", image_sample_size=SIZE)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the message is printed once per process, not once per tracker
        np.testing.assert_allclose(track_frames(second, frames, box)[0], eager_boxes, atol=1e-6)
    assert second.graph_status.startswith("failed")


def test_graph_path_is_captured_in_init_and_gives_the_eager_boxes(pretend_cuda, frames_box, eager_boxes):
    pretend_cuda.setattr(accel, "GraphedCall", EagerReplay)
    frames, box = frames_box
    tracker = build_tracker("dimp", device="cpu", weights="random", image_sample_size=SIZE)
    EagerReplay.calls = 0
    tracker.init(frames[0], box)
    assert set(tracker._graphs) == {"frame", "refine"} and tracker.graph_status == "on"  # warm-up done in init
    assert EagerReplay.calls == 0
    out = [np.asarray(box, dtype=float)] + [tracker.update(f) for f in frames[1:]]
    assert EagerReplay.calls >= len(frames) - 1  # every update replayed the frame graph
    np.testing.assert_allclose(np.array(out), eager_boxes, atol=1e-4)
    tracker.init(frames[0], box)  # a second sequence reuses the graphs (no new capture, no growth)
    assert set(tracker._graphs) == {"frame", "refine"}


def test_graph_path_without_iou_net_captures_only_the_frame(pretend_cuda, frames_box):
    pretend_cuda.setattr(accel, "GraphedCall", EagerReplay)
    frames, box = frames_box
    make = lambda **p: build_tracker("dimp", device="cpu", weights="random", image_sample_size=SIZE,  # noqa: E731
                                     use_iou_net=False, **p)
    graphed = make()
    out = track_frames(graphed, frames, box)[0]
    assert set(graphed._graphs) == {"frame"}
    np.testing.assert_allclose(out, track_frames(make(cuda_graphs=False), frames, box)[0], atol=1e-4)
