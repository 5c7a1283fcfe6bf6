"""Which frames of a sequence make one training example (pytracking ``ltr/data/sampler.py``).

DiMP (``DiMPSampler``, mode 'causal'): a base frame, ``num_train - 1`` more train frames from the
``max_gap`` frames before it, and ``num_test`` test frames from the ``max_gap`` frames after the first
train frame; frames are drawn with replacement among those where the target is visible, and the gap
widens by 5 until frames are found. A sequence that cannot give them raises ``NoExample`` and the training
loop draws another sequence, as pytracking's sampler redraws sequences without enough visible frames.
ATOM (``ATOMSampler``, mode 'interval'): one train and one test frame within ``max_gap`` of each other.
SiamFC uses the same interval mode with one exemplar and one search frame.
"""

from __future__ import annotations

import numpy as np


class NoExample(ValueError):
    """The target is not visible where the sampler needs it in this sequence."""


def _visible_ids(visible: np.ndarray, num: int, lo: int, hi: int, rng: np.random.Generator) -> list[int] | None:
    """``num`` visible frame indices from [lo, hi), with replacement; None if there are none."""
    if num == 0:
        return []
    lo, hi = max(lo, 0), min(hi, len(visible))
    valid = np.flatnonzero(visible[lo:hi]) + lo
    if valid.size == 0:
        return None
    return [int(i) for i in rng.choice(valid, size=num, replace=True)]


def _causal_bases(visible: np.ndarray, num_train: int, num_test: int) -> np.ndarray:
    """Visible base frames with room for the train frames before them and a visible frame after them."""
    ids = np.flatnonzero(visible)
    bases = ids[(ids >= num_train - 1) & (ids < len(visible) - num_test)]
    has_before = bases > ids[0] if num_train > 1 else np.ones(len(bases), dtype=bool)
    return bases[has_before & (bases < ids[-1])]


def sample_causal(visible: np.ndarray, num_train: int, num_test: int, max_gap: int,
                  rng: np.random.Generator) -> tuple[list[int], list[int]]:
    """Train frame ids (base first) and test frame ids, test frames after the base frame."""
    if visible.sum() == 0:
        raise NoExample("the target is never visible in this sequence")
    if len(_causal_bases(visible, num_train, num_test)) == 0:  # else the loop below ends (widening windows)
        raise NoExample(f"no visible base frame with {num_train - 1} earlier train frames and a visible frame "
                        f"after it for {num_test} test frames")
    gap = 0
    while True:
        base = _visible_ids(visible, 1, num_train - 1, len(visible) - num_test, rng)
        previous = _visible_ids(visible, num_train - 1, base[0] - max_gap - gap, base[0], rng)
        if previous is not None:
            test = _visible_ids(visible, num_test, base[0] + 1, base[0] + max_gap + gap, rng)
            if test is not None:
                return base + previous, test
        gap += 5


def sample_interval(visible: np.ndarray, max_gap: int, rng: np.random.Generator) -> tuple[int, int]:
    """One train and one test frame id within ``max_gap`` of each other (both visible)."""
    if visible.sum() == 0:
        raise NoExample("the target is never visible in this sequence")
    gap = 0
    while True:  # ends: the train frame itself is visible and inside the test window
        train = _visible_ids(visible, 1, 0, len(visible), rng)
        test = _visible_ids(visible, 1, train[0] - max_gap - gap, train[0] + max_gap + gap + 1, rng)
        if test is not None:
            return train[0], test[0]
        gap += 5
