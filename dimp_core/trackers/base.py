"""The one tracker interface (the got10k toolkit's protocol) and input checking shared by all trackers.

A tracker has ``init(image, box)`` and ``update(image) -> box``. ``image`` is an H x W x 3 uint8 RGB numpy
array (an H x W grayscale array or a PIL image is accepted and converted), ``box`` is (x, y, w, h) in
pixels with a top-left origin. After ``update``, ``tracker.info`` holds at least ``score`` (the maximum
confidence), ``flag`` (one of :data:`FLAGS`) and, for the learned trackers, ``score_map`` (a 2-D numpy
array). ``init`` and ``update`` never return silently wrong output on bad input: they raise
:class:`TrackerInputError` naming the problem. On a valid frame ``update`` never raises: a target that
is lost is reported with ``flag='not_found'`` and the last box is kept (clamped to the image).

Parameters are frozen dataclasses; :func:`replace_params` applies overrides by name and rejects unknown
names with the list of valid ones.
"""

from __future__ import annotations

import dataclasses
import logging
from abc import ABC, abstractmethod
from typing import Any, Literal, TypeVar

import numpy as np

Flag = Literal["normal", "uncertain", "hard_negative", "not_found"]
FLAGS: tuple[str, ...] = ("normal", "uncertain", "hard_negative", "not_found")

P = TypeVar("P")
log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())


class TrackerInputError(ValueError):
    """An image or a box that a tracker cannot work with."""


def replace_params(params: P, overrides: dict[str, Any], tracker: str = "tracker") -> P:
    """``dataclasses.replace`` that names unknown parameters and lists the valid ones."""
    valid = [f.name for f in dataclasses.fields(params)]  # type: ignore[arg-type]
    unknown = sorted(set(overrides) - set(valid))
    if unknown:
        raise TypeError(f"unknown parameter(s) for {tracker}: {', '.join(unknown)}; valid: {', '.join(valid)}")
    return dataclasses.replace(params, **overrides)  # type: ignore[type-var]


def as_rgb_image(image: Any) -> np.ndarray:
    """Validate and convert an input frame to a contiguous H x W x 3 uint8 RGB array.

    Accepts H x W x 3 uint8 arrays, H x W (grayscale) uint8 arrays, H x W x 1 arrays and PIL images.
    Raises TrackerInputError for anything else (wrong dtype, wrong shape, empty image).
    """
    if image is None:
        raise TrackerInputError("image is None (an unreadable or missing frame?)")
    if not isinstance(image, np.ndarray):
        try:
            from PIL import Image
        except ImportError:  # pragma: no cover - Pillow comes with matplotlib
            Image = None
        if Image is not None and isinstance(image, Image.Image):
            image = np.array(image.convert("RGB"))  # a writable copy
        else:
            raise TrackerInputError(f"image must be a numpy array or a PIL image, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise TrackerInputError(f"image must have dtype uint8 (RGB in 0..255), got {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3:
        raise TrackerInputError(f"image must be H x W x 3 (RGB) or H x W (grayscale), got shape {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise TrackerInputError(f"image is empty, shape {image.shape}")
    return np.ascontiguousarray(image)


def check_init_box(box: Any, image_shape: tuple[int, ...]) -> np.ndarray:
    """Validate a first-frame box (x, y, w, h) against the image; return it as a float64 array."""
    try:
        b = np.array(box, dtype=np.float64).reshape(-1)  # a copy: callers may pass read-only arrays
    except (TypeError, ValueError) as err:
        raise TrackerInputError(f"box must be 4 numbers (x, y, w, h), got {box!r}") from err
    if b.shape != (4,) or not np.all(np.isfinite(b)):
        raise TrackerInputError(f"box must be 4 finite numbers (x, y, w, h), got {box!r}")
    x, y, w, h = b
    if w <= 0 or h <= 0:
        raise TrackerInputError(f"box must have a positive width and height, got w={w:g}, h={h:g}")
    height, width = image_shape[:2]
    if x >= width or y >= height or x + w <= 0 or y + h <= 0:
        raise TrackerInputError(f"box ({x:g}, {y:g}, {w:g}, {h:g}) lies entirely outside the {width}x{height} image")
    return b


def clamp_box(box: np.ndarray, image_shape: tuple[int, ...], min_size: float = 1.0) -> np.ndarray:
    """Clamp (x, y, w, h) so that it keeps at least ``min_size`` pixels inside the image."""
    height, width = image_shape[:2]
    w = float(np.clip(box[2], min_size, width))
    h = float(np.clip(box[3], min_size, height))
    x = float(np.clip(box[0], min_size - w, width - min_size))
    y = float(np.clip(box[1], min_size - h, height - min_size))
    return np.array([x, y, w, h], dtype=np.float64)


class Tracker(ABC):
    """Base class: subclasses implement :meth:`initialize` and :meth:`track` on validated inputs."""

    name: str = "tracker"
    is_deterministic: bool = True

    def __init__(self) -> None:
        self.info: dict[str, Any] = {}
        self._initialized = False

    def init(self, image: Any, box: Any) -> None:
        """Start tracking the target ``box`` = (x, y, w, h) in the first frame."""
        image = as_rgb_image(image)
        b = check_init_box(box, image.shape)
        self.initialize(image, b)
        self._initialized = True
        self._last_box = b.copy()
        self.info.setdefault("flag", "normal")

    def update(self, image: Any) -> np.ndarray:
        """Locate the target in the next frame; returns (x, y, w, h) as a float64 array of length 4."""
        if not self._initialized:
            raise RuntimeError(f"{self.name}: call init(image, box) before update(image)")
        image = as_rgb_image(image)
        try:
            box = np.asarray(self.track(image), dtype=np.float64).reshape(4)
            if not np.all(np.isfinite(box)):
                raise FloatingPointError(f"non-finite box {box}")
        except Exception as err:  # noqa: BLE001 - a valid frame must never end the sequence
            # Last line of defence: report the target as lost and keep the last box. ``info['error']``
            # keeps the cause, so tests and users can still see that something went wrong.
            log.warning("%s: update failed (%r); reporting the target as lost", self.name, err)
            self.info = {"score": 0.0, "flag": "not_found", "error": repr(err)}
            return clamp_box(self._last_box, image.shape)
        self._last_box = box.copy()
        return box

    @abstractmethod
    def initialize(self, image: np.ndarray, box: np.ndarray) -> None:
        """Set up on the first frame (image validated, box validated)."""

    @abstractmethod
    def track(self, image: np.ndarray) -> np.ndarray:
        """Return the box for a validated frame and fill ``self.info``."""
