"""OPE metrics (``dimp_core.evaluation.metrics`` and ``summary``), checked against the got10k toolkit."""

from __future__ import annotations

import numpy as np
import pytest
from got10k.experiments.otb import ExperimentOTB
from got10k.utils.metrics import center_error as got10k_center_error
from got10k.utils.metrics import rect_iou as got10k_rect_iou

from dimp_core.evaluation.metrics import (
    IOU_THRESHOLDS,
    center_error,
    frame_errors,
    normalized_center_error,
    precision_curve,
    rect_iou,
    score_sequence,
    sequence_fps,
    success_curve,
    valid_frames,
)
from dimp_core.evaluation.summary import format_table, summarize_tracker

IMAGE_W, IMAGE_H = 320, 240


def random_sequence(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Ground truth and a noisy prediction, with boxes partly and fully outside the image and zero-size boxes."""
    gt = np.column_stack([rng.uniform(-20, IMAGE_W - 10, n), rng.uniform(-20, IMAGE_H - 10, n),
                          rng.uniform(5, 80, n), rng.uniform(5, 80, n)])
    pred = gt + rng.normal(0, rng.uniform(1, 30), (n, 4))
    pred[:, 2:] = np.abs(pred[:, 2:])
    k = rng.integers(0, n, size=max(1, n // 5))
    pred[k[: len(k) // 2], 2] = 0.0  # zero width
    pred[k[len(k) // 2:], 2:] = 0.0  # zero size
    far = rng.integers(0, n, size=max(1, n // 6))
    pred[far, 0] = rng.choice([-500.0, IMAGE_W + 300.0], size=len(far))  # fully outside the image
    drift = rng.random(n) < 0.2
    pred[drift, :2] = rng.uniform(-50, IMAGE_W, (drift.sum(), 2))  # lost
    return gt, pred


def got10k_scores(sequences: list[tuple[np.ndarray, np.ndarray]]) -> tuple[float, float, float]:
    """AUC, precision at 20 px and success rate as got10k's ExperimentOTB.report computes them (in percent)."""
    experiment = ExperimentOTB.__new__(ExperimentOTB)  # nothing run, no dataset touched
    experiment.nbins_iou, experiment.nbins_ce = 21, 51
    succ, prec = [], []
    for gt, pred in sequences:
        boxes = pred.copy()
        boxes[0] = gt[0]
        ious, errors = experiment._calc_metrics(boxes, gt)
        s, p = experiment._calc_curves(ious, errors)
        succ.append(s)
        prec.append(p)
    succ_curve, prec_curve = np.mean(succ, axis=0), np.mean(prec, axis=0)
    return 100 * np.mean(succ_curve), 100 * prec_curve[20], 100 * succ_curve[21 // 2]


def our_scores(sequences: list[tuple[np.ndarray, np.ndarray]]) -> dict:
    scores = {f"s{i}": score_sequence(pred, gt) for i, (gt, pred) in enumerate(sequences)}
    return summarize_tracker(scores)


@pytest.mark.parametrize("seed", range(6))
def test_success_and_precision_equal_got10k(seed):
    rng = np.random.default_rng(seed)
    sequences = [random_sequence(rng, int(rng.integers(2, 120))) for _ in range(int(rng.integers(1, 9)))]
    auc, precision, success_rate = got10k_scores(sequences)
    ours = our_scores(sequences)
    assert ours["auc"] == pytest.approx(auc, abs=1e-9)  # well inside the 0.1-point bar
    assert ours["precision"] == pytest.approx(precision, abs=1e-9)
    assert ours["success_rate"] == pytest.approx(success_rate, abs=1e-9)


def test_nan_ground_truth_fails_as_in_got10k():
    rng = np.random.default_rng(7)
    gt, pred = random_sequence(rng, 50)
    gt[[5, 6, 30]] = np.nan
    with np.errstate(invalid="ignore"):
        auc, precision, _ = got10k_scores([(gt, pred)])
    ours = our_scores([(gt, pred)])
    assert ours["auc"] == pytest.approx(auc, abs=1e-9) and ours["precision"] == pytest.approx(precision, abs=1e-9)


def test_per_frame_errors_equal_got10k():
    rng = np.random.default_rng(1)
    gt, pred = random_sequence(rng, 200)
    np.testing.assert_allclose(rect_iou(pred, gt), got10k_rect_iou(pred.copy(), gt.copy()), rtol=0, atol=1e-12)
    np.testing.assert_allclose(center_error(pred, gt), got10k_center_error(pred, gt), rtol=0, atol=1e-12)


def test_iou_and_errors_by_hand():
    np.testing.assert_allclose(rect_iou([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 0, 0]],
                                        [[0, 0, 10, 10], [20, 0, 10, 10], [0, 0, 10, 10]]), [1.0, 0.0, 0.0])
    np.testing.assert_allclose(center_error([[10, 0, 1, 1]], [[0, 0, 1, 1]]), [10.0])
    # pytracking's normalised error: centre difference (4, 3) over the GT size (8, 6)
    np.testing.assert_allclose(normalized_center_error([[4, 3, 8, 6]], [[0, 0, 8, 6]]), [np.hypot(0.5, 0.5)])
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        rect_iou([1, 2, 3, 4], [1, 2, 3, 4])


def test_curves_use_strict_and_inclusive_thresholds():
    np.testing.assert_array_equal(success_curve([0.5])[[9, 10, 11]], [1.0, 0.0, 0.0])  # IoU > t
    np.testing.assert_array_equal(precision_curve([20.0])[[19, 20]], [0.0, 1.0])  # error <= t
    assert len(IOU_THRESHOLDS) == 21 and success_curve([1.0])[-1] == 0.0


def test_invalid_frames_fail_with_the_full_denominator():
    gt = np.array([[10, 10, 20, 20]] * 4, float)
    gt[2] = np.nan  # no annotation
    visible = np.array([True, True, True, False])  # frame 3: target fully occluded
    pred = gt.copy()
    pred[2] = [10, 10, 20, 20]
    np.testing.assert_array_equal(valid_frames(gt, visible), [True, True, False, False])
    errors = frame_errors(pred, gt, visible)
    np.testing.assert_array_equal(errors.iou, [1, 1, -1, -1])
    assert np.isinf(errors.center[2:]).all() and np.isinf(errors.norm_center[2:]).all()
    scores = score_sequence(pred, gt, visible)
    assert scores.auc == pytest.approx(0.5 * 20 / 21)  # 2 of 4 frames pass every threshold but IoU > 1
    assert scores.precision[0] == 0.5 and scores.norm_precision[20] == 0.5
    gt_zero = gt.copy()
    gt_zero[1, 2] = 0  # a zero-size ground truth is invalid too
    assert not valid_frames(gt_zero)[1]


def test_frame_zero_is_replaced_by_the_ground_truth():
    gt = np.array([[10, 10, 20, 20], [12, 10, 20, 20]], float)
    pred = np.array([[100, 100, 5, 5], [12, 10, 20, 20]], float)
    assert score_sequence(pred, gt).auc == pytest.approx(20 / 21)


def test_fps_is_got10k_definition():
    assert sequence_fps([0.5, 0.1, 0.0, 0.1]) == pytest.approx((2 + 10 + 10) / 3)
    assert sequence_fps([0.0]) is None and sequence_fps(None) is None
    gt = np.array([[10, 10, 20, 20]] * 3, float)
    scores = {"a": score_sequence(gt, gt, times=[0.1, 0.1, 0.1]), "b": score_sequence(gt, gt, times=[0.5, 0.5, 0.5]),
              "c": score_sequence(gt, gt)}
    assert summarize_tracker(scores)["fps"] == pytest.approx(6.0)  # sequences without times are left out


def test_summary_attributes_and_table():
    gt = np.array([[10, 10, 20, 20]] * 3, float)
    lost = gt + [[0, 0, 0, 0], [100, 0, 0, 0], [100, 0, 0, 0]]
    scores = {"good": score_sequence(gt, gt), "bad": score_sequence(lost, gt)}
    summary = summarize_tracker(scores, {"good": ("occlusion",), "bad": ("occlusion", "fast_motion")})
    assert summary["attributes"]["fast_motion"] == {"auc": pytest.approx(100 / 3 * 20 / 21), "num_sequences": 1}
    assert summary["attributes"]["occlusion"]["num_sequences"] == 2
    assert summary["sequences"]["good"]["auc"] == pytest.approx(100 * 20 / 21)
    assert summary["auc"] == pytest.approx(np.mean([100 * 20 / 21, 100 / 3 * 20 / 21]))
    table = format_table({"dataset": "toy", "num_sequences": 2, "trackers": {"t1": summary, "t2": summary}})
    assert "| Tracker | AUC | Precision (20 px) |" in table
    assert f"| t1 | {summary['auc']:.1f} |" in table and "| fast_motion (1) |" in table and "n/a" in table  # fps
    with pytest.raises(ValueError, match="no sequences"):
        summarize_tracker({})


def test_paired_bootstrap_interval_and_ranking_probability():
    from dimp_core.evaluation import paired_bootstrap

    rng = np.random.default_rng(0)
    b = {f"s{i}": float(v) for i, v in enumerate(rng.uniform(20, 80, 24))}
    better = {k: v + 5 + rng.normal(0, 1) for k, v in b.items()}  # 5 points better on every sequence
    d = paired_bootstrap(better, b, "A", "B", resamples=2000, seed=1)
    assert d.sequences == 24 and 4 < d.low < d.mean < d.high < 6 and d.p_a_better == 1.0
    assert paired_bootstrap(better, b, resamples=2000, seed=1) == paired_bootstrap(better, b, resamples=2000, seed=1)
    noisy = {k: v + rng.normal(0, 20) for k, v in b.items()}  # no real difference, large per-sequence swings
    n = paired_bootstrap(noisy, b, resamples=2000)
    assert n.low < 0 < n.high and 0.0 < n.p_a_better < 1.0
    same = paired_bootstrap(b, b, resamples=100)
    assert same.mean == same.low == same.high == 0.0 and same.p_a_better == 0.0
    only_shared = paired_bootstrap({"s0": 50.0, "x": 0.0}, {"s0": 40.0, "y": 99.0}, resamples=10)
    assert only_shared.sequences == 1 and only_shared.mean == 10.0
    with pytest.raises(ValueError, match="share no scored sequence"):
        paired_bootstrap({"a": 1.0}, {"b": 1.0})


def test_difference_table_lists_every_other_tracker():
    from dimp_core.evaluation import difference_table

    summary = {"trackers": {name: {"sequences": {"s0": {"auc": auc}, "s1": {"auc": auc + 10}}}
                            for name, auc in (("ref", 50.0), ("x", 40.0), ("y", 60.0))}}
    table = difference_table(summary, "ref", resamples=100)
    assert "| x | +10.0 | [+10.0, +10.0] | 1.00 |" in table and "| y | -10.0 | [-10.0, -10.0] | 0.00 |" in table
    assert "| ref |" not in table


def test_difference_change_compares_a_gap_across_two_benchmarks():
    from dimp_core.evaluation import difference_change

    rng = np.random.default_rng(0)
    x = {f"x{i}": float(v) for i, v in enumerate(rng.normal(3.0, 1.0, 24))}  # A ahead of B by 3 on X
    y = {f"y{i}": float(v) for i, v in enumerate(rng.normal(-2.0, 1.0, 30))}  # behind by 2 on Y
    d = difference_change(x, y, "X", "Y", resamples=2000, seed=1)
    assert d.a == "X" and d.sequences == 54 and 4 < d.low < d.mean < d.high < 6 and d.p_a_better == 1.0
    assert d == difference_change(x, y, "X", "Y", resamples=2000, seed=1)  # seeded
    same = difference_change(x, {k: v + 20 * float(rng.normal()) for k, v in x.items()}, resamples=2000)
    assert same.low < 0 < same.high
    with pytest.raises(ValueError, match="at least one"):
        difference_change({}, y)
