"""The machinery behind the speed knobs of the trackers: an inference copy of a network, mixed precision,
CUDA graphs and ``torch.compile``. Each knob is a field of the tracker's parameter dataclass
(:class:`~dimp_core.trackers.dimp.DiMPParams`); this module only implements them.

- :func:`inference_copy`: a copy of the network with every BatchNorm folded into the convolution before it
  (exact up to float rounding) and, optionally, channels-last weights (NHWC, what oneDNN and cuDNN prefer).
  The network passed in is never modified, so a tracker can run on a network that is being trained.
- :func:`autocast`: ``torch.autocast`` for ``"bf16"``/``"fp16"``, a no-op for ``"none"``. Its weight cache is
  off, as CUDA-graph capture requires.
- :class:`GraphedCall`: a function of fixed-shape tensors captured once in a CUDA graph; a call copies the new
  inputs into the captured buffers and replays the graph (one launch instead of hundreds). The outputs are
  the graph's own buffers, overwritten by the next call. :func:`cuda_graphs_supported` says whether a device
  can capture at all (the trackers' ``cuda_graphs="auto"`` asks it).
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from dimp_core.nets.backbones import fold_batchnorm
from dimp_core.profiling.timer import paused

__all__ = ["AUTOCAST_DTYPES", "GraphedCall", "autocast", "cuda_graphs_supported", "inference_copy"]

AUTOCAST_DTYPES = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def cuda_graphs_supported(device: torch.device) -> bool:
    """Whether CUDA-graph capture can be tried on ``device``: a CUDA device of a CUDA build of torch."""
    return device.type == "cuda" and torch.cuda.is_available()


def inference_copy(net: nn.Module, device: torch.device, fuse_batchnorm: bool, channels_last: bool,
                   compile_backbone: bool = False) -> nn.Module:
    """``net`` on ``device`` in eval mode without gradients; a copy when any option changes it.

    Without options this is ``net`` itself (moved, eval, frozen), as the trackers always did. Options:
    fold the BatchNorms (:func:`~dimp_core.nets.backbones.fold_batchnorm`), channels-last weights, and
    ``torch.compile`` of ``net.feature_extractor`` (inductor; compiled at the first call of each shape).
    """
    if fuse_batchnorm or channels_last or compile_backbone:
        net = copy.deepcopy(net)
    net = net.to(device).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    if fuse_batchnorm:
        fold_batchnorm(net)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    if compile_backbone:
        net.feature_extractor = torch.compile(net.feature_extractor, dynamic=False)
    return net


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """Mixed precision for the enclosed convolutions: ``precision`` in ``none``, ``bf16``, ``fp16``."""
    if precision not in AUTOCAST_DTYPES:
        raise ValueError(f"autocast must be one of {', '.join(AUTOCAST_DTYPES)}, got {precision!r}")
    dtype = AUTOCAST_DTYPES[precision]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype, cache_enabled=False)


class GraphedCall:
    """``fn(*inputs)`` on fixed-shape CUDA tensors, captured once and replayed.

    ``fn`` must not synchronise with the host (no ``.item()``, no ``.cpu()``, no tensors built from Python
    lists on the device) and must return a tensor or a tuple of tensors. Three warm-up calls on a side stream
    come before the capture, as PyTorch requires (they also run autograd's and cuDNN's lazy set-up).
    """

    def __init__(self, fn: Callable[..., Any], example_inputs: Sequence[Tensor], warmup: int = 3) -> None:
        self.inputs = [x.detach().clone() for x in example_inputs]
        with paused():  # stage timing synchronises, which a capture forbids
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                for _ in range(warmup):
                    fn(*self.inputs)
            torch.cuda.current_stream().wait_stream(stream)
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph):
                self.outputs = fn(*self.inputs)

    def __call__(self, *inputs: Tensor) -> Any:
        for static, x in zip(self.inputs, inputs, strict=True):
            static.copy_(x, non_blocking=True)
        self.graph.replay()
        return self.outputs
