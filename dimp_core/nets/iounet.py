"""IoU-Net with target modulation: predicts the overlap of a box with the target (ATOM and DiMP).

Paper: Danelljan et al., "ATOM: Accurate Tracking by Overlap Maximization" (CVPR 2019), section
"Target Estimation by Overlap Maximization"; reused unchanged by DiMP. Reference code: pytracking
``ltr/models/bbreg/atom_iou_net.py`` (``AtomIoUNet``); parameter names match its state dict.

Two branches share the backbone's stride-8 ("3") and stride-16 ("4") features:

- reference branch (first frame, once per sequence): PrRoIPool the target box -> two modulation vectors
  (``fc34_3r``, ``fc34_4r``), one per feature level;
- test branch (every frame): features multiplied channel-wise by the modulation vectors, PrRoIPool of each
  candidate box B (5x5 at stride 8, 3x3 at stride 16), two fully connected blocks, a linear layer:

.. math:: \\mathrm{IoU}(B) = g\\big(\\mathrm{PrPool}(z_{test} \\odot c(x_0, B_0), B)\\big)

Boxes are (x, y, w, h) in crop pixels; shapes below use B for the batch (images * sequences) and P for
the number of proposals per image.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from dimp_core.ops import prroi_layout, prroi_pool2d, prroi_pool2d_vjp


def conv_bn_relu(in_planes: int, out_planes: int, kernel_size: int = 3, padding: int = 1) -> nn.Sequential:
    """Conv2d (with bias) + BatchNorm + ReLU; keys ``0.*`` and ``1.*`` as pytracking's ``conv``."""
    return nn.Sequential(nn.Conv2d(in_planes, out_planes, kernel_size, padding=padding, bias=True),
                         nn.BatchNorm2d(out_planes), nn.ReLU(inplace=True))


class LinearBlock(nn.Module):
    """Flatten -> Linear -> BatchNorm (as a 1x1 BatchNorm2d, for the reference's keys) -> ReLU."""

    conv_bn_pairs = (("linear", "bn"),)  # for nets.backbones.fold_batchnorm

    def __init__(self, in_planes: int, out_planes: int, input_size: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_planes * input_size * input_size, out_planes)
        self.bn = nn.BatchNorm2d(out_planes)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        x = self.linear(x.reshape(x.shape[0], -1))  # (B, out)
        x = self.relu(self.bn(x.reshape(x.shape[0], x.shape[1], 1, 1)))
        return x.reshape(x.shape[0], -1)

    def forward_vjp(self, x: Tensor) -> tuple[Tensor, Callable[[Tensor], Tensor]]:
        """``forward(x)`` and its vector-Jacobian product (grad of the output -> grad of x), eval mode only."""
        if self.bn.training if isinstance(self.bn, nn.BatchNorm2d) else False:
            raise RuntimeError("LinearBlock.forward_vjp needs the BatchNorm in eval mode")
        a = self.bn(self.linear(x.reshape(x.shape[0], -1))[:, :, None, None])[:, :, 0, 0]  # (B, out)
        # a frozen BatchNorm is y = z * gamma / sqrt(var + eps) + beta (the identity once folded)
        bn_scale = (self.bn.weight / torch.sqrt(self.bn.running_var + self.bn.eps)
                    if isinstance(self.bn, nn.BatchNorm2d) else None)

        def vjp(grad: Tensor) -> Tensor:
            grad = grad * (a > 0)  # ReLU
            if bn_scale is not None:
                grad = grad * bn_scale
            return (grad @ self.linear.weight).reshape(x.shape)

        return torch.relu(a), vjp


def boxes_to_rois(boxes: Tensor) -> Tensor:
    """(B, P, 4) boxes (x, y, w, h) -> (B*P, 5) rois (batch index, x0, y0, x1, y1) for PrRoIPool."""
    b, p = boxes.shape[:2]
    index = torch.arange(b, dtype=boxes.dtype, device=boxes.device).reshape(b, 1, 1).expand(b, p, 1)
    rois = torch.cat([index, boxes[..., :2], boxes[..., :2] + boxes[..., 2:]], dim=2)  # (B, P, 5)
    return rois.reshape(-1, 5)


