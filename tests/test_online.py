"""The online logic's numbers against hand-computed cases: augmentation, memory weights, localisation flags."""

import math

import pytest
import torch

from dimp_core.trackers.augmentation import AugmentationParams, augment, crop_center, dropout_copies
from dimp_core.trackers.localization import LocalizationParams, hann2d, localize_advanced
from dimp_core.trackers.memory import SampleMemory, update_sample_weights
from dimp_core.trackers.refinement import RefinementParams, jittered_boxes, select_box

# --------------------------------------------------------------------------- augmentation


def test_dimp_augmentation_makes_13_patches_with_the_reference_shifts():
    torch.manual_seed(0)
    big = torch.rand(3, 576, 576)
    patches, shifts = augment(big, 288, AugmentationParams(), torch.Generator().manual_seed(0))
    assert patches.shape == (13, 3, 288, 288)
    # identity, then 0.6 * 144 = 86.4 -> 86 px in each direction (pytracking lists (y, x))
    assert shifts[:5].tolist() == [[0, 0], [86, 86], [86, -86], [-86, 86], [-86, -86]]
    # flip, 3 blurs, 4 rotations: random shifts within +-288/6 = +-48 px
    assert shifts[5:].abs().max() <= 48 and (shifts[5:] != 0).any()
    assert torch.equal(patches[0], big[:, 144:432, 144:432])


def test_crop_center_moves_the_content_by_the_shift():
    big = torch.zeros(1, 20, 20)
    big[0, 10, 10] = 1.0  # a dot at the centre of the big patch
    out = crop_center(big, 10, (3, -2))  # content moves right 3, up 2
    assert out[0].nonzero().tolist() == [[5 - 2, 5 + 3]]


def test_augmented_sample_boxes_follow_the_shifts():
    # a bright square at the centre of the big patch: in each shifted sample it sits at the shifted box
    big = torch.zeros(3, 576, 576)
    big[:, 278:298, 268:308] = 255.0  # x 268..307, y 278..297
    params = AugmentationParams(flip=False, blur_sigmas=(), rotations=())
    patches, shifts = augment(big, 288, params)
    for patch, (dx, dy) in zip(patches, shifts.tolist(), strict=True):
        ys, xs = patch[0].nonzero(as_tuple=True)
        assert (xs.min().item(), ys.min().item()) == (268 - 144 + dx, 278 - 144 + dy)


def test_dropout_copies_zero_whole_channels_and_rescale():
    feat = torch.ones(64, 4, 4)
    out = dropout_copies(feat, 2, 0.2, torch.Generator().manual_seed(1))
    assert out.shape == (2, 64, 4, 4)
    per_channel = out[:, :, 0, 0]
    assert set(per_channel.unique().tolist()) <= {0.0, 1.25}
    assert torch.equal(out, per_channel[:, :, None, None].expand_as(out))


# --------------------------------------------------------------------------- memory


def test_first_update_scales_old_weights_by_one_over_one_minus_lr():
    w = torch.zeros(50, dtype=torch.float64)
    w[:15] = 1 / 15
    new, index = update_sample_weights(w, 15, 15, None, 0.01, 0.25)
    assert index == 15
    total = 1 / 0.99 + 0.01
    assert new[0].item() == pytest.approx((1 / 15 / 0.99) / total)
    assert new[15].item() == pytest.approx(0.01 / total)
    assert new.sum().item() == pytest.approx(1.0)


def test_memory_weights_after_several_updates_are_geometric():
    memory = SampleMemory(torch.zeros(15, 2, dtype=torch.float64), torch.zeros(15, 4), 50, 0.01, 0.25)
    for _ in range(5):
        memory.add(torch.ones(2, dtype=torch.float64), torch.ones(4))
    w = memory.weights
    assert memory.num_stored == 20
    for i in range(16, 20):  # each new sample 1/(1 - lr) times heavier than the previous one
        assert (w[i] / w[i - 1]).item() == pytest.approx(1 / 0.99)
    assert w.sum().item() == pytest.approx(1.0)
    assert torch.allclose(w[:15], w[0].expand(15))


