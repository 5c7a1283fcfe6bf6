"""The one-shot discrimination test: map geometry, both learned trackers, and the state left untouched."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_opencv_trackers import moving_square, write_jpegs

from dimp_core import build_tracker
from dimp_core.data.benchmarks import Sequence
from dimp_core.evaluation.discrimination import first_frame_discrimination, score_map_test


def _blob(n: int, row: float, col: float, height: float = 1.0, width: float = 1.5) -> torch.Tensor:
    r = torch.arange(n, dtype=torch.float32)[:, None]
    c = torch.arange(n, dtype=torch.float32)[None, :]
    return height * torch.exp(-((r - row) ** 2 + (c - col) ** 2) / (2 * width ** 2))


def test_centre_peak_is_a_hit_with_a_clean_map():
    # 19 x 19 DiMP map, 288 px patch (16 px per cell), 2 image px per patch px: a 64 x 64 px target is 2 x 2 cells
    scores = _blob(19, 9, 9, width=1.0) + 0.01
    hit, ratio = score_map_test(scores, scale=2.0, sample_size=288, target_size=np.array([64, 64]))
    assert hit and ratio < 0.05


def test_stronger_peak_elsewhere_is_a_miss_with_ratio_above_one():
    scores = torch.maximum(_blob(19, 9, 9, 0.5), _blob(19, 2, 16, 1.0))
    hit, ratio = score_map_test(scores, scale=2.0, sample_size=288, target_size=np.array([64, 64]))
    assert not hit and ratio == pytest.approx(2.0, rel=1e-3)


def test_hit_is_measured_in_image_pixels_of_the_target_box():
    # the peak two cells (32 patch px = 64 image px) right of the centre: on a wide target, not on a narrow one
    scores = _blob(19, 9, 11)
    assert score_map_test(scores, 2.0, 288, np.array([160, 40]))[0]
    assert not score_map_test(scores, 2.0, 288, np.array([40, 40]))[0]


@pytest.mark.parametrize("name", ["dimp", "atom"])
def test_shipped_trackers_find_an_easy_target_and_keep_their_state(name, tmp_path):
    frames, boxes = moving_square(n=12, size=(180, 240))
    seq = Sequence(name="square", frame_paths=tuple(write_jpegs(tmp_path, frames)), ground_truth=boxes)
    tracker = build_tracker(name, device="cpu")
    result = first_frame_discrimination(tracker, seq, every=3)
    assert list(result.frames) == [3, 6, 9]
    assert result.hit.all() and (result.ratio < 0.8).all(), result
    # scoring a patch is analysis only: the state after init is what a track() call starts from
    centre = tracker.state.center.clone()
    tracker.score_patch(frames[5], (50.0, 50.0))
    assert torch.equal(tracker.state.center, centre)
    with pytest.raises(ValueError, match="every"):
        first_frame_discrimination(tracker, seq, every=0)



def test_heldout_summary_pairs_the_costs_per_sequence(tool):
    heldout = tool("heldout_photos")
    rng = np.random.default_rng(0)
    base = {f"s{i}": float(v) for i, v in enumerate(rng.uniform(30, 80, 24))}
    # dimp loses 6 points on every sequence without the photos, atom 1: dimp's extra cost is 5, beyond doubt
    runs = {"dimp-full": base, "dimp-kept": {k: v - 6 for k, v in base.items()},
            "atom-full": base, "atom-kept": {k: v - 1 for k, v in base.items()}}
    runs = {name: {"auc": aucs, "hit_rate": aucs, "preset": "cpu", "steps": 900} for name, aucs in runs.items()}
    summary = heldout.summarise(runs)
    for measure in ("auc", "hit_rate"):
        s = summary[measure]
        assert s["cost"]["dimp"]["mean"] == pytest.approx(6) and s["cost"]["atom"]["mean"] == pytest.approx(1)
        extra = s["dimp_cost_minus_atom_cost"]
        assert extra["mean"] == pytest.approx(5) and extra["low"] == pytest.approx(5) and extra["p_positive"] == 1
    table = heldout.table({"runs": runs, "summary": summary})
    assert "| tracking AUC |" in table and "+5.0 [+5.0, +5.0]" in table


def test_experiment_tables_are_generated_from_the_recorded_json(tool):
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    page = (root / "docs" / "experiments.md").read_text()
    heldout = tool("heldout_photos")
    data = json.loads((root / "experiments" / "heldout_photos.json").read_text())
    summary = heldout.summarise(data["runs"])
    assert summary == data["summary"] and heldout.table(data) in page  # follows from the per-sequence numbers
    # ATOM's classifier is fitted online: the training photos cannot change its first-frame hit rate
    assert summary["hit_rate"]["cost"]["atom"]["mean"] == 0.0
    one_shot = tool("discrimination")
    data = json.loads((root / "experiments" / "discrimination.json").read_text())
    assert one_shot.summarise(data) == data["summary"] and one_shot.table(data["summary"]) in page


def test_seed_spread_summary_per_seed_and_averaged(tool):
    spread = tool("seed_spread")
    seqs = [f"s{i}" for i in range(10)]
    per_sequence = {"dimp": {"0": dict.fromkeys(seqs, 50.0), "1": dict.fromkeys(seqs, 54.0)},
                    "atom": {"0": dict.fromkeys(seqs, 52.0), "1": dict.fromkeys(seqs, 50.0)}}
    s = spread.summarise(per_sequence)
    assert s["seeds"] == ["0", "1"] and s["dimp_minus_atom"] == {"0": -2.0, "1": 4.0}
    assert s["seed_averaged"]["mean"] == pytest.approx(1.0) and s["seed_averaged"]["low"] == pytest.approx(1.0)
    table = spread.table({"dataset": "toy", "summary": s})
    assert "| `dimp` - `atom` | -2.0 | +4.0 | 6.0 |" in table and "| `dimp` AUC | 50.0 | 54.0 | 4.0 |" in table


def test_seed_table_in_the_docs_follows_from_the_json(tool):
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    spread = tool("seed_spread")
    data = json.loads((root / "experiments" / "seed_spread.json").read_text())
    assert spread.summarise(data["per_sequence"]) == data["summary"]
    assert spread.table(data) in (root / "docs" / "experiments.md").read_text()
    assert data["summary"]["seeds"][0] == "0"  # seed 0 is the tracker's default, the README's results table


def test_component_swap_moves_only_the_iounet_weights(tool):
    swap = tool("component_swap")
    own, swapped, donor = swap.build_cell("dimp"), swap.build_cell("dimp+atom-iounet"), swap.build_cell("atom")
    assert type(swapped) is type(own) and swapped.params == own.params and own.params.update_classifier
    assert not swap.build_cell("atom-no-update").params.update_classifier
    for label, donor_label in (("dimp+atom-schedule", "atom"), ("atom+dimp-schedule", "dimp")):
        cell, donor_params = swap.build_cell(label), swap.build_cell(donor_label).params
        assert cell.params.sample_memory_size == donor_params.sample_memory_size
        assert cell.params.train_skipping == donor_params.train_skipping
    # the last layer is never folded: the swapped tracker predicts IoU with ATOM's weights, classifies with DiMP's
    assert torch.equal(swapped.net.bb_regressor.iou_predictor.weight, donor.net.bb_regressor.iou_predictor.weight)
    assert not torch.equal(swapped.net.bb_regressor.iou_predictor.weight, own.net.bb_regressor.iou_predictor.weight)
    for a, b in zip(swapped.net.classifier.state_dict().values(), own.net.classifier.state_dict().values(),
                    strict=True):
        assert torch.equal(a, b)


def test_component_swap_effects_are_paired_differences(tool):
    swap = tool("component_swap")
    seqs = [f"s{i}" for i in range(8)]
    auc = {"dimp": 50.0, "dimp+atom-iounet": 53.0, "atom+dimp-iounet": 48.0, "atom": 51.0,
           "dimp-no-update": 49.0, "atom-no-update": 52.5, "dimp+atom-schedule": 50.5, "atom+dimp-schedule": 49.0}
    s = swap.summarise({label: dict.fromkeys(seqs, v) for label, v in auc.items()})
    assert s["auc"] == auc
    assert s["effects"]["classifier, DiMP's IoU-Net"]["mean"] == pytest.approx(2.0)
    assert s["effects"]["classifier, ATOM's IoU-Net"]["mean"] == pytest.approx(2.0)
    assert s["effects"]["IoU-Net, DiMP's classifier"]["mean"] == pytest.approx(-3.0)
    assert s["effects"]["IoU-Net, ATOM's classifier"]["low"] == pytest.approx(-3.0)
    assert s["effects"]["first-frame models, own IoU-Nets"]["mean"] == pytest.approx(-3.5)
    assert s["effects"]["online update, DiMP"]["mean"] == pytest.approx(1.0)
    assert s["effects"]["online update, ATOM"]["mean"] == pytest.approx(-1.5)
    assert s["effects"]["ATOM's schedule, DiMP's learner"]["mean"] == pytest.approx(0.5)
    assert s["effects"]["ATOM's schedule, ATOM's learner"]["mean"] == pytest.approx(2.0)
    table = swap.table({"runs": {"toy": {"summary": s}}})
    assert "| DiMP (`dimp+atom-iounet`) | ATOM | yes | 53.0 |" in table
    assert "| ATOM (`atom-no-update`) | ATOM | no | 52.5 |" in table
    assert "| DiMP (`dimp+atom-schedule`) | DiMP | ATOM's schedule | 50.5 |" in table
    assert "| classifier, ATOM's IoU-Net: `dimp+atom-iounet` - `atom` | +2.0 [+2.0, +2.0] |" in table


def test_swap_table_in_the_docs_follows_from_the_json(tool):
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    swap = tool("component_swap")
    data = json.loads((root / "experiments" / "component_swap.json").read_text())
    for run in data["runs"].values():
        assert swap.summarise(run["per_sequence"]) == run["summary"]
    runs = {(r["dataset"], r["torch_threads"]): r for r in data["runs"].values()}
    assert {("synth-val", 1), ("synth-test", 1)} <= set(runs)  # one thread, as the other accuracy tables
    # the plain cells are the shipped trackers: the same per-sequence AUCs as seed 0 of the seed table
    seeds = json.loads((root / "experiments" / "seed_spread.json").read_text())
    for tracker in ("dimp", "atom"):
        assert runs[("synth-test", 1)]["per_sequence"][tracker] == seeds["per_sequence"][tracker]["0"]
    assert swap.table(data) in (root / "docs" / "experiments.md").read_text()
