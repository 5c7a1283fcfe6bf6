"""The DiMP, ATOM and SiamFC networks: official layouts, shapes, and finite deterministic outputs."""

import pytest
import torch

from dimp_core import build_network
from dimp_core.nets import dimpnet

# parameter counts of the official architectures (reference section 7; the backbone includes the unused
# layer4 and fc, which official checkpoints store)
OFFICIAL_PARAMS = {
    "dimp18": {"feature_extractor": 11_689_512, "classifier": 2_360_878, "bb_regressor": 5_595_521},
    "dimp50": {"feature_extractor": 25_557_032, "classifier": 7_078_702, "bb_regressor": 10_461_569},
    "atom": {"feature_extractor": 11_689_512, "bb_regressor": 5_595_521},
}


def _inputs(n: int = 2, s: int = 1, size: int = 288, p: int = 4, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    train = torch.randn(n, s, 3, size, size, generator=g)
    test = torch.randn(n, s, 3, size, size, generator=g)
    boxes = torch.tensor([100.0, 110.0, 60.0, 50.0]).expand(n, s, 4).clone()
    proposals = boxes[:, :, None, :] + torch.randn(n, s, p, 4, generator=g) * 4
    return train, test, boxes, proposals


def _build(name: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_network(name)


@pytest.mark.parametrize("name", sorted(OFFICIAL_PARAMS))
def test_official_parameter_counts(name):
    net = _build(name)
    for module, expected in OFFICIAL_PARAMS[name].items():
        assert sum(p.numel() for p in getattr(net, module).parameters()) == expected, module
    assert not any(k.startswith("classifier") for k in net.state_dict()) or name != "atom"


def test_dimp18_official_keys_and_shapes():
    sd = _build("dimp18").state_dict()
    expected = {
        "feature_extractor.layer4.1.bn2.running_var": (512,),
        "feature_extractor.fc.weight": (1000, 512),
        "classifier.feature_extractor.0.conv1.weight": (256, 256, 3, 3),
        "classifier.feature_extractor.0.bn2.num_batches_tracked": (),
        "classifier.feature_extractor.1.weight": (256, 256, 3, 3),
        "classifier.filter_initializer.filter_conv.weight": (256, 256, 3, 3),
        "classifier.filter_initializer.filter_conv.bias": (256,),
        "classifier.filter_optimizer.log_step_length": (1,),
        "classifier.filter_optimizer.filter_reg": (1,),
        "classifier.filter_optimizer.label_map_predictor.weight": (1, 100, 1, 1),
        "classifier.filter_optimizer.target_mask_predictor.0.weight": (1, 100, 1, 1),
        "classifier.filter_optimizer.spatial_weight_predictor.weight": (1, 100, 1, 1),
        "bb_regressor.conv3_1r.0.weight": (128, 128, 3, 3),
        "bb_regressor.fc3_1r.0.weight": (256, 128, 3, 3),
        "bb_regressor.fc34_4r.1.running_mean": (256,),
        "bb_regressor.fc3_rt.linear.weight": (256, 256 * 25),
        "bb_regressor.fc4_rt.bn.weight": (256,),
        "bb_regressor.iou_predictor.weight": (1, 512),
    }
    for key, shape in expected.items():
        assert tuple(sd[key].shape) == shape, key
    prefixes = {k.split(".")[0] for k in sd}
    assert prefixes == {"feature_extractor", "classifier", "bb_regressor"}


def test_dimp50_classifier_has_no_residual_block():
    sd = _build("dimp50").state_dict()
    clf = sorted(k for k in sd if k.startswith("classifier.feature_extractor"))
    assert clf == ["classifier.feature_extractor.0.weight"]
    assert tuple(sd[clf[0]].shape) == (512, 1024, 3, 3)
    assert tuple(sd["bb_regressor.conv3_1r.0.weight"].shape) == (128, 512, 3, 3)


def test_training_initialisation_of_the_learned_loss():
    opt = _build("dimp18").classifier.filter_optimizer
    assert opt.log_step_length.item() == pytest.approx(torch.log(torch.tensor(0.9)).item())
    assert opt.filter_reg.item() == pytest.approx(0.1)
    assert opt.num_dist_bins == 100 and opt.bin_displacement == pytest.approx(0.1)


@pytest.mark.parametrize("name", ["dimp18", "dimp"])
def test_dimp_forward_shapes_finite_and_deterministic(name):
    train, test, boxes, proposals = _inputs()
    outputs = []
    for _ in range(2):
        net = _build(name, seed=3)
        with torch.no_grad():
            outputs.append(net(train, test, boxes, proposals))
    (scores, iou), (scores2, iou2) = outputs
    assert len(scores) == 1 + net.config.optim_iter
    assert all(s.shape == (2, 1, 19, 19) for s in scores)
    assert iou.shape == (2, 1, 4)
    assert all(torch.isfinite(s).all() for s in scores) and torch.isfinite(iou).all()
    assert all(torch.equal(a, b) for a, b in zip(scores, scores2, strict=True)) and torch.equal(iou, iou2)


def test_atom_forward_and_frozen_backbone():
    train, test, boxes, proposals = _inputs(n=1, s=2, p=5)
    net = _build("atom")
    with torch.no_grad():
        iou = net(train, test, boxes, proposals)
    assert iou.shape == (1, 2, 5) and torch.isfinite(iou).all()
    assert not any(p.requires_grad for p in net.feature_extractor.parameters())
    assert all(p.requires_grad for p in net.bb_regressor.parameters())


def test_forward_rejects_4d_images():
    net = _build("dimp18")
    train, test, boxes, proposals = _inputs()
    with pytest.raises(ValueError, match=r"\(N, S, 3, H, W\)"):
        net(train[0], test, boxes, proposals)


def test_gradients_flow_through_the_unrolled_optimiser():
    net = _build("dimp18").train()
    train, test, boxes, proposals = _inputs(s=2, size=160)  # BN in train mode needs S > 1
    scores, iou = net(train, test, boxes, proposals)
    (scores[-1].sum() + iou.sum()).backward()
    opt = net.classifier.filter_optimizer
    for p in (opt.log_step_length, opt.filter_reg, opt.label_map_predictor.weight,
              net.classifier.filter_initializer.filter_conv.weight, net.feature_extractor.conv1.weight):
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0


@pytest.mark.parametrize(("name", "z_size", "x_size"), [("siamfc_alexnet", 127, 255), ("siamfc", 127, 255)])
def test_siamfc_response_is_17x17(name, z_size, x_size):
    net = _build(name)
    z = torch.rand(2, 3, z_size, z_size) * 255
    x = torch.rand(6, 3, x_size, x_size) * 255  # three scales per exemplar
    with torch.no_grad():
        response = net(z, x)
    assert response.shape == (6, 1, 17, 17) and torch.isfinite(response).all()


def test_cross_correlation_pairs_each_exemplar_with_its_own_searches():
    from dimp_core.nets.siamfc import cross_correlation

    z = torch.randn(2, 4, 3, 3, dtype=torch.float64)
    x = torch.randn(4, 4, 7, 7, dtype=torch.float64)  # searches 0, 1 belong to z[0]; 2, 3 to z[1]
    out = cross_correlation(z, x, out_scale=1.0)
    for i in range(4):
        expected = torch.nn.functional.conv2d(x[i : i + 1], z[i // 2 : i // 2 + 1])
        assert torch.allclose(out[i : i + 1], expected)


def test_unknown_network_lists_the_known_ones():
    with pytest.raises(ValueError, match="dimp18"):
        build_network("dimp19")


def test_normalize_image_uses_imagenet_statistics():
    img = torch.full((3, 2, 2), 255.0)
    out = dimpnet.normalize_image(img)
    assert torch.allclose(out[:, 0, 0], (1 - torch.tensor(dimpnet.IMAGENET_MEAN)) / torch.tensor(dimpnet.IMAGENET_STD))


@pytest.mark.parametrize(("name", "fun_name", "fun_module", "net_type"), [
    ("dimp18", "dimpnet18", "ltr.models.tracking.dimpnet", "DiMPnet"),
    ("atom", "atom_resnet18", "ltr.models.bbreg.atom", "ATOMnet"),
])
@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_official_format_checkpoint_loads_into_the_network(tmp_path, name, fun_name, fun_module, net_type, legacy):
    from test_checkpoints import write_official

    from dimp_core import checkpoints

    source = _build(name, seed=11)
    with torch.no_grad():  # make the weights distinguishable from a fresh build
        for p in source.parameters():
            p.add_(0.01 * torch.randn_like(p))
    path = tmp_path / f"{name}.pth"
    write_official(path, legacy=legacy, marker=tmp_path / "marker", state_dict=source.state_dict(),
                   fun_name=fun_name, fun_module=fun_module, net_type=net_type)
    assert checkpoints.load_checkpoint_info(path)["constructor"]["fun_name"] == fun_name
    net = build_network(name, weights=path)
    for key, value in source.state_dict().items():
        assert torch.equal(net.state_dict()[key], value), key
    train, test, boxes, proposals = _inputs(n=1, p=3)
    with torch.no_grad():
        a, b = net(train, test, boxes, proposals), source.eval()(train, test, boxes, proposals)
    a_iou, b_iou = (a[1], b[1]) if isinstance(a, tuple) else (a, b)
    assert torch.isfinite(a_iou).all() and torch.equal(a_iou, b_iou)
    assert not (tmp_path / "marker").exists()


def test_wrong_architecture_names_missing_and_unexpected_keys(tmp_path):
    from dimp_core import checkpoints

    path = tmp_path / "atom.safetensors"
    checkpoints.save_safetensors(_build("atom").state_dict(), path, {"architecture": "atom"})
    with pytest.raises(ValueError, match=r"(?s)missing.*classifier\..*") as err:
        build_network("dimp18", weights=path)
    assert "dimp18" in str(err.value)
    with pytest.raises(ValueError, match=r"(?s)unexpected.*classifier\."):
        dimp_sd = tmp_path / "dimp18.safetensors"
        checkpoints.save_safetensors(_build("dimp18").state_dict(), dimp_sd, {"architecture": "dimp18"})
        build_network("atom", weights=dimp_sd)


def test_heads_only_file_is_completed_with_the_imagenet_backbone(tmp_path):
    from dimp_core import checkpoints

    trained = _build("dimp", seed=5)
    with torch.no_grad():
        trained.classifier.filter_optimizer.filter_reg.fill_(0.123)
    heads = {k: v for k, v in trained.state_dict().items() if not k.startswith("feature_extractor.")}
    path = tmp_path / "dimp.safetensors"
    checkpoints.save_safetensors(heads, path, {"architecture": "dimp"})
    loaded = build_network("dimp", weights=path).state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in trained.state_dict().items())
