"""dimp-lab: DiMP, ATOM and SiamFC trackers you can read, run, question and measure.

The public entry points are imported lazily so that ``import dimp_core`` stays fast
(torch, OpenCV and matplotlib load only when first needed).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY = {
    "build_network": "dimp_core.nets",
    "build_tracker": "dimp_core.trackers",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in {"geometry", "ops", "nets", "checkpoints", "trackers"}:
        return importlib.import_module(f"dimp_core.{name}")
    raise AttributeError(f"module 'dimp_core' has no attribute {name!r}")
