"""Any dimp-lab tracker as a ``got10k.trackers.Tracker``, so the got10k toolkit's experiments can run it.

Our trackers already speak the got10k protocol (``init(image, box)``, ``update(image) -> box``); the
toolkit only wants instances of its own base class, whose ``track(img_files, box)`` opens every frame
with PIL and passes the PIL image on. Our ``init``/``update`` accept PIL images (and convert them to
RGB arrays), so the adapter only forwards. Needs the ``got10k`` package (a dev dependency).

Example::

    from got10k.experiments import ExperimentOTB
    ExperimentOTB("data/OTB100").run(Got10kTracker(dimp_core.build_tracker("dimp")))
"""

from __future__ import annotations

from typing import Any

import numpy as np
from got10k.trackers import Tracker as Got10kBase

from dimp_core.trackers.base import Tracker


class Got10kTracker(Got10kBase):
    """Wrap one of our trackers; ``name`` defaults to the wrapped tracker's name."""

    def __init__(self, tracker: Tracker, name: str | None = None) -> None:
        super().__init__(name=name or tracker.name, is_deterministic=getattr(tracker, "is_deterministic", False))
        self.tracker = tracker

    def init(self, image: Any, box: Any) -> None:
        self.tracker.init(image, box)

    def update(self, image: Any) -> np.ndarray:
        return self.tracker.update(image)
