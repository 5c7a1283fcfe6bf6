"""Memory of a tracking run: the process's resident set (current and peak), the GPU's allocations, and the
bytes of the tensors a tracker holds (its sample memory, filters, graph buffers, caches).

The resident set comes from ``/proc/self/statm`` (Linux) and the peak from ``resource.getrusage`` (no psutil);
on a system without ``/proc`` the current value is ``None``. :func:`tensor_bytes` walks an object's attributes
(dicts, lists, tuples and nested objects included) and adds up the distinct tensor storages it reaches, so a
buffer that grows frame after frame shows up even when the process's allocator hides it.
"""

from __future__ import annotations

import os
import resource
import sys
from typing import Any

import torch

__all__ = ["cuda_memory", "peak_rss_bytes", "rss_bytes", "tensor_bytes"]

MiB = 2 ** 20


def rss_bytes() -> int | None:
    """The resident set size of this process now, in bytes (None where ``/proc/self/statm`` is missing)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def peak_rss_bytes() -> int:
    """The largest resident set size this process has had, in bytes (``ru_maxrss``: KiB on Linux, B on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def cuda_memory(device: torch.device) -> dict[str, float] | None:
    """Allocated and peak-allocated MiB on a CUDA ``device`` since the last ``reset_peak_memory_stats``."""
    if device.type != "cuda":
        return None
    return {"allocated_mb": torch.cuda.memory_allocated(device) / MiB,
            "max_allocated_mb": torch.cuda.max_memory_allocated(device) / MiB,
            "max_reserved_mb": torch.cuda.max_memory_reserved(device) / MiB}


def tensor_bytes(obj: Any, max_depth: int = 6) -> int:
    """Bytes of the distinct tensor storages reachable from ``obj``'s attributes and containers."""
    seen_storages: set[tuple[str, int]] = set()
    seen_objects: set[int] = set()
    total = 0

    def visit(value: Any, depth: int) -> None:
        nonlocal total
        if isinstance(value, torch.Tensor):
            storage = value.untyped_storage()
            key = (str(value.device), storage.data_ptr())
            if key not in seen_storages:
                seen_storages.add(key)
                total += storage.nbytes()
            return
        if depth > max_depth or id(value) in seen_objects or isinstance(value, (str, bytes, int, float, bool)):
            return
        seen_objects.add(id(value))
        if isinstance(value, dict):
            children = list(value.values())
        elif isinstance(value, (list, tuple, set, frozenset)):
            children = list(value)
        elif isinstance(value, torch.nn.Module):
            children = [*value.parameters(), *value.buffers()]
        elif hasattr(value, "__dict__"):
            children = list(vars(value).values())
        else:
            return
        for child in children:
            visit(child, depth + 1)

    visit(obj, 0)
    return total
