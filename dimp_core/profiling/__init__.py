"""Performance: per-stage timing of the trackers (:mod:`.timer`), the speed knobs' machinery (:mod:`.accel`),
the profile runner behind ``dimp profile`` (:mod:`.runner`), the all-trackers benchmark behind ``dimp bench``
(:mod:`.bench`), memory measurement (:mod:`.memory`) and the batched multi-target network step (:mod:`.batched`).

The trackers import :mod:`.timer` and :mod:`.accel` only; :mod:`.runner`, :mod:`.bench` and :mod:`.batched`
build trackers and read datasets, so they are imported lazily here to keep the package free of import cycles.
"""

from __future__ import annotations

from typing import Any

from dimp_core.profiling.timer import StageTimer, recording, stage

__all__ = ["StageTimer", "profile_tracker", "recording", "stage", "system_info"]


def __getattr__(name: str) -> Any:
    if name in ("profile_tracker", "system_info"):
        from dimp_core.profiling import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'dimp_core.profiling' has no attribute {name!r}")
