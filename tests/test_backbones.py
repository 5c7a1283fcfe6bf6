"""Tests for dimp_core.nets.backbones: torchvision-compatible ResNets and EfficientNet-Lite0.

The ResNet layout is checked against facts of torchvision's resnet18/resnet50 (key names,
shapes, counts), the Lite0 wiring against the ImageNet predictions of the shipped weights on
scikit-image's photos.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import skimage.data
import torch
from torch import nn

from dimp_core.nets.backbones import (
    BasicBlock,
    EfficientNetLite0,
    ResNet,
    efficientnet_lite0,
    lite0_weights_path,
    resnet18,
    resnet50,
)
from dimp_core.nets.backbones.efficientnet_lite import _tf_same_pad

IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)

CAT_CLASSES = set(range(281, 288))  # tabby .. Egyptian cat, lynx (281-287)
COFFEE_CLASSES = {967, 968}  # espresso, cup
ROCKET_CLASSES = {657, 744, 812}  # missile, projectile, space shuttle
BN_PARAMS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


@pytest.fixture(autouse=True, scope="module")
def _deterministic() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def r18() -> ResNet:
    return resnet18().eval()


@pytest.fixture(scope="module")
def r50() -> ResNet:
    return resnet50().eval()


@pytest.fixture(scope="module")
def lite0() -> EfficientNetLite0:
    return efficientnet_lite0(pretrained=True).eval()


# ----------------------------------------------------------------------------------------------
# ResNet
# ----------------------------------------------------------------------------------------------

R18_KEYS = {
    "conv1.weight": (64, 3, 7, 7),
    "bn1.running_mean": (64,),
    "bn1.num_batches_tracked": (),
    "layer1.0.conv1.weight": (64, 64, 3, 3),
    "layer1.1.bn2.bias": (64,),
    "layer2.0.conv1.weight": (128, 64, 3, 3),
    "layer2.0.downsample.0.weight": (128, 64, 1, 1),
    "layer2.0.downsample.1.running_var": (128,),
    "layer3.0.downsample.0.weight": (256, 128, 1, 1),
    "layer3.1.conv2.weight": (256, 256, 3, 3),
    "layer4.1.conv2.weight": (512, 512, 3, 3),
    "fc.weight": (1000, 512),
    "fc.bias": (1000,),
}
R50_KEYS = {
    "conv1.weight": (64, 3, 7, 7),
    "layer1.0.conv1.weight": (64, 64, 1, 1),
    "layer1.0.conv3.weight": (256, 64, 1, 1),
    "layer1.0.downsample.0.weight": (256, 64, 1, 1),
    "layer2.0.conv1.weight": (128, 256, 1, 1),
    "layer2.0.conv2.weight": (128, 128, 3, 3),
    "layer2.3.bn3.weight": (512,),
    "layer3.0.downsample.1.weight": (1024,),
    "layer3.5.bn3.running_var": (1024,),
    "layer4.2.conv3.weight": (2048, 512, 1, 1),
    "fc.weight": (1000, 2048),
}


@pytest.mark.parametrize(
    ("name", "known", "n_entries", "n_tensors", "n_params", "absent"),
    [
        ("r18", R18_KEYS, 122, 62, 11_689_512, ["layer1.0.downsample.0.weight", "layer1.2.conv1.weight"]),
        ("r50", R50_KEYS, 320, 161, 25_557_032, ["layer3.6.conv1.weight", "layer4.3.conv1.weight"]),
    ],
)
def test_resnet_state_dict_matches_torchvision(
    request: pytest.FixtureRequest,
    name: str,
    known: dict[str, tuple[int, ...]],
    n_entries: int,
    n_tensors: int,
    n_params: int,
    absent: list[str],
) -> None:
    model: ResNet = request.getfixturevalue(name)
    state = model.state_dict()
    for key, shape in known.items():
        assert tuple(state[key].shape) == shape, key
    for key in absent:
        assert key not in state
    assert len(state) == n_entries
    assert len(list(model.parameters())) == n_tensors
    assert sum(p.numel() for p in model.parameters()) == n_params
    # torchvision's non-parametric modules exist under their names as well
    assert isinstance(model.relu, nn.ReLU)
    assert isinstance(model.maxpool, nn.MaxPool2d)
    assert isinstance(model.avgpool, nn.AdaptiveAvgPool2d)


def test_resnet50_is_v1_5(r50: ResNet) -> None:
    first = r50.layer2[0]
    assert first.conv1.stride == (1, 1)
    assert first.conv2.stride == (2, 2)
    assert first.downsample[0].stride == (2, 2)


def test_resnet_init_as_torchvision(r18: ResNet) -> None:
    w = r18.layer3[0].conv1.weight  # fan_out = 256 * 3 * 3
    assert w.std().item() == pytest.approx(math.sqrt(2.0 / (256 * 9)), rel=0.05)
    assert torch.all(r18.layer3[0].bn1.weight == 1) and torch.all(r18.layer3[0].bn1.bias == 0)


def test_basic_block_keys() -> None:
    keys = set(BasicBlock(256, 256).state_dict())
    expected = {f"{bn}.{p}" for bn in ("bn1", "bn2") for p in BN_PARAMS} | {"conv1.weight", "conv2.weight"}
    assert keys == expected


@pytest.mark.parametrize(("name", "c2", "c3"), [("r18", 128, 256), ("r50", 512, 1024)])
@torch.no_grad()
def test_resnet_output_shapes_288(request: pytest.FixtureRequest, name: str, c2: int, c3: int) -> None:
    model: ResNet = request.getfixturevalue(name)
    out = model(torch.randn(1, 3, 288, 288))
    assert set(out) == {"layer2", "layer3"}
    assert out["layer2"].shape == (1, c2, 36, 36)
    assert out["layer3"].shape == (1, c3, 18, 18)
    for layer, feat in out.items():
        assert feat.shape[1] == model.out_channels[layer]
        assert 288 // model.out_strides[layer] == feat.shape[-1]


@torch.no_grad()
def test_resnet_all_outputs(r18: ResNet) -> None:
    out = r18(torch.randn(2, 3, 64, 64), output_layers=ResNet.LAYER_ORDER)
    assert out["conv1"].shape == (2, 64, 32, 32)
    assert out["layer1"].shape == (2, 64, 16, 16)
    assert out["layer4"].shape == (2, 512, 2, 2)
    assert out["fc"].shape == (2, 1000)


@torch.no_grad()
def test_resnet_stops_after_last_requested_layer(r18: ResNet) -> None:
    ran: list[str] = []
    handles = [
        getattr(r18, name).register_forward_hook(lambda *_, n=name: ran.append(n))
        for name in ("maxpool", "layer2", "layer3", "layer4", "fc")
    ]
    try:
        out = r18(torch.randn(1, 3, 64, 64), output_layers=["layer2"])
        assert list(out) == ["layer2"] and ran == ["maxpool", "layer2"]
        ran.clear()
        assert list(r18(torch.randn(1, 3, 64, 64), output_layers=("conv1",))) == ["conv1"]
        assert ran == []
    finally:
        for h in handles:
            h.remove()


def test_resnet_rejects_bad_layer_names(r18: ResNet) -> None:
    with pytest.raises(ValueError, match="unknown"):
        r18(torch.randn(1, 3, 32, 32), output_layers=("layer5",))
    with pytest.raises(ValueError, match="at least one"):
        r18(torch.randn(1, 3, 32, 32), output_layers=())


# ----------------------------------------------------------------------------------------------
# EfficientNet-Lite0
# ----------------------------------------------------------------------------------------------


def test_tf_same_padding_rule() -> None:
    assert _tf_same_pad(224, 3, 2) == (0, 1)
    assert _tf_same_pad(224, 5, 2) == (1, 2)
    assert _tf_same_pad(225, 3, 2) == (1, 1)
    assert _tf_same_pad(15, 5, 2) == (2, 2)
    assert _tf_same_pad(36, 5, 1) == (2, 2)


def test_lite0_loads_shipped_weights_strictly(lite0: EfficientNetLite0) -> None:
    shipped = torch.load(lite0_weights_path(), weights_only=True, map_location="cpu")
    state = lite0.state_dict()
    assert len(shipped) == 296 and set(state) == set(shipped)
    for key, value in shipped.items():
        assert torch.equal(state[key], value), key
    n_params = sum(p.numel() for p in lite0.parameters())
    assert 4.65e6 <= n_params <= 4.69e6
    assert EfficientNetLite0().load_state_dict(shipped, strict=True) is not None


@torch.no_grad()
def test_lite0_output_shapes_288(lite0: EfficientNetLite0) -> None:
    out = lite0(torch.randn(1, 3, 288, 288), output_layers=("stride8", "stride16", "stride32"))
    assert out["stride8"].shape == (1, 40, 36, 36)
    assert out["stride16"].shape == (1, 112, 18, 18)
    assert out["stride32"].shape == (1, 320, 9, 9)
    for name, feat in out.items():
        assert feat.shape[1] == lite0.out_channels[name]
        assert 288 // lite0.out_strides[name] == feat.shape[-1]


@torch.no_grad()
def test_lite0_stops_after_last_requested_layer(lite0: EfficientNetLite0) -> None:
    ran: list[str] = []
    watched = {"block10": lite0._blocks[10], "block11": lite0._blocks[11], "head": lite0._conv_head}
    handles = [m.register_forward_hook(lambda *_, n=n: ran.append(n)) for n, m in watched.items()]
    try:
        out = lite0(torch.randn(1, 3, 64, 64))  # default: stride8, stride16
        assert list(out) == ["stride8", "stride16"] and ran == ["block10"]
    finally:
        for h in handles:
            h.remove()
    with pytest.raises(ValueError, match="unknown"):
        lite0(torch.randn(1, 3, 64, 64), output_layers=("layer3",))


def _resize_crop(img: np.ndarray, short_side: int = 256, crop: int = 224) -> np.ndarray:
    """Standard ImageNet evaluation geometry: shorter side to 256, centre crop 224."""
    h, w = img.shape[:2]
    scale = short_side / min(h, w)
    size = (round(w * scale), round(h * scale))
    resized = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
    top, left = (size[1] - crop) // 2, (size[0] - crop) // 2
    return resized[top : top + crop, left : left + crop]


def _to_tensor(img: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 RGB -> (1, 3, H, W) float in [0, 255]."""
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float()