def test_initial_samples_keep_their_minimum_weight():
    memory = SampleMemory(torch.zeros(15, 2, dtype=torch.float64), torch.zeros(15, 4), 50, 0.9, 0.25)
    for _ in range(3):
        memory.add(torch.ones(2, dtype=torch.float64), torch.ones(4))
    # by hand: the initial samples' share after each update, before the minimum applies
    a1 = 10 / 10.9  # update 1: 15 x (1/15)/0.1 = 10 plus the new 0.9, normalised
    new1 = 0.9 / 10.9
    new2 = new1 / 0.1
    a2, new1, new2 = a1 / (1 + new2), new1 / (1 + new2), new2 / (1 + new2)
    new3 = new2 / 0.1
    a3 = a2 / (1 + new3)  # 0.091 < 0.25: the minimum applies
    rest = (1 - a3) / (0.25 + (1 - a3))  # pytracking divides by (minimum + rest), then sets the minimum
    w = memory.weights
    assert torch.allclose(w[:15], torch.full((15,), 0.25 / 15, dtype=torch.float64))
    assert w[15:18].sum().item() == pytest.approx(rest)
    assert (w[17] / w[16]).item() == pytest.approx(10.0)  # relative weights of new samples survive
    # note: the reference's rule leaves the total slightly above one (0.25 + rest); the next update
    # normalises again, and the optimiser only uses relative weights within the loss
    assert w.sum().item() == pytest.approx(0.25 + rest)


def test_full_memory_replaces_the_lightest_non_initial_sample():
    memory = SampleMemory(torch.zeros(3, 1, dtype=torch.float64), torch.zeros(3, 4), 5, 0.1, 0.25)
    slots = [memory.add(torch.full((1,), float(i), dtype=torch.float64), torch.ones(4)) for i in range(4)]
    assert slots == [3, 4, 3, 4]  # full after two; then the oldest (lightest) new sample goes
    assert memory.samples[:, 0].tolist() == [0.0, 0.0, 0.0, 2.0, 3.0]
    assert memory.weights.sum().item() == pytest.approx(1.0)


# --------------------------------------------------------------------------- localisation


def _peaks(*peaks: tuple[int, int, float]) -> torch.Tensor:
    """A 19 x 19 map with Gaussian blobs at (row, col) of the given heights."""
    r = torch.arange(19.0).reshape(-1, 1)
    c = torch.arange(19.0).reshape(1, -1)
    out = torch.zeros(19, 19)
    for row, col, h in peaks:
        out = torch.maximum(out, h * torch.exp(-((r - row) ** 2 + (c - col) ** 2) / 2))
    return out


def test_one_peak_is_normal():
    loc = localize_advanced(_peaks((9, 12, 0.9)), (0.0, 0.0), (2.0, 2.0))
    assert loc.flag == "normal" and loc.displacement == (3.0, 0.0) and loc.max_score == pytest.approx(0.9)


def test_low_peak_is_not_found():
    loc = localize_advanced(_peaks((4, 4, 0.2)), (0.0, 0.0), (2.0, 2.0))
    assert loc.flag == "not_found" and loc.displacement == (-5.0, -5.0)


def test_second_notable_peak_is_a_hard_negative():
    loc = localize_advanced(_peaks((9, 9, 1.0), (2, 16, 0.6)), (0.0, 0.0), (2.0, 2.0))
    assert loc.flag == "hard_negative" and loc.displacement == (0.0, 0.0)


def test_two_far_peaks_the_one_near_the_previous_position_wins():
    # peak 1 (stronger) at the far corner, peak 2 close to where the target was: choose peak 2
    scores = _peaks((1, 1, 1.0), (10, 10, 0.9))
    loc = localize_advanced(scores, (1.0, 1.0), (2.0, 2.0))
    threshold = 0.8 * math.sqrt(19 * 19) / 2  # 7.6 cells
    assert math.dist(loc.peak1, (1.0, 1.0)) > threshold > math.dist(loc.peak2, (1.0, 1.0))
    assert loc.flag == "hard_negative" and loc.displacement == (1.0, 1.0)
    # and the other way round: peak 1 near the previous position is kept
    loc = localize_advanced(scores, (-8.0, -8.0), (2.0, 2.0))
    assert loc.flag == "hard_negative" and loc.displacement == (-8.0, -8.0)


