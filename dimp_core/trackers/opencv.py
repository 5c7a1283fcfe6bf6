"""OpenCV's CSRT and KCF trackers (opencv-contrib) behind the project's :class:`Tracker` interface.

They are reference baselines: classical correlation-filter trackers with OpenCV's default settings.
OpenCV works on BGR images and integer boxes, so frames are converted from RGB and the box is rounded
(and clipped to the image, which OpenCV's trackers need) before ``init``. When OpenCV's ``update``
reports failure (KCF does when its peak response falls below its detection threshold; CSRT rarely
does), the tracker keeps its last box (clamped to the image) and reports ``flag='not_found'`` with score 0; otherwise
``flag='normal'`` with score 1 (OpenCV exposes no confidence).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from dimp_core.trackers.base import Tracker, clamp_box, replace_params

KINDS = {"csrt": "TrackerCSRT_create", "kcf": "TrackerKCF_create"}


@dataclass(frozen=True)
class OpenCVParams:
    """No parameters: OpenCV's defaults are the baseline. Kept so that overrides are checked by name."""


def _integer_box(box: np.ndarray, image_shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """Round (x, y, w, h) to integers and clip it to the image, keeping at least one pixel."""
    height, width = image_shape[:2]
    x0 = int(np.clip(round(box[0]), 0, width - 1))
    y0 = int(np.clip(round(box[1]), 0, height - 1))
    x1 = int(np.clip(round(box[0] + box[2]), x0 + 1, width))
    y1 = int(np.clip(round(box[1] + box[3]), y0 + 1, height))
    return x0, y0, x1 - x0, y1 - y0


class OpenCVTracker(Tracker):
    """``OpenCVTracker('csrt')`` or ``OpenCVTracker('kcf')``."""

    def __init__(self, kind: str, **params: Any) -> None:
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"unknown OpenCV tracker {kind!r}; choose from {', '.join(KINDS)}")
        self.kind = kind
        self.name = f"opencv-{kind}"
        self.params = replace_params(OpenCVParams(), params, self.name)
        self._cv_tracker: Any = None
        self._box = np.zeros(4)

    def initialize(self, image: np.ndarray, box: np.ndarray) -> None:
        self._cv_tracker = getattr(cv2, KINDS[self.kind])()
        self._cv_tracker.init(cv2.cvtColor(image, cv2.COLOR_RGB2BGR), _integer_box(box, image.shape))
        self._box = box.astype(np.float64)
        self.info = {"score": 1.0, "flag": "normal"}

    def track(self, image: np.ndarray) -> np.ndarray:
        ok, rect = self._cv_tracker.update(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        if ok:
            self._box = np.asarray(rect, dtype=np.float64)
            self.info = {"score": 1.0, "flag": "normal"}
            return self._box.copy()
        self.info = {"score": 0.0, "flag": "not_found"}
        return clamp_box(self._box, image.shape)
