"""The DiMP and ATOM networks: backbone + model predictor (DiMP only) + IoU-Net.

Reference code: pytracking ``ltr/models/tracking/dimpnet.py`` (``DiMPnet``, ``dimpnet18``, ``dimpnet50``)
and ``ltr/models/bbreg/atom.py`` (``ATOMnet``, ``atom_resnet18``). ``dimp18``, ``dimp50`` and ``atom`` have
the official state-dict keys and shapes, so official checkpoints load into them; the constructor defaults
are the DiMP *training* settings (``ltr/train_settings/dimp/dimp18.py``: filter size 4, 5 optimiser
iterations, step 0.9, regulariser 0.1, label sigma 0.9 cells, 100 distance bins of 0.1 cells, mask
factor 3).

Images go in as (N, S, 3, H, W): N frames of S sequences, RGB normalised with the ImageNet mean and std
(:func:`normalize_image`), as the reference does. Boxes are (x, y, w, h) in crop pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from dimp_core.nets import backbones
from dimp_core.nets.iounet import IoUNet
from dimp_core.nets.model_predictor import (
    Classifier,
    FilterInitializer,
    SteepestDescentGN,
    classification_features,
)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalize_image(image: Tensor) -> Tensor:
    """RGB in [0, 255] -> (x / 255 - mean) / std with the ImageNet statistics. (..., 3, H, W) -> same."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=image.dtype, device=image.device).reshape(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=image.dtype, device=image.device).reshape(3, 1, 1)
    return (image / 255.0 - mean) / std


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class DiMPConfig:
    """Architecture of a DiMP network; stored with our checkpoints so they can be rebuilt."""

    backbone: str = "resnet18"  # resnet18 | resnet50 | efficientnet_lite0
    classification_layer: str = "layer3"  # backbone output fed to the model predictor (stride 16)
    bb_regressor_layers: tuple[str, str] = ("layer2", "layer3")  # stride-8 and stride-16 outputs
    filter_size: int = 4  # k
    optim_iter: int = 5  # steepest-descent iterations at training time
    optim_init_step: float = 0.9  # initial beta (step-length scale)
    optim_init_reg: float = 0.1  # initial filter_reg; lambda = filter_reg^2
    init_gauss_sigma: float = 0.9  # label sigma in cells: output_sigma_factor 1/4 / search area 5 * 18 cells
    num_dist_bins: int = 100  # K
    bin_displacement: float = 0.1  # Delta, cells
    mask_init_factor: float = 3.0
    optim_step_rule: str = "gauss_newton"  # ablation: "fixed" (plain gradient descent)
    optim_loss: str = "learned"  # ablation: "l2" (Gaussian label, no mask, uniform weight)
    clf_input_dim: int = 256  # channels of classification_layer
    clf_proj_dim: int | None = None  # optional 1x1 projection before the residual blocks
    clf_feat_blocks: int = 1  # BasicBlocks in the classification-feature head
    out_feature_dim: int = 256  # C, channels of x and of the filter
    iou_input_dim: tuple[int, int] = (128, 256)
    iou_pred_dim: tuple[int, int] = (256, 256)  # pred_input_dim = pred_inter_dim in the reference
    iou_test_dim: int = 256


DIMP18 = DiMPConfig()
DIMP50 = DiMPConfig(backbone="resnet50", clf_input_dim=1024, clf_feat_blocks=0, out_feature_dim=512,
                    iou_input_dim=(512, 1024))
# Ours: the same head on the ImageNet-pretrained EfficientNet-Lite0 (stride 8: 40 ch, stride 16: 112 ch).
# Lite0's stride-16 stage has only 112 channels, so a 1x1 projection lifts them to 128 before DiMP-18's
# residual block; the classifier works in 128 dimensions and the IoU-Net's test branch in 128 too. These
# widths keep the heads in proportion to the backbone (the reference's 256-wide stride-8 test convs alone
# would cost more than all of Lite0 on a CPU).
DIMP_LITE0 = DiMPConfig(backbone="efficientnet_lite0", classification_layer="stride16",
                        bb_regressor_layers=("stride8", "stride16"), clf_input_dim=112, clf_proj_dim=128,
                        out_feature_dim=128, iou_input_dim=(40, 112), iou_pred_dim=(128, 128), iou_test_dim=128)

