"""The synthetic benchmark: determinism, layout, boxes that match the pixels, the attribute plan, the splits."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from dimp_core.cli import main
from dimp_core.data import synthetic
from dimp_core.data.synthetic import (
    ATTRIBUTES,
    TEST_PHOTOS,
    TRAIN_PHOTOS,
    benchmark_plan,
    benchmark_recipe,
    ensure_benchmark,
    make_scene,
    make_sequence,
    write_benchmark,
)
from dimp_core.data.synthetic_assets import PHOTO_SOURCES, load_photo, make_sprite, shape_mask
from dimp_core.data.synthetic_motion import bounding_boxes, object_affines
from dimp_core.data.synthetic_render import draw_sprite, render_frame, target_boxes

SMALL = (160, 120)  # (width, height): fast to render
REPO = Path(__file__).resolve().parents[1]


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------- determinism and layout


def test_same_seed_gives_identical_sequences():
    attrs = ("distractors", "camera_motion", "motion_blur", "illumination_change")
    a = make_sequence(7, "test", attrs, num_frames=12, image_size=SMALL)
    b = make_sequence(7, "test", list(reversed(attrs)), num_frames=12, image_size=SMALL)
    assert all(np.array_equal(x, y) for x, y in zip(a.frames, b.frames, strict=True))
    np.testing.assert_array_equal(a.boxes, b.boxes)
    np.testing.assert_array_equal(a.visible, b.visible)
    c = make_sequence(8, "test", attrs, num_frames=12, image_size=SMALL)
    assert not np.array_equal(a.frames[0], c.frames[0])


def test_written_benchmark_is_byte_identical(tmp_path):
    write_benchmark(tmp_path / "a", "test", num_sequences=2, num_frames=4)
    write_benchmark(tmp_path / "b", "test", num_sequences=2, num_frames=4)
    files_a, files_b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert files_a.keys() == files_b.keys()
    assert all(files_a[k] == files_b[k] for k in files_a)


def test_otb_layout_and_line_counts(tmp_path):
    root = write_benchmark(tmp_path / "bench", "test", num_sequences=3, num_frames=5)
    attributes = json.loads((root / "attributes.json").read_text())
    assert list(attributes) == ["test_000", "test_001", "test_002"]
    assert json.loads((root / "recipe.json").read_text()) == benchmark_recipe("test", 3, 5)
    for name, attrs in attributes.items():
        assert 2 <= len(attrs) <= 4 and set(attrs) <= set(ATTRIBUTES)
        seq_dir = root / name
        assert sorted(p.name for p in (seq_dir / "img").iterdir()) == [f"{i:04d}.jpg" for i in range(1, 6)]
        lines = (seq_dir / "groundtruth_rect.txt").read_text().splitlines()
        assert len(lines) == 5
        boxes = np.array([[float(v) for v in line.split(",")] for line in lines])
        assert boxes.shape == (5, 4) and (boxes[:, 2:] > 0).all()
        flags = (seq_dir / "visible.txt").read_text().split()
        assert len(flags) == 5 and set(flags) <= {"0", "1"} and flags[0] == "1"
        image = cv2.imread(str(seq_dir / "img" / "0001.jpg"))
        assert image.shape == (360, 480, 3)


def test_benchmark_loader_reads_it(tmp_path):
    from dimp_core.data import load_otb

    root = write_benchmark(tmp_path / "bench", "test", num_sequences=2, num_frames=3)
    dataset = load_otb(root)
    seq = dataset["test_001"]
    assert len(seq) == 3 and seq.visible is not None
    assert tuple(seq.attributes) == benchmark_plan("test")[1].attributes


# --------------------------------------------------------------------------- boxes match the pixels


def test_box_covers_a_known_red_target_on_a_plain_background():
    alpha = shape_mask(np.random.default_rng(0), "ellipse", (60, 30))
    sprite = make_sprite(np.full((30, 60, 3), (255.0, 0.0, 0.0), np.float32), alpha)
    for center, scale, angle in (((80, 60), 1.0, 0.0), ((70, 50), 0.4, 35.0), ((90, 65), 1.7, -110.0)):
        m = object_affines(np.array([center], float), np.array([scale]), np.array([angle]), sprite.size)
        frame = np.zeros((120, 160, 3), np.float32)
        draw_sprite(frame, sprite, m[0])
        ys, xs = np.nonzero(frame[:, :, 0] > 127)
        x, y, w, h = bounding_boxes(m, sprite.hull)[0]
        np.testing.assert_allclose([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], [x, y, x + w, y + h], atol=1.5)


@pytest.mark.parametrize("attrs", [("scale_change", "in_plane_rotation"), ("camera_motion", "distractors"),
                                   ("small_target", "fast_motion", "low_contrast")])
def test_ground_truth_matches_the_rendered_target(attrs):
    scene = make_scene(3, "test", attrs, num_frames=40, image_size=SMALL)
    boxes = target_boxes(scene)
    for t in range(0, 40, 3):
        frame = render_frame(scene, t)
        ys, xs = np.nonzero(frame.target_alpha > 0.5)
        x, y, w, h = boxes[t]
        assert len(xs) > 0
        inside = x >= 0 and y >= 0 and x + w <= SMALL[0] and y + h <= SMALL[1]
        assert xs.min() >= x - 1.5 and xs.max() + 1 <= x + w + 1.5
        assert ys.min() >= y - 1.5 and ys.max() + 1 <= y + h + 1.5
        if inside:  # tight, not just covering
            np.testing.assert_allclose([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], [x, y, x + w, y + h],
                                       atol=1.5)


# --------------------------------------------------------------------------- attributes and visibility


def test_default_test_plan_covers_every_attribute_three_times():
    plan = benchmark_plan("test")
    assert len(plan) == 24
    assert all(2 <= len(s.attributes) <= 4 and 100 <= s.num_frames <= 150 for s in plan)
    counts = Counter(a for s in plan for a in s.attributes)
    assert set(counts) == set(ATTRIBUTES)
    assert min(counts.values()) >= 3
    assert len({s.name for s in plan}) == 24


def test_splits_use_disjoint_photos_and_seeds():
    assert not set(TRAIN_PHOTOS) & set(TEST_PHOTOS)
    assert set(TRAIN_PHOTOS) | set(TEST_PHOTOS) == set(PHOTO_SOURCES)
    for name in PHOTO_SOURCES:
        photo = load_photo(name)
        assert photo.dtype == np.uint8 and photo.ndim == 3 and photo.shape[2] == 3
    train_seeds = {s.seed for s in benchmark_plan("train")}
    test_seeds = {s.seed for s in benchmark_plan("test")}
    assert not train_seeds & test_seeds
    a = make_sequence(5, "train", ("scale_change", "fast_motion"), num_frames=2, image_size=SMALL)
    b = make_sequence(5, "test", ("scale_change", "fast_motion"), num_frames=2, image_size=SMALL)
    assert not np.array_equal(a.frames[0], b.frames[0])


def test_val_split_is_planned_like_test_from_train_photos_and_its_own_stream():
    val, test = benchmark_plan("val"), benchmark_plan("test")
    assert len(val) == 24 and [s.attributes for s in val] == [s.attributes for s in test]
    assert [s.name for s in val][:2] == ["val_000", "val_001"]
    assert benchmark_recipe("val")["photos"] == list(TRAIN_PHOTOS)
    # seeds 0, 1, ... as in train, but a different random stream: no training sequence recurs
    a = make_sequence(0, "train", ("scale_change",), num_frames=2, image_size=SMALL)
    b = make_sequence(0, "val", ("scale_change",), num_frames=2, image_size=SMALL)
    assert not np.array_equal(a.frames[0], b.frames[0])


def test_held_out_photo_splits_partition_the_train_photos():
    from dimp_core.data.synthetic import HELD_OUT_PHOTOS, KEPT_PHOTOS

    assert set(HELD_OUT_PHOTOS) | set(KEPT_PHOTOS) == set(TRAIN_PHOTOS) and not set(HELD_OUT_PHOTOS) & set(KEPT_PHOTOS)
    assert benchmark_recipe("val-heldout")["photos"] == list(HELD_OUT_PHOTOS)
    assert benchmark_recipe("train-kept")["photos"] == list(KEPT_PHOTOS)
    heldout = benchmark_plan("val-heldout")
    assert [s.attributes for s in heldout] == [s.attributes for s in benchmark_plan("val")]  # planned like val
    # the kept split is the train split's stream with fewer photos; val-heldout has a stream of its own
    assert [s.seed for s in benchmark_plan("train-kept")] == [s.seed for s in benchmark_plan("train")]
    a = make_sequence(0, "val", ("scale_change",), num_frames=2, image_size=SMALL)
    b = make_sequence(0, "val-heldout", ("scale_change",), num_frames=2, image_size=SMALL)
    assert not np.array_equal(a.frames[0], b.frames[0])


@pytest.mark.parametrize("seed", [0, 1])
def test_out_of_view_frames_are_flagged_and_boxes_kept(seed):
    seq = make_sequence(seed, "test", ("out_of_view", "scale_change"), num_frames=80, image_size=SMALL)
    hidden = ~seq.visible
    assert hidden.sum() >= 8
    assert seq.visible[:12].all()
    x, y, w, h = seq.boxes[hidden].T
    inside_w = np.clip(np.minimum(x + w, SMALL[0]) - np.maximum(x, 0), 0, None)
    inside_h = np.clip(np.minimum(y + h, SMALL[1]) - np.maximum(y, 0), 0, None)
    assert (inside_w * inside_h <= 0.1 * w * h).all()  # hidden because out of the image: the box says where
    assert ((x < 0) | (y < 0) | (x + w > SMALL[0]) | (y + h > SMALL[1])).all()  # unclipped


@pytest.mark.parametrize("seed", [0, 1])
def test_full_occlusion_frames_are_flagged(seed):
    seq = make_sequence(seed, "test", ("full_occlusion", "in_plane_rotation"), num_frames=60, image_size=SMALL)
    hidden = ~seq.visible
    assert 5 <= hidden.sum() <= 30
    assert seq.visible[:12].all()
    x, y, w, h = seq.boxes[hidden].T
    assert ((x + w > 0) & (y + h > 0) & (x < SMALL[0]) & (y < SMALL[1])).all()  # hidden in view


def test_partial_occlusion_keeps_the_target_visible():
    seq = make_sequence(2, "test", ("partial_occlusion", "illumination_change"), num_frames=60, image_size=SMALL)
    assert seq.visible.all()
    assert seq.visible_ratio.min() < 0.8


def test_scale_change_spans_a_factor_of_four_and_fast_motion_jumps():
    seq = make_sequence(4, "test", ("scale_change", "fast_motion"), num_frames=90, image_size=SMALL)
    side = seq.boxes[:, 2:].max(1)
    assert side.max() / side.min() > 3.5
    centers = seq.boxes[:, :2] + seq.boxes[:, 2:] / 2
    steps = np.linalg.norm(np.diff(centers, axis=0), axis=1)
    assert (steps > 1.5 * side[1:]).sum() >= 2


def test_plain_sequences_stay_visible_and_in_view():
    seq = make_sequence(11, "test", ("motion_blur", "illumination_change"), num_frames=50, image_size=SMALL)
    assert seq.visible.all()
    x, y, w, h = seq.boxes.T
    assert (x >= 0).all() and (y >= 0).all() and (x + w <= SMALL[0]).all() and (y + h <= SMALL[1]).all()


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="unknown attributes"):
        make_scene(0, "test", ("occlusion",), num_frames=5)
    with pytest.raises(ValueError, match="unknown split"):
        benchmark_plan("validation")
    with pytest.raises(ValueError, match="num_frames"):
        make_scene(0, "test", (), num_frames=1)


# --------------------------------------------------------------------------- cache, CLI, shipped recipe


def test_ensure_benchmark_generates_once_and_repairs(tmp_path, monkeypatch):
    monkeypatch.setenv("DIMP_LAB_DATA", str(tmp_path))
    monkeypatch.setattr(synthetic, "DEFAULT_NUM_SEQUENCES", {"train": 2, "test": 2})
    monkeypatch.setattr(synthetic, "FRAMES_RANGE", (3, 4))
    root = ensure_benchmark("test")
    assert root == tmp_path / "synth-test" and (root / "recipe.json").is_file()
    stamp = (root / "recipe.json").stat().st_mtime_ns
    assert ensure_benchmark("test") == root and (root / "recipe.json").stat().st_mtime_ns == stamp
    last = sorted((root / "test_001" / "img").iterdir())[-1]
    last.unlink()  # incomplete -> regenerated
    ensure_benchmark("test")
    assert last.is_file()
    monkeypatch.setattr(synthetic, "GENERATOR_VERSION", synthetic.GENERATOR_VERSION + 1)  # new recipe -> regenerated
    ensure_benchmark("test")
    assert json.loads((root / "recipe.json").read_text())["version"] == synthetic.GENERATOR_VERSION
    assert not list(tmp_path.glob("*.partial-*"))


def test_cli_writes_a_tiny_benchmark(tmp_path, capsys):
    assert main(["synth", "--split", "train", "--out", str(tmp_path), "--num", "2", "--frames", "3", "--quiet"]) == 0
    assert "wrote 2 train sequences" in capsys.readouterr().out
    assert sorted(json.loads((tmp_path / "attributes.json").read_text())) == ["train_000", "train_001"]
    assert len(list((tmp_path / "train_001" / "img").glob("*.jpg"))) == 3
    assert main(["synth", "--out", str(tmp_path), "--frames", "1"]) == 2
    with pytest.raises(SystemExit) as info:
        main(["synth", "--help"])
    assert info.value.code == 0


def test_shipped_recipe_matches_the_generator():
    shipped = json.loads((REPO / "data" / "synthetic_recipe.json").read_text())
    assert shipped == {split: benchmark_recipe(split) for split in ("test", "train", "val")}, (
        "data/synthetic_recipe.json is stale; rewrite it with tools/make_benchmark_figure.py --recipe")
