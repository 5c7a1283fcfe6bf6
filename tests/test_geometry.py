"""Box conversions, IoU and patch sampling on hand-computed cases."""

import pytest
import torch
import torch.nn.functional as F

from dimp_core import geometry as G


def test_round_trips_are_exact():
    boxes = torch.rand(7, 3, 4, dtype=torch.float64) * 100 + 1
    assert torch.equal(G.xyxy_to_xywh(G.xywh_to_xyxy(boxes)), boxes) or torch.allclose(
        G.xyxy_to_xywh(G.xywh_to_xyxy(boxes)), boxes, atol=1e-12)
    assert torch.allclose(G.cxcywh_to_xywh(G.xywh_to_cxcywh(boxes)), boxes, atol=1e-12)


def test_centre_convention_is_pixel_index():
    # a 1-pixel box at (5, 7) is centred on that pixel; a 2-pixel box between its pixels
    assert G.xywh_to_cxcywh(torch.tensor([5.0, 7.0, 1.0, 1.0])).tolist() == [5.0, 7.0, 1.0, 1.0]
    assert G.xywh_to_cxcywh(torch.tensor([5.0, 7.0, 2.0, 4.0])).tolist() == [5.5, 8.5, 2.0, 4.0]


def test_bad_box_shape_is_an_error():
    with pytest.raises(ValueError, match="last dimension of size 4"):
        G.xywh_to_xyxy(torch.zeros(3, 5))


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ([0, 0, 10, 10], [0, 0, 10, 10], 1.0),
        ([0, 0, 10, 10], [5, 0, 10, 10], 50 / 150),
        ([0, 0, 10, 10], [5, 5, 10, 10], 25 / 175),
        ([0, 0, 10, 10], [10, 0, 10, 10], 0.0),  # touching edges
        ([0, 0, 10, 10], [20, 20, 5, 5], 0.0),
        ([0, 0, 10, 10], [2, 2, 4, 4], 16 / 100),  # contained
        ([0, 0, 0, 10], [0, 0, 0, 10], 0.0),  # zero area
        ([0, 0, 10, 10], [-5, -5, 10, 10], 25 / 175),
    ],
)
def test_iou_hand_computed(a, b, expected):
    iou = G.box_iou(torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64))
    assert iou.item() == pytest.approx(expected, abs=1e-12)


def test_iou_broadcasts():
    a = torch.tensor([[0.0, 0, 10, 10]])
    b = torch.tensor([[0.0, 0, 10, 10], [5, 0, 10, 10], [100, 0, 1, 1]])
    assert torch.allclose(G.box_iou(a, b), torch.tensor([1.0, 1 / 3, 0.0]))


def _reference_patch(image, cx, cy, scale, out):
    """pytracking's sample_patch written out with integer arithmetic and F.pad (PyTorch 1.1 semantics)."""
    df = max(int(scale - 0.1), 1)
    px, py = int(cx), int(cy)
    im2 = image
    if df > 1:
        ox, oy = px % df, py % df
        px, py = (px - ox) // df, (py - oy) // df
        im2 = image[..., oy::df, ox::df]
    n = max(int(round(scale * out / df)), 2)
    tl_x, tl_y = px - (n - 1) // 2, py - (n - 1) // 2
    br_x, br_y = px + n // 2 + 1, py + n // 2 + 1
    pad = (-tl_x, br_x - im2.shape[-1], -tl_y, br_y - im2.shape[-2])
    patch = F.pad(im2[None].float(), pad, mode="replicate")
    return F.interpolate(patch, size=(out, out), mode="bilinear", align_corners=False)[0]


@pytest.mark.parametrize(
    ("cx", "cy", "scale"),
    [(30.0, 20.0, 1.0), (30.7, 20.2, 0.5), (3.0, 2.0, 1.3), (58.0, 45.0, 2.0), (31.0, 25.0, 3.7), (10.0, 40.0, 0.8)],
)
def test_sample_patch_matches_pad_and_resize(cx, cy, scale):
    torch.manual_seed(0)
    image = torch.randint(0, 256, (3, 48, 64), dtype=torch.uint8)
    patch, _ = G.sample_patch(image, (cx, cy), scale, 32)
    assert patch.shape == (3, 32, 32) and patch.dtype == torch.float32
    assert torch.allclose(patch, _reference_patch(image, cx, cy, scale, 32), atol=1e-4)