@pytest.mark.parametrize(
    ("photo", "accepted"),
    [("chelsea", CAT_CLASSES), ("coffee", COFFEE_CLASSES), ("rocket", ROCKET_CLASSES)],
)
@torch.no_grad()
def test_lite0_imagenet_top5(lite0: EfficientNetLite0, photo: str, accepted: set[int]) -> None:
    x = _to_tensor(_resize_crop(getattr(skimage.data, photo)()))
    logits = lite0((x / 255.0 - IMAGENET_MEAN) / IMAGENET_STD, output_layers=["logits"])["logits"]
    top5 = set(logits[0].topk(5).indices.tolist())
    assert top5 & accepted, f"{photo}: top-5 {sorted(top5)} has none of {sorted(accepted)}"
    assert int(logits[0].argmax()) in accepted  # holds for all three photos


@torch.no_grad()
def test_lite0_imagenet_input_equals_tflite_input(lite0: EfficientNetLite0) -> None:
    """input_norm='imagenet' feeds the network exactly what the TF-Lite convention would."""
    tflite = EfficientNetLite0(input_norm="tflite")
    tflite.load_state_dict(lite0.state_dict())
    tflite.eval()
    x = _to_tensor(_resize_crop(skimage.data.coffee()))
    a = lite0((x / 255.0 - IMAGENET_MEAN) / IMAGENET_STD, ["stride8", "logits"])
    b = tflite((x - 127.0) / 128.0, ["stride8", "logits"])
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(("photo", "cls", "prob"), [("chelsea", 285, 0.78), ("coffee", 967, 0.91)])
@torch.no_grad()
def test_lite0_reproduces_reference_scores(lite0: EfficientNetLite0, photo: str, cls: int, prob: float) -> None:
    """Reference scores (photo squashed to 224x224, TF-Lite input); needs TF-"SAME" padding.

    With symmetric padding the Egyptian-cat score of chelsea drops to 0.67.
    """
    img = cv2.resize(getattr(skimage.data, photo)(), (224, 224), interpolation=cv2.INTER_AREA)
    x = (_to_tensor(img) - 127.0) / 128.0
    tflite = EfficientNetLite0(input_norm="tflite")
    tflite.load_state_dict(lite0.state_dict())
    probs = tflite.eval()(x, ["logits"])["logits"].softmax(-1)[0]
    assert int(probs.argmax()) == cls
    assert probs[cls].item() == pytest.approx(prob, abs=0.02)