# ATOM on the same Lite0 backbone (the project's fair comparison): IoU-Net widths as DIMP_LITE0's.
ATOM_LITE0 = {"backbone": "efficientnet_lite0", "bb_regressor_layers": ("stride8", "stride16"),
              "iou_input_dim": (40, 112), "iou_pred_dim": (128, 128), "iou_test_dim": 128}


def build_backbone(name: str, pretrained: bool = True) -> nn.Module:
    """ResNet-18/50 (random init: no ImageNet weights can be downloaded here) or Lite0 (shipped ImageNet)."""
    if name == "resnet18":
        return backbones.resnet18()
    if name == "resnet50":
        return backbones.resnet50()
    if name == "efficientnet_lite0":
        return backbones.efficientnet_lite0(pretrained=pretrained)
    raise ValueError(f"unknown backbone {name!r}; choose from resnet18, resnet50, efficientnet_lite0")


def _flat_frames(feat: dict[str, Tensor]) -> dict[str, Tensor]:
    """(N, S, C, H, W) layers -> (N * S, C, H, W), frame-major as ``images.reshape(-1, ...)``; 4-D ones pass."""
    return {k: v.reshape(-1, *v.shape[-3:]) if v.dim() == 5 else v for k, v in feat.items()}


def _layers(backbone_feat: dict[str, Tensor], names: tuple[str, ...]) -> tuple[Tensor, ...]:
    return tuple(backbone_feat[n] for n in names)


# --------------------------------------------------------------------------- DiMP