def test_two_near_peaks_are_uncertain():
    loc = localize_advanced(_peaks((9, 5, 1.0), (9, 13, 0.95)), (0.0, 0.0), (2.0, 2.0))
    assert loc.flag == "uncertain" and loc.displacement == (-4.0, 0.0)


def test_neighbourhood_mask_hides_the_target_itself():
    # a broad target peak: with a large target size its shoulders are masked and the map is 'normal'
    broad = torch.exp(-((torch.arange(19.0).reshape(-1, 1) - 9) ** 2 + (torch.arange(19.0) - 9) ** 2) / 30)
    assert localize_advanced(broad, (0.0, 0.0), (4.0, 4.0)).flag == "normal"
    assert localize_advanced(broad, (0.0, 0.0), (0.5, 0.5)).flag != "normal"


def test_thresholds_are_parameters():
    scores = _peaks((9, 9, 0.2))
    assert localize_advanced(scores, (0.0, 0.0), (2.0, 2.0), LocalizationParams(target_not_found_threshold=0.1)
                             ).flag == "normal"


def test_hann_window_is_one_at_the_centre_and_matches_the_formula():
    w = hann2d(19, 19)
    assert w.shape == (19, 19) and w[9, 9] == pytest.approx(1.0) and w.argmax() == 9 * 19 + 9
    assert w[9, 5] == pytest.approx(0.5 * (1 - math.cos(2 * math.pi * 6 / 20)))  # n = 6 of 1..19
    assert torch.allclose(w, w.T) and w[0, 0] < 1e-3


def test_window_output_prefers_the_peak_near_the_centre_and_keeps_the_raw_one_as_hard_negative():
    # a slightly stronger look-alike 5 cells left of the centre, the target 3 cells right of it
    scores = _peaks((9, 12, 0.8), (9, 4, 0.9))
    plain = localize_advanced(scores, (0.0, 0.0), (2.0, 2.0))
    assert plain.displacement == (-5.0, 0.0) and plain.flag == "uncertain"
    windowed = localize_advanced(scores, (0.0, 0.0), (2.0, 2.0), LocalizationParams(window_output=True))
    assert windowed.displacement == (3.0, 0.0)
    # the threshold score is the windowed one; the distractor is searched (and reported) in the raw map
    assert windowed.max_score == pytest.approx(0.8 * float(hann2d(19, 19)[9, 12]))
    assert windowed.second_score == pytest.approx(0.9) and windowed.flag == "uncertain"


# --------------------------------------------------------------------------- refinement helpers


def test_jittered_boxes_keep_the_current_box_first_and_sizes_bounded():
    box = torch.tensor([100.0, 100.0, 60.0, 30.0])
    boxes = jittered_boxes(box, RefinementParams(), torch.Generator().manual_seed(0))
    assert boxes.shape == (10, 4) and torch.equal(boxes[0], box)
    assert (boxes[1:, 2:] >= 10.0 - 1e-6).all()  # min(w, h) / 3
    centres = boxes[1:, :2] + boxes[1:, 2:] / 2
    side = math.sqrt(60 * 30)
    assert ((centres - torch.tensor([130.0, 115.0])).abs() <= 0.05 * side + 1e-4).all()


def test_select_box_drops_extreme_aspect_ratios_and_averages_top_k():
    boxes = torch.tensor([[0.0, 0, 10, 10], [0, 0, 12, 12], [0, 0, 100, 10], [0, 0, 14, 14], [0, 0, 20, 20]])
    iou = torch.tensor([0.5, 0.9, 0.99, 0.8, 0.1])
    box, score = select_box(boxes, iou, RefinementParams(iounet_k=3))
    assert torch.allclose(box, torch.tensor([0.0, 0, 12, 12]))  # mean of 12, 14, 10 (the 100x10 box is dropped)
    assert score.item() == pytest.approx((0.9 + 0.8 + 0.5) / 3)