class IoUNet(nn.Module):
    """ATOM's IoU predictor (pytracking ``AtomIoUNet``).

    Args:
        input_dim: channels of the stride-8 and stride-16 backbone features ((128, 256) for ResNet-18).
        pred_input_dim: channels of the modulated test features (256, 256).
        pred_inter_dim: width of the fully connected blocks (256, 256).
        test_dim: channels of the first test-branch convs (256 in the reference; smaller for a cheap
            backbone, where the stride-8 test convs would otherwise dominate the frame time).
    """

    def __init__(self, input_dim: tuple[int, int] = (128, 256), pred_input_dim: tuple[int, int] = (256, 256),
                 pred_inter_dim: tuple[int, int] = (256, 256), test_dim: int = 256) -> None:
        super().__init__()
        # _r: reference branch, _t: test branch; 3: stride-8 level, 4: stride-16 level
        self.conv3_1r = conv_bn_relu(input_dim[0], 128)
        self.conv3_1t = conv_bn_relu(input_dim[0], test_dim)
        self.conv3_2t = conv_bn_relu(test_dim, pred_input_dim[0])
        self.fc3_1r = conv_bn_relu(128, 256, padding=0)  # 3x3 pooled -> 1x1
        self.conv4_1r = conv_bn_relu(input_dim[1], 256)
        self.conv4_1t = conv_bn_relu(input_dim[1], test_dim)
        self.conv4_2t = conv_bn_relu(test_dim, pred_input_dim[1])
        self.fc34_3r = conv_bn_relu(256 + 256, pred_input_dim[0], kernel_size=1, padding=0)
        self.fc34_4r = conv_bn_relu(256 + 256, pred_input_dim[1], kernel_size=1, padding=0)
        self.fc3_rt = LinearBlock(pred_input_dim[0], pred_inter_dim[0], 5)
        self.fc4_rt = LinearBlock(pred_input_dim[1], pred_inter_dim[1], 3)
        self.iou_predictor = nn.Linear(pred_inter_dim[0] + pred_inter_dim[1], 1)

        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight.data, mode="fan_in")
                m.bias.data.zero_()
            elif isinstance(m, nn.BatchNorm2d):
                # pytracking mimics PyTorch <= 1.1, whose BatchNorm weight default was U(0, 1)
                m.weight.data.uniform_()
                m.bias.data.zero_()

    def get_modulation(self, feat: tuple[Tensor, Tensor], boxes: Tensor) -> tuple[Tensor, Tensor]:
        """Modulation vectors from the reference frame.

        Args:
            feat: stride-8 (B, C3, H3, W3) and stride-16 (B, C4, H4, W4) backbone features.
            boxes: (B, 4) target boxes (x, y, w, h).

        Returns:
            Two (B, pred_input_dim[i], 1, 1) vectors.
        """
        rois = boxes_to_rois(boxes[:, None])  # (B, 5)
        roi3r = prroi_pool2d(self.conv3_1r(feat[0]), rois, 3, 1 / 8)  # (B, 128, 3, 3)
        roi4r = prroi_pool2d(self.conv4_1r(feat[1]), rois, 1, 1 / 16)  # (B, 256, 1, 1)
        fc34_r = torch.cat([self.fc3_1r(roi3r), roi4r], dim=1)  # (B, 512, 1, 1)
        return self.fc34_3r(fc34_r), self.fc34_4r(fc34_r)

    def get_iou_feat(self, feat: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        """Test-branch features from the stride-8 and stride-16 backbone features (each (B, C, H, W))."""
        return self.conv3_2t(self.conv3_1t(feat[0])), self.conv4_2t(self.conv4_1t(feat[1]))

    def predict_iou(self, modulation: tuple[Tensor, Tensor], iou_feat: tuple[Tensor, Tensor],
                    proposals: Tensor) -> Tensor:
        """Predicted IoU of each proposal.

        Args:
            modulation: two (B, D) or (B, D, 1, 1) vectors from :meth:`get_modulation`.
            iou_feat: two (B, D, H, W) maps from :meth:`get_iou_feat`.
            proposals: (B, P, 4) boxes (x, y, w, h).

        Returns:
            (B, P) predicted IoU (trained to regress 2 IoU - 1).
        """
        return self.predict_iou_modulated(self.modulate(modulation, iou_feat), proposals)

    @staticmethod
    def modulate(modulation: tuple[Tensor, Tensor], iou_feat: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        """The test features times the target's modulation vectors, z_test * c(x0, B0): two (B, D, H, W) maps.

        They do not depend on the proposals, so box refinement computes them once per frame, in the memory
        layout that :func:`~dimp_core.ops.prroi_pool2d` reads fastest (:func:`~dimp_core.ops.prroi_layout`).
        """
        b = iou_feat[0].shape[0]
        return (prroi_layout(iou_feat[0] * modulation[0].reshape(b, -1, 1, 1)),
                prroi_layout(iou_feat[1] * modulation[1].reshape(b, -1, 1, 1)))

    def predict_iou_modulated(self, modulated: tuple[Tensor, Tensor], proposals: Tensor) -> Tensor:
        """:meth:`predict_iou` from features already multiplied by the modulation (:meth:`modulate`)."""
        b, p = proposals.shape[:2]
        rois = boxes_to_rois(proposals)  # (B*P, 5)
        fc3 = self.fc3_rt(prroi_pool2d(modulated[0], rois, 5, 1 / 8))  # (B*P, D)
        fc4 = self.fc4_rt(prroi_pool2d(modulated[1], rois, 3, 1 / 16))  # (B*P, D)
        return self.iou_predictor(torch.cat([fc3, fc4], dim=1)).reshape(b, p)

    def predict_iou_and_box_grad(self, modulated: tuple[Tensor, Tensor], proposals: Tensor) -> tuple[Tensor, Tensor]:
        """:meth:`predict_iou_modulated` and its gradient with respect to the proposals, without autograd.

        IoU = w . [fc3(PrPool(z3, B)), fc4(PrPool(z4, B))] + b, so dIoU/dB runs back through the predictor's
        weights, each block's ReLU, BatchNorm scale and linear layer, and PrRoIPool's closed-form derivative
        (:func:`~dimp_core.ops.prroi_pool2d_vjp`): the same numbers autograd gives, in a few matrix products
        (box refinement needs this 5 times per frame). Eval mode only.

        Args:
            modulated: two (1, D, H, W) maps from :meth:`modulate`.
            proposals: (1, P, 4) boxes (x, y, w, h).

        Returns:
            (1, P) predicted IoU and (1, P, 4) its gradient with respect to (x, y, w, h) of each box.
        """
        b, p = proposals.shape[:2]
        rois = boxes_to_rois(proposals)  # (B*P, 5)
        pooled3, pool3_vjp = prroi_pool2d_vjp(modulated[0], rois, 5, 1 / 8)  # (B*P, D, 5, 5)
        pooled4, pool4_vjp = prroi_pool2d_vjp(modulated[1], rois, 3, 1 / 16)  # (B*P, D, 3, 3)
        fc3, fc3_vjp = self.fc3_rt.forward_vjp(pooled3)  # (B*P, D)
        fc4, fc4_vjp = self.fc4_rt.forward_vjp(pooled4)
        iou = self.iou_predictor(torch.cat([fc3, fc4], dim=1)).reshape(b, p)
        w = self.iou_predictor.weight[0]  # (2D,): dIoU / d[fc3, fc4], the same for every box
        d3 = fc3.shape[1]
        grad_rois = (pool3_vjp(fc3_vjp(w[:d3].expand_as(fc3))) + pool4_vjp(fc4_vjp(w[d3:].expand_as(fc4))))
        g = grad_rois[:, 1:]  # (B*P, 4) over (x1, y1, x2, y2); x2 = x + w, y2 = y + h
        grad = torch.cat([g[:, :2] + g[:, 2:], g[:, 2:]], dim=1)
        return iou, grad.reshape(b, p, 4)

    def forward(self, train_feat: tuple[Tensor, Tensor], test_feat: tuple[Tensor, Tensor], train_boxes: Tensor,
                test_proposals: Tensor) -> Tensor:
        """Training: modulation from the first train frame, IoU of every test proposal.

        Args:
            train_feat: two (N_train*S, C, H, W) maps; test_feat: two (N_test*S, C, H, W) maps.
            train_boxes: (N_train, S, 4); test_proposals: (N_test, S, P, 4).

        Returns:
            (N_test, S, P).
        """
        n_test, s, p = test_proposals.shape[:3]
        first = [f.reshape(-1, s, *f.shape[-3:])[0] for f in train_feat]  # first train frame, (S, C, H, W)
        modulation = self.get_modulation((first[0], first[1]), train_boxes[0])
        modulation = tuple(m.reshape(1, s, -1).expand(n_test, -1, -1).reshape(n_test * s, -1) for m in modulation)
        iou_feat = self.get_iou_feat(test_feat)
        iou = self.predict_iou(modulation, iou_feat, test_proposals.reshape(n_test * s, p, 4))
        return iou.reshape(n_test, s, p)