class DiMPNet(nn.Module):
    """Backbone (``feature_extractor``), model predictor (``classifier``) and IoU-Net (``bb_regressor``)."""

    def __init__(self, config: DiMPConfig = DIMP18, pretrained_backbone: bool = True) -> None:
        super().__init__()
        c = config
        self.config = c
        self.feature_extractor = build_backbone(c.backbone, pretrained_backbone)
        clf_features = classification_features(c.clf_input_dim, c.out_feature_dim, c.filter_size,
                                               c.clf_feat_blocks, c.clf_proj_dim)
        initializer = FilterInitializer(c.filter_size, c.out_feature_dim)
        optimizer = SteepestDescentGN(num_iter=c.optim_iter, init_step_length=c.optim_init_step,
                                      init_filter_reg=c.optim_init_reg, init_gauss_sigma=c.init_gauss_sigma,
                                      num_dist_bins=c.num_dist_bins, bin_displacement=c.bin_displacement,
                                      mask_init_factor=c.mask_init_factor, step_rule=c.optim_step_rule,
                                      loss=c.optim_loss)
        self.classifier = Classifier(c.filter_size, clf_features, initializer, optimizer)
        self.bb_regressor = IoUNet(c.iou_input_dim, c.iou_pred_dim, c.iou_pred_dim, c.iou_test_dim)
        self.output_layers = tuple(sorted({c.classification_layer, *c.bb_regressor_layers}))

    def extract_backbone_features(self, images: Tensor) -> dict[str, Tensor]:
        """(B, 3, H, W) normalised images -> the backbone layers the heads need."""
        return self.feature_extractor(images, self.output_layers)

    def classification_features(self, backbone_feat: dict[str, Tensor], num_sequences: int = 1) -> Tensor:
        """Classification features x, (N, S, C, H, W)."""
        return self.classifier.extract_features(backbone_feat[self.config.classification_layer], num_sequences)

    def iou_features(self, backbone_feat: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """The stride-8 and stride-16 maps the IoU-Net takes."""
        f = _layers(backbone_feat, self.config.bb_regressor_layers)
        return f[0], f[1]

    def forward(self, train_imgs: Tensor, test_imgs: Tensor, train_bb: Tensor,
                test_proposals: Tensor) -> tuple[list[Tensor], Tensor]:
        """Training forward pass (SPEC section 3).

        Args:
            train_imgs: (N_train, S, 3, H, W); test_imgs: (N_test, S, 3, H, W).
            train_bb: (N_train, S, 4) target boxes; test_proposals: (N_test, S, P, 4) candidate boxes.

        Returns:
            scores: one (N_test, S, Ho, Wo) map per filter iterate, the initial filter first.
            iou_pred: (N_test, S, P).
        """
        if train_imgs.dim() != 5 or test_imgs.dim() != 5:
            raise ValueError("images must be (N, S, 3, H, W); got "
                             f"{tuple(train_imgs.shape)} and {tuple(test_imgs.shape)}")
        train_feat = self.extract_backbone_features(train_imgs.reshape(-1, *train_imgs.shape[-3:]))
        test_feat = self.extract_backbone_features(test_imgs.reshape(-1, *test_imgs.shape[-3:]))
        return self.forward_features(train_feat, test_feat, train_bb, test_proposals)

    def forward_features(self, train_feat: dict[str, Tensor], test_feat: dict[str, Tensor], train_bb: Tensor,
                         test_proposals: Tensor) -> tuple[list[Tensor], Tensor]:
        """:meth:`forward` from backbone features: each layer (N * S, C, H, W), frame-major, or (N, S, C, H, W)."""
        train_feat, test_feat = _flat_frames(train_feat), _flat_frames(test_feat)
        cl = self.config.classification_layer
        scores = self.classifier(train_feat[cl], test_feat[cl], train_bb)
        iou_pred = self.bb_regressor(self.iou_features(train_feat), self.iou_features(test_feat), train_bb,
                                     test_proposals)
        return scores, iou_pred


# --------------------------------------------------------------------------- ATOM


class ATOMNet(nn.Module):
    """ATOM's offline-trained part: a frozen ResNet-18 backbone and the IoU-Net (pytracking ``ATOMnet``).

    ATOM's classifier is learned online by the tracker. As in the reference (``extractor_grad=False``),
    the backbone's parameters do not require gradients.
    """

    def __init__(self, backbone: str = "resnet18", bb_regressor_layers: tuple[str, str] = ("layer2", "layer3"),
                 iou_input_dim: tuple[int, int] = (128, 256), iou_pred_dim: tuple[int, int] = (256, 256),
                 iou_test_dim: int = 256, pretrained_backbone: bool = True) -> None:
        super().__init__()
        self.feature_extractor = build_backbone(backbone, pretrained_backbone)
        self.bb_regressor = IoUNet(iou_input_dim, iou_pred_dim, iou_pred_dim, iou_test_dim)
        self.bb_regressor_layers = bb_regressor_layers
        for p in self.feature_extractor.parameters():
            p.requires_grad_(False)

    def extract_backbone_features(self, images: Tensor, layers: tuple[str, ...] | None = None) -> dict[str, Tensor]:
        return self.feature_extractor(images, layers or self.bb_regressor_layers)

    def iou_features(self, backbone_feat: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        f = _layers(backbone_feat, self.bb_regressor_layers)
        return f[0], f[1]

    def forward(self, train_imgs: Tensor, test_imgs: Tensor, train_bb: Tensor, test_proposals: Tensor) -> Tensor:
        """Args as :meth:`DiMPNet.forward`. Returns iou_pred (N_test, S, P)."""
        if train_imgs.dim() != 5 or test_imgs.dim() != 5:
            raise ValueError("images must be (N, S, 3, H, W); got "
                             f"{tuple(train_imgs.shape)} and {tuple(test_imgs.shape)}")
        train_feat = self.extract_backbone_features(train_imgs.reshape(-1, *train_imgs.shape[-3:]))
        test_feat = self.extract_backbone_features(test_imgs.reshape(-1, *test_imgs.shape[-3:]))
        return self.forward_features(train_feat, test_feat, train_bb, test_proposals)

    def forward_features(self, train_feat: dict[str, Tensor], test_feat: dict[str, Tensor], train_bb: Tensor,
                         test_proposals: Tensor) -> Tensor:
        """:meth:`forward` from backbone features (as :meth:`DiMPNet.forward_features`)."""
        train_feat, test_feat = _flat_frames(train_feat), _flat_frames(test_feat)
        return self.bb_regressor(self.iou_features(train_feat), self.iou_features(test_feat), train_bb,
                                 test_proposals)