def test_sample_patch_identity_crop_and_frame():
    image = torch.arange(100.0).reshape(1, 10, 10)
    patch, frame = G.sample_patch(image, (5.0, 4.0), 1.0, 4)  # n = 4: columns 4..7, rows 3..6
    assert torch.equal(patch[0], image[0, 3:7, 4:8])
    assert frame == G.PatchFrame(center=(5.5, 4.5), scale=1.0, size=4)


def test_patch_frame_maps_boxes_both_ways():
    frame = G.PatchFrame(center=(100.0, 50.0), scale=2.0, size=288)
    box = torch.tensor([80.0, 40.0, 41.0, 21.0], dtype=torch.float64)  # centre (100, 50)
    in_patch = frame.box_to_patch(box)
    assert torch.allclose(G.xywh_to_cxcywh(in_patch), torch.tensor([143.5, 143.5, 20.5, 10.5], dtype=torch.float64))
    assert torch.allclose(frame.box_to_image(in_patch), box)


def test_patch_frame_matches_the_sampled_pixels():
    # the image value at the frame's centre equals the patch value at the patch centre (linear image)
    xs = torch.arange(200.0)
    image = (xs[None, :] + 1000 * xs[:, None])[None]  # value = x + 1000 y
    for center, scale in [((70.3, 90.8), 1.0), ((70.0, 90.0), 0.7), ((101.0, 77.0), 2.6), ((33.0, 140.0), 3.3)]:
        patch, frame = G.sample_patch(image, center, scale, 64)
        mid = patch[0, 31:33, 31:33].mean()  # patch centre (31.5, 31.5)
        assert mid.item() == pytest.approx(frame.center[0] + 1000 * frame.center[1], abs=1e-2)
        pixel = torch.tensor([40.0, 36.0, 1.0, 1.0])  # patch pixel (x=40, y=36), inside the image
        cx, cy = G.xywh_to_cxcywh(frame.box_to_image(pixel))[:2].tolist()
        assert patch[0, 36, 40].item() == pytest.approx(cx + 1000 * cy, abs=2e-2)


def test_sample_patch_replicates_the_border():
    image = torch.arange(16.0).reshape(1, 4, 4)
    patch, _ = G.sample_patch(image, (0.0, 3.0), 1.0, 4)  # columns -1..2, rows 2..5
    expected = torch.tensor([[8.0, 8, 9, 10], [12, 12, 13, 14], [12, 12, 13, 14], [12, 12, 13, 14]])
    assert torch.equal(patch[0], expected)


def test_sample_patch_far_outside_the_image_is_constant_border():
    image = torch.arange(16.0).reshape(1, 4, 4)
    patch, _ = G.sample_patch(image, (100.0, -50.0), 1.0, 4)
    assert torch.all(patch == image[0, 0, 3])


def test_sample_patch_decimates_large_scales():
    # scale 4.2 -> df = 4: pixels at stride 4 starting at the centre's residue
    image = torch.arange(64.0 * 64).reshape(1, 64, 64)
    df, x0, y0, n, _ = G.patch_geometry((33.0, 30.0), 4.2, 8)
    assert (df, n) == (4, 8)
    patch, frame = G.sample_patch(image, (33.0, 30.0), 4.2, 8)
    cols = torch.arange(x0 * 4 + 1, x0 * 4 + 1 + 32, 4).clamp(1, 61)  # 33 % 4 = 1
    rows = torch.arange(y0 * 4 + 2, y0 * 4 + 2 + 32, 4).clamp(2, 62)  # 30 % 4 = 2
    assert torch.equal(patch[0], image[0][rows][:, cols])
    assert frame.scale == 4.0 and frame.center == (x0 * 4 + 1 + 14, y0 * 4 + 2 + 14)  # centre of 8 samples, stride 4


def test_sample_patch_batched_and_validates():
    image = torch.rand(2, 3, 20, 20)
    patch, _ = G.sample_patch(image, (10.0, 10.0), 0.5, 16)
    assert patch.shape == (2, 3, 16, 16)
    with pytest.raises(ValueError, match="scale must be positive"):
        G.sample_patch(image, (10.0, 10.0), 0.0, 16)
    with pytest.raises(ValueError, match="image must be"):
        G.sample_patch(torch.rand(20, 20), (10.0, 10.0), 1.0, 16)
