"""SiamFC: a fully convolutional Siamese network scored by cross-correlation.

Paper: Bertinetto et al., "Fully-Convolutional Siamese Networks for Object Tracking" (ECCV-W 2016).
Reference code: huanglianghua/siamfc-pytorch (``siamfc/backbones.py`` AlexNetV1, ``siamfc/heads.py``).

.. math:: f(z, x) = c \\cdot \\varphi(z) \\star \\varphi(x), \\qquad c = 0.001

z is the 127 px exemplar crop, x the 255 px search crop, phi the embedding, star cross-correlation;
a 17 x 17 response for the classic AlexNet (exemplar 6 x 6 x 256, search 22 x 22 x 256, stride 8).

Two embeddings:

- ``alexnet``: AlexNetV1 as siamfc-pytorch (grouped convs, BN eps 1e-6 / momentum 0.05, no padding, no
  activation after conv5); it takes raw RGB in [0, 255], no normalisation.
- ``efficientnet_lite0`` (the project's default backbone): the ImageNet-pretrained Lite0 up to stride 8
  (40 channels), then a 1x1 conv + BN ``neck`` to 256 channels, as SiamRPN++'s adjust layer. It takes
  ImageNet-normalised images (like DiMP and ATOM here). Lite0's convs are zero-padded, so the 127 crop
  gives a 16 x 16 exemplar map and the 255 crop a 32 x 32 search map: the response is again 17 x 17.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from dimp_core.nets import backbones


def cross_correlation(z: Tensor, x: Tensor, out_scale: float = 0.001) -> Tensor:
    """Correlate each exemplar embedding with its own search embedding.

    Args:
        z: (B, C, hz, wz) exemplar embeddings (the kernels).
        x: (B * M, C, hx, wx) search embeddings; M search crops (e.g. scales) per exemplar.

    Returns:
        (B * M, 1, hx - hz + 1, wx - wz + 1) responses times ``out_scale``.
    """
    b, c = z.shape[:2]
    m = x.shape[0] // b
    # fold the batch into channels so one grouped conv correlates each pair
    x = x.reshape(b, m, c, *x.shape[-2:]).transpose(0, 1).reshape(m, b * c, *x.shape[-2:])  # (M, B*C, hx, wx)
    out = F.conv2d(x, z, groups=b)  # (M, B, ho, wo)
    return out.transpose(0, 1).reshape(b * m, 1, *out.shape[-2:]) * out_scale


def _conv_bn_relu(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, pool: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, groups=groups),
                               nn.BatchNorm2d(cout, eps=1e-6, momentum=0.05), nn.ReLU(inplace=True)]
    if pool:
        layers.append(nn.MaxPool2d(3, 2))
    return nn.Sequential(*layers)


class AlexNetV1(nn.Module):
    """SiamFC's AlexNet: 127 -> 6 x 6 x 256, 255 -> 22 x 22 x 256, total stride 8."""

    output_stride = 8

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = _conv_bn_relu(3, 96, 11, stride=2, pool=True)
        self.conv2 = _conv_bn_relu(96, 256, 5, groups=2, pool=True)
        self.conv3 = _conv_bn_relu(256, 384, 3)
        self.conv4 = _conv_bn_relu(384, 384, 3, groups=2)
        self.conv5 = nn.Sequential(nn.Conv2d(384, 256, 3, groups=2))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight, gain=1)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv5(self.conv4(self.conv3(self.conv2(self.conv1(x)))))


class Lite0Embedding(nn.Module):
    """EfficientNet-Lite0 to stride 8, then a 1x1 conv + BN to ``out_dim`` channels."""

    output_stride = 8

    def __init__(self, out_dim: int = 256, pretrained: bool = True) -> None:
        super().__init__()
        self.backbone = backbones.efficientnet_lite0(pretrained=pretrained)
        in_dim = self.backbone.out_channels["stride8"]
        self.neck = nn.Sequential(nn.Conv2d(in_dim, out_dim, 1, bias=False), nn.BatchNorm2d(out_dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.neck(self.backbone(x, ("stride8",))["stride8"])


class SiamFCNet(nn.Module):
    """Embedding ``backbone`` + cross-correlation head.

    Attributes:
        input_normalization: 'raw255' (AlexNet: RGB in [0, 255]) or 'imagenet' (Lite0).
    """

    def __init__(self, backbone: str = "efficientnet_lite0", out_scale: float = 0.001,
                 pretrained_backbone: bool = True) -> None:
        super().__init__()
        if backbone == "alexnet":
            self.backbone: nn.Module = AlexNetV1()
            self.input_normalization = "raw255"
        elif backbone == "efficientnet_lite0":
            self.backbone = Lite0Embedding(pretrained=pretrained_backbone)
            self.input_normalization = "imagenet"
        else:
            raise ValueError(f"unknown SiamFC backbone {backbone!r}; choose from alexnet, efficientnet_lite0")
        self.backbone_name = backbone
        self.out_scale = out_scale

    def embed(self, images: Tensor) -> Tensor:
        """phi: (B, 3, H, W) -> (B, C, h, w)."""
        return self.backbone(images)

    def correlate(self, z_feat: Tensor, x_feat: Tensor) -> Tensor:
        """Responses of exemplar embeddings (B, ...) on search embeddings (B * M, ...); see cross_correlation."""
        return cross_correlation(z_feat, x_feat, self.out_scale)

    def forward(self, z: Tensor, x: Tensor) -> Tensor:
        """(B, 3, 127, 127) exemplars, (B * M, 3, 255, 255) search crops -> (B * M, 1, 17, 17) responses."""
        return self.correlate(self.embed(z), self.embed(x))
