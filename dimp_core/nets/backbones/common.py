"""What the backbones share: checking requested output layers, and folding BatchNorm for inference."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["fold_batchnorm", "resolve_output_layers"]


def resolve_output_layers(output_layers: Sequence[str], order: Sequence[str]) -> tuple[frozenset[str], int]:
    """Validates requested layer names.

    Args:
        output_layers: Names requested by the caller (a lone string counts as one name).
        order: All valid names, shallowest first.

    Returns:
        The requested names as a set, and the index in ``order`` of the deepest one.

    Raises:
        ValueError: If ``output_layers`` is empty or holds an unknown name.
    """
    wanted = frozenset((output_layers,) if isinstance(output_layers, str) else output_layers)
    if not wanted:
        raise ValueError("output_layers must name at least one layer")
    unknown = sorted(wanted.difference(order))
    if unknown:
        raise ValueError(f"unknown output layer(s) {unknown}; valid names are {list(order)}")
    return wanted, max(order.index(name) for name in wanted)


def _fold_pair(layer: nn.Conv2d | nn.Linear, bn: nn.BatchNorm2d) -> None:
    """Fold an eval-mode BatchNorm into ``layer`` in place: W' = W gamma / sigma, b' = (b - mu) gamma / sigma + beta,
    sigma = sqrt(running_var + eps), so that ``layer`` alone computes bn(layer(x))."""
    scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)  # (C_out,)
    bias = layer.bias.detach() if layer.bias is not None else torch.zeros_like(bn.running_mean)
    shape = (-1,) + (1,) * (layer.weight.dim() - 1)
    layer.weight = nn.Parameter(layer.weight.detach() * scale.reshape(shape), requires_grad=False)
    layer.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias.detach(), requires_grad=False)


def fold_batchnorm(module: nn.Module) -> nn.Module:
    """Fold every BatchNorm that directly follows a convolution (or a linear layer) into it, in place.

    Inference only: a frozen BatchNorm is a per-channel affine map, so ``bn(conv(x))`` equals one convolution
    with scaled weights and a bias (up to float rounding, ~1e-6 relative), and the separate pass over the
    feature map disappears (on a CPU it costs about as much as a depthwise convolution). Pairs are found in
    ``nn.Sequential`` containers (a Conv2d/Linear immediately followed by a BatchNorm2d) and in modules that
    name them in a ``conv_bn_pairs`` class attribute (the backbone blocks, the IoU-Net's ``LinearBlock``);
    each folded BatchNorm becomes ``nn.Identity``. The state dict changes (BatchNorm keys vanish, biases
    appear), so fold a copy, never a network that is trained or saved. Returns ``module``.
    """
    if any(m.training for m in module.modules() if isinstance(m, nn.BatchNorm2d)):
        raise ValueError("fold_batchnorm needs its BatchNorms in eval mode (at their running statistics)")
    for sub in list(module.modules()):
        pairs = list(getattr(sub, "conv_bn_pairs", ()))
        if isinstance(sub, nn.Sequential):
            names = list(sub._modules)
            pairs += [(a, b) for a, b in zip(names, names[1:], strict=False)
                      if isinstance(sub._modules[a], (nn.Conv2d, nn.Linear))
                      and isinstance(sub._modules[b], nn.BatchNorm2d)]
        for layer_name, bn_name in pairs:
            layer, bn = getattr(sub, layer_name), getattr(sub, bn_name)
            if isinstance(layer, (nn.Conv2d, nn.Linear)) and isinstance(bn, nn.BatchNorm2d):
                _fold_pair(layer, bn)
                setattr(sub, bn_name, nn.Identity())
    return module
