"""ResNet-18/50 in torchvision's v1.5 layout (module tree and parameter names), without torchvision."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from dimp_core.nets.backbones.common import resolve_output_layers

__all__ = ["BasicBlock", "Bottleneck", "ResNet", "resnet18", "resnet50"]


def _conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """3x3 convolution, padding 1, no bias."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def _conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """1x1 convolution, no bias."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with an identity (or 1x1 projection) shortcut, as torchvision's.

    Args:
        inplanes: Input channels C_in.
        planes: Output channels C_out (``expansion`` is 1).
        stride: Stride of the first 3x3 convolution.
        downsample: Shortcut projection, needed when the stride or channel count changes;
            registered as ``downsample`` so its keys are ``downsample.0``/``downsample.1``.

    Shapes:
        (B, C_in, H, W) -> (B, C_out, ceil(H / stride), ceil(W / stride)).
    """

    expansion: int = 1
    conv_bn_pairs: tuple[tuple[str, str], ...] = (("conv1", "bn1"), ("conv2", "bn2"))  # for fold_batchnorm

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = _conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        """Applies the block. x: (B, C_in, H, W) -> (B, C_out, H', W')."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))  # (B, C_out, H', W')
        out = self.bn2(self.conv2(out))  # (B, C_out, H', W')
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand (x4) with shortcut; stride on the 3x3 (torchvision v1.5).

    Args:
        inplanes: Input channels C_in.
        planes: Width of the inner 3x3 convolution; the block outputs ``4 * planes`` channels.
        stride: Stride of the 3x3 convolution.
        downsample: Shortcut projection (``downsample.0`` conv, ``downsample.1`` BN).

    Shapes:
        (B, C_in, H, W) -> (B, 4 * planes, ceil(H / stride), ceil(W / stride)).
    """

    expansion: int = 4
    conv_bn_pairs: tuple[tuple[str, str], ...] = (("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3"))

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = _conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = _conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        """Applies the block. x: (B, C_in, H, W) -> (B, 4 * planes, H', W')."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))  # (B, planes, H, W)
        out = self.relu(self.bn2(self.conv2(out)))  # (B, planes, H', W')
        out = self.bn3(self.conv3(out))  # (B, 4 * planes, H', W')
        return self.relu(out + identity)


class ResNet(nn.Module):
    """ResNet with torchvision's module tree, returning a dict of intermediate features.

    The state dict equals torchvision's key for key and shape for shape (``layer4`` and
    ``fc`` included, although trackers stop at ``layer3``).

    Args:
        block: ``BasicBlock`` (ResNet-18/34) or ``Bottleneck`` (ResNet-50/101/152).
        layers: Number of blocks in ``layer1`` .. ``layer4``.
        num_classes: Outputs of the ImageNet classifier ``fc``.

    Attributes:
        out_channels: Channels of each output: ``conv1``, ``layer1`` .. ``layer4`` and ``fc``
            (``num_classes``).
        out_strides: Stride in input pixels of each spatial output (``fc`` has none).
    """

    LAYER_ORDER: tuple[str, ...] = ("conv1", "layer1", "layer2", "layer3", "layer4", "fc")
    conv_bn_pairs: tuple[tuple[str, str], ...] = (("conv1", "bn1"),)

    def __init__(self, block: type[BasicBlock | Bottleneck], layers: Sequence[int], num_classes: int = 1000):
        super().__init__()
        if len(layers) != 4:
            raise ValueError(f"layers must list 4 block counts, got {layers}")
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)

        e = block.expansion
        self.out_channels: dict[str, int] = {
            "conv1": 64,
            "layer1": 64 * e,
            "layer2": 128 * e,
            "layer3": 256 * e,
            "layer4": 512 * e,
            "fc": num_classes,
        }
        self.out_strides: dict[str, int] = {"conv1": 2, "layer1": 4, "layer2": 8, "layer3": 16, "layer4": 32}

        # Initialisation as torchvision: He-normal (fan_out) convolutions, unit/zero BN;
        # fc keeps nn.Linear's default.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _make_layer(
        self, block: type[BasicBlock | Bottleneck], planes: int, blocks: int, stride: int = 1
    ) -> nn.Sequential:
        """Builds one stage; its first block carries the stride and the shortcut projection."""
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                _conv1x1(self.inplanes, planes * block.expansion, stride),
                nn.BatchNorm2d(planes * block.expansion),
            )
        stage = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        stage += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*stage)

    def forward(self, x: Tensor, output_layers: Sequence[str] = ("layer2", "layer3")) -> dict[str, Tensor]:
        """Runs the network up to the deepest requested layer.

        Args:
            x: Images (B, 3, H, W), ImageNet mean/std normalised RGB.
            output_layers: Any of ``conv1`` (after ReLU, before max-pool), ``layer1`` ..
                ``layer4`` and ``fc`` (ImageNet logits).

        Returns:
            Dict with exactly the requested names: ``conv1`` (B, 64, H/2, W/2), ``layerK``
            (B, out_channels[layerK], H/s, W/s) with s = out_strides[layerK], ``fc``
            (B, num_classes). Sizes are rounded up for inputs not divisible by the stride.

        Raises:
            ValueError: For an empty request or an unknown layer name.
        """
        wanted, last = resolve_output_layers(output_layers, self.LAYER_ORDER)
        out: dict[str, Tensor] = {}

        x = self.relu(self.bn1(self.conv1(x)))  # (B, 64, H/2, W/2)
        if "conv1" in wanted:
            out["conv1"] = x
        if last == 0:
            return out
        x = self.maxpool(x)  # (B, 64, H/4, W/4)

        for idx, name in enumerate(("layer1", "layer2", "layer3", "layer4"), start=1):
            x = getattr(self, name)(x)  # (B, out_channels[name], H/s, W/s)
            if name in wanted:
                out[name] = x
            if idx == last:
                return out

        x = torch.flatten(self.avgpool(x), 1)  # (B, 512 * expansion)
        out["fc"] = self.fc(x)  # (B, num_classes)
        return out


def resnet18(num_classes: int = 1000) -> ResNet:
    """ResNet-18, randomly initialised (11,689,512 parameters with 1000 classes)."""
    return ResNet(BasicBlock, (2, 2, 2, 2), num_classes=num_classes)


def resnet50(num_classes: int = 1000) -> ResNet:
    """ResNet-50 v1.5, randomly initialised (25,557,032 parameters with 1000 classes)."""
    return ResNet(Bottleneck, (3, 4, 6, 3), num_classes=num_classes)
