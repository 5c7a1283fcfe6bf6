"""The sample memory of the online classifier: training samples, their target boxes and their weights.

pytracking ``update_sample_weights`` / ``update_memory`` (DiMP and ATOM). New samples get weight
``lr`` relative to the newest one before them (exponential forgetting: each new sample is 1/(1 - lr)
times heavier than the previous), the weights are renormalised to sum to one, and the first-frame
samples together never fall below ``init_samples_minimum_weight``. When the memory is full, the
lightest sample that is not a first-frame sample is replaced.

A quirk kept for fidelity: when the minimum applies, the reference divides all weights by
(minimum + weight of the other samples) and then sets the first-frame samples to the minimum, which
leaves the total slightly above one until the next update renormalises.
"""

from __future__ import annotations

import torch
from torch import Tensor


def update_sample_weights(weights: Tensor, num_stored: int, num_init: int, previous_index: int | None,
                          learning_rate: float, init_min_weight: float | None) -> tuple[Tensor, int]:
    """Weights after adding one sample, and the slot it goes into.

    Args:
        weights: (M,) current weights (slots beyond ``num_stored`` are 0).
        num_stored: samples stored so far.
        num_init: first-frame samples (slots 0..num_init-1).
        previous_index: slot written by the previous update (None before the first update).
        learning_rate: lr (0.01 for DiMP, 0.02 after a hard negative).
        init_min_weight: minimum total weight of the first-frame samples (None or 0: no minimum).

    Returns:
        (new weights (M,) summing to one, slot index for the new sample).
    """
    w = weights.clone()
    if init_min_weight == 0:
        init_min_weight = None
    if num_stored == 0 or learning_rate == 1:
        w.zero_()
        w[0] = 1
        return w, 0
    if num_stored < w.shape[0]:
        index = num_stored
    else:
        first = 0 if init_min_weight is None else num_init  # never replace first-frame samples
        index = int(torch.argmin(w[first:])) + first
    if previous_index is None:
        w /= 1 - learning_rate
        w[index] = learning_rate
    else:
        w[index] = w[previous_index] / (1 - learning_rate)
    w /= w.sum()
    if init_min_weight is not None and w[:num_init].sum() < init_min_weight:
        w /= init_min_weight + w[num_init:].sum()
        w[:num_init] = init_min_weight / num_init
    return w, index


class SampleMemory:
    """Fixed-size storage of training samples (features), their target boxes and their weights."""

    def __init__(self, samples: Tensor, boxes: Tensor, capacity: int, learning_rate: float,
                 init_min_weight: float | None) -> None:
        """Start with the first-frame ``samples`` (N, ...) and ``boxes`` (N, 4), each of weight 1/N."""
        n = samples.shape[0]
        if n > capacity:
            raise ValueError(f"{n} initial samples do not fit a memory of {capacity}")
        self.samples = samples.new_zeros(capacity, *samples.shape[1:])
        self.samples[:n] = samples
        self.boxes = boxes.new_zeros(capacity, 4)
        self.boxes[:n] = boxes
        self.weights = samples.new_zeros(capacity)
        self.weights[:n] = 1.0 / n
        self.num_init = self.num_stored = n
        self.previous_index: int | None = None
        self.learning_rate, self.init_min_weight = learning_rate, init_min_weight

    def add(self, sample: Tensor, box: Tensor, learning_rate: float | None = None) -> int:
        """Store one sample (shape as one row of ``samples``) with its box; returns the slot used."""
        lr = self.learning_rate if learning_rate is None else learning_rate
        self.weights, index = update_sample_weights(self.weights, self.num_stored, self.num_init,
                                                    self.previous_index, lr, self.init_min_weight)
        self.previous_index = index
        self.samples[index] = sample
        self.boxes[index] = box
        self.num_stored = min(self.num_stored + 1, self.samples.shape[0])
        return index

    def stored(self) -> tuple[Tensor, Tensor, Tensor]:
        """(samples, boxes, weights) of the filled slots."""
        n = self.num_stored
        return self.samples[:n], self.boxes[:n], self.weights[:n]
