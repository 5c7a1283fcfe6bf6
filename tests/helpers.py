"""Helpers shared by the tracker tests: a synthetic moving box and a loop that tracks it."""

from collections.abc import Callable

import numpy as np


def red_box_sequence(num: int = 8, path: Callable[[int], tuple[float, float]] | None = None,
                     size: tuple[int, int] = (30, 40), shape: tuple[int, int] = (180, 240), seed: int = 0
                     ) -> tuple[list[np.ndarray], list[tuple[float, float, int, int]]]:
    """A red box moving over a noisy background; ``path(t) -> (x, y)`` sets its top-left corner."""
    rng = np.random.default_rng(seed)
    background = (rng.random((*shape, 3)) * 90).astype(np.uint8)
    path = path or (lambda t: (60 + 3 * t, 50 + 2 * t))
    frames, boxes = [], []
    for t in range(num):
        x, y = path(t)
        im = background.copy()
        x0, y0, x1, y1 = max(int(x), 0), max(int(y), 0), int(x + size[0]), int(y + size[1])
        if x1 > 0 and y1 > 0:
            im[y0:y1, x0:x1] = (230, 40, 40)
        frames.append(im)
        boxes.append((x, y, size[0], size[1]))
    return frames, boxes


def track_frames(tracker, frames: list[np.ndarray], box) -> tuple[np.ndarray, list[dict]]:
    """Initialise on the first frame, update on the others: (N, 4) boxes (the first is ``box``) and the infos."""
    tracker.init(frames[0], box)
    out, infos = [np.asarray(box, dtype=float)], []
    for im in frames[1:]:
        out.append(tracker.update(im))
        infos.append(dict(tracker.info))
    return np.array(out), infos
