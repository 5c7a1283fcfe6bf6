"""Training losses of DiMP, ATOM's IoU-Net and SiamFC.

- DiMP (pytracking ``ltr/actors/tracking.py`` ``DiMPActor``, ``ltr/models/loss/target_classification.py``):
  the test-frame classification loss of every filter iterate, LBHinge with threshold 0.05, weighted 100 for
  the initial filter f0 and the final one and 400 / (n_iter - 1) for each intermediate iterate, plus the
  IoU-Net's MSE on 2 IoU - 1 with weight 1.
- SiamFC (siamfc-pytorch ``BalancedLoss``): binary cross-entropy with logits on the response, positives and
  negatives each carrying half the loss; labels 1 within L1 distance 2 cells (r_pos 16 px / stride 8).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


def lb_hinge(scores: Tensor, label: Tensor, threshold: float = 0.05) -> Tensor:
    """LBHinge: MSE to the label where label >= threshold; elsewhere only positive scores are penalised
    (target 0, prediction max(0, s)). Mean over all elements."""
    negative = (label < threshold).to(scores.dtype)
    prediction = negative * F.relu(scores) + (1 - negative) * scores
    return F.mse_loss(prediction, (1 - negative) * label)


@dataclass(frozen=True)
class DiMPLossWeights:
    test_clf: float = 100.0  # final filter
    test_init_clf: float = 100.0  # initial filter f0
    test_iter_clf: float = 400.0  # shared by the intermediate iterates
    iou: float = 1.0


def dimp_loss(scores: list[Tensor], label: Tensor, iou_pred: Tensor, iou_target: Tensor,
              weights: DiMPLossWeights = DiMPLossWeights()) -> tuple[Tensor, dict[str, float]]:
    """Total DiMP loss and each term (for the log).

    Args:
        scores: one (N, S, Ho, Wo) test score map per filter iterate, f0 first.
        label: (N, S, Ho, Wo) Gaussian labels.
        iou_pred, iou_target: (N, S, P) predicted and target (2 IoU - 1).
    """
    clf = [lb_hinge(s, label) for s in scores]
    terms = {"clf_final": weights.test_clf * clf[-1], "clf_init": weights.test_init_clf * clf[0],
             "iou": weights.iou * F.mse_loss(iou_pred, iou_target)}
    if len(clf) > 2:
        terms["clf_iter"] = weights.test_iter_clf / (len(clf) - 2) * sum(clf[1:-1])
    total = sum(terms.values())
    log = {name: float(value.detach()) for name, value in terms.items()}
    log.update({f"clf_iter{i}": float(c.detach()) for i, c in enumerate(clf)}, total=float(total.detach()))
    return total, log


def siamfc_labels(size: int, r_pos: float = 2.0, device: torch.device | str | None = None) -> Tensor:
    """(size, size) labels: 1 within L1 ("block") distance r_pos cells of the centre, else 0."""
    k = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2
    dist = k.abs()[:, None] + k.abs()[None, :]
    return (dist <= r_pos).float()


def balanced_bce(response: Tensor, labels: Tensor) -> Tensor:
    """SiamFC's balanced logistic loss: weights 1/N_pos on positives, 1/N_neg on negatives, renormalised."""
    pos, neg = labels == 1, labels == 0
    weight = torch.zeros_like(labels)
    weight[pos] = 1 / pos.sum().clamp(min=1)
    weight[neg] = 1 / neg.sum().clamp(min=1)
    weight = weight / weight.sum()
    return F.binary_cross_entropy_with_logits(response, labels, weight, reduction="sum")
