"""Benchmark loaders on tiny trees built in each official layout (``dimp_core.data.benchmarks``)."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import cv2
import numpy as np
import pytest

from dimp_core.data import benchmarks
from dimp_core.data.benchmarks import (
    load_dataset,
    load_got10k,
    load_image_folder,
    load_lasot,
    load_otb,
    load_trackingnet,
    load_video,
)

RED_RGB = (220, 30, 30)


def write_frames(folder: Path, names: list[str], size: tuple[int, int] = (24, 32)) -> list[Path]:
    """Tiny images; frame k is red with k encoded in its green channel (RGB), so order can be checked."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, name in enumerate(names):
        rgb = np.zeros((*size, 3), np.uint8)
        rgb[:] = (RED_RGB[0], 10 * k % 250, RED_RGB[2])
        cv2.imwrite(str(folder / name), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 100])
        paths.append(folder / name)
    return paths


def box_lines(n: int, sep: str = ",", start: int = 0) -> str:
    return "".join(sep.join(str(v) for v in (2 + k, 3, 10, 8)) + "\n" for k in range(start, start + n))


def make_otb(root: Path) -> Path:
    """Basketball (commas), Car (tabs), Board (5-digit names, spaces), Jogging (two targets), Human4 (empty .1)."""
    write_frames(root / "Basketball" / "img", [f"{k:04d}.jpg" for k in range(1, 6)])
    (root / "Basketball" / "groundtruth_rect.txt").write_text(box_lines(5))
    write_frames(root / "Car" / "img", [f"{k:04d}.jpg" for k in range(1, 4)])
    (root / "Car" / "groundtruth_rect.txt").write_text(box_lines(3, "\t"))
    write_frames(root / "Board" / "img", [f"{k:05d}.jpg" for k in range(1, 5)])
    (root / "Board" / "groundtruth_rect.txt").write_text(box_lines(4, " "))
    write_frames(root / "Jogging" / "img", [f"{k:04d}.jpg" for k in range(1, 4)])
    (root / "Jogging" / "groundtruth_rect.1.txt").write_text(box_lines(3))
    (root / "Jogging" / "groundtruth_rect.2.txt").write_text(box_lines(3, start=7))
    write_frames(root / "Human4" / "img", [f"{k:04d}.jpg" for k in range(1, 4)])
    (root / "Human4" / "groundtruth_rect.1.txt").write_text("")
    (root / "Human4" / "groundtruth_rect.2.txt").write_text(box_lines(3))
    (root / "attributes.json").write_text('{"Basketball": ["occlusion", "scale_change"], "Jogging_1": ["occlusion"]}')
    (root / "Basketball" / "visible.txt").write_text("1\n1\n0\n1\n1\n")
    return root


# --------------------------------------------------------------------------- OTB


def test_otb_layout_and_quirks(tmp_path):
    data = load_otb(make_otb(tmp_path / "OTB"))
    assert [s.name for s in data] == ["Basketball", "Board", "Car", "Human4_2", "Jogging_1", "Jogging_2"]
    basketball = data["Basketball"]
    assert len(basketball) == 5 and basketball.ground_truth.shape == (5, 4)
    assert basketball.ground_truth.dtype == np.float64
    np.testing.assert_array_equal(basketball.init_box, [2, 3, 10, 8])
    assert basketball.attributes == ("occlusion", "scale_change") and basketball.dataset == "otb"
    np.testing.assert_array_equal(basketball.visible, [True, True, False, True, True])
    assert data["Car"].visible is None and data["Car"].attributes == ()
    np.testing.assert_array_equal(data["Car"].ground_truth[2], [4, 3, 10, 8])  # tabs
    assert data["Board"].frame_paths[0].name == "00001.jpg" and len(data["Board"]) == 4  # 5 digits, spaces
    assert data["Jogging_2"].init_box[0] == 9 and data["Jogging_1"].attributes == ("occlusion",)
    assert data.attributes == ["occlusion", "scale_change"]


def test_otb_frames_are_rgb_and_lazy(tmp_path):
    seq = load_otb(make_otb(tmp_path / "OTB"))["Basketball"]
    frame = seq.frame(2)
    assert frame.shape == (24, 32, 3) and frame.dtype == np.uint8
    assert abs(int(frame[0, 0, 0]) - RED_RGB[0]) < 6 and abs(int(frame[0, 0, 1]) - 20) < 6  # RGB, frame 2
    frames = list(seq)
    assert len(frames) == 5 and abs(int(frames[4][0, 0, 1]) - 40) < 6
    np.testing.assert_array_equal(seq.frame(-1), frames[-1])
    with pytest.raises(IndexError, match="Basketball: frame 5 out of range"):
        seq.frame(5)
    with pytest.raises(ValueError, match="read-only"):
        seq.ground_truth[0, 0] = 1.0


def test_otb_frame_ranges_follow_pytracking(tmp_path, monkeypatch):
    assert benchmarks.OTB_FRAME_RANGES["David"] == (300, 770, 0)
    assert benchmarks.OTB_FRAME_RANGES["Tiger1"] == (1, 354, 5)
    # a David whose folder holds more frames than were annotated: frames 3..6 of 8 are used
    monkeypatch.setitem(benchmarks.OTB_FRAME_RANGES, "David", (3, 6, 0))
    write_frames(tmp_path / "David" / "img", [f"{k:04d}.jpg" for k in range(1, 9)])
    (tmp_path / "David" / "groundtruth_rect.txt").write_text(box_lines(4))
    # a Tiger1 with initOmit 2: the first two frames and ground-truth rows are dropped
    monkeypatch.setitem(benchmarks.OTB_FRAME_RANGES, "Tiger1", (1, 6, 2))
    write_frames(tmp_path / "Tiger1" / "img", [f"{k:04d}.jpg" for k in range(1, 7)])
    (tmp_path / "Tiger1" / "groundtruth_rect.txt").write_text(box_lines(6))
    data = load_otb(tmp_path)
    assert [p.name for p in data["David"].frame_paths] == ["0003.jpg", "0004.jpg", "0005.jpg", "0006.jpg"]
    tiger = data["Tiger1"]
    assert len(tiger) == 4 and tiger.frame_paths[0].name == "0003.jpg" and tiger.init_box[0] == 4


def test_otb_single_sequence_folder(tmp_path):
    root = make_otb(tmp_path / "OTB")
    assert [s.name for s in load_otb(root / "Jogging")] == ["Jogging_1", "Jogging_2"]


def test_otb_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_otb(tmp_path / "nope")
    root = make_otb(tmp_path / "OTB")
    (root / "Car" / "groundtruth_rect.txt").write_text(box_lines(5))
    with pytest.raises(ValueError, match="sequence Car: 3 frames but 5 ground-truth rows"):
        load_otb(root)
    (root / "Car" / "groundtruth_rect.txt").unlink()
    with pytest.raises(FileNotFoundError, match="sequence Car: no non-empty groundtruth_rect"):
        load_otb(root)
    (root / "Car" / "groundtruth_rect.txt").write_text("1,2,3\n")
    with pytest.raises(ValueError, match="line 1: expected 4 numbers"):
        load_otb(root)
    with pytest.raises(FileNotFoundError, match="no OTB sequences"):
        load_otb(tmp_path / "OTB" / "Car" / "img")


# --------------------------------------------------------------------------- LaSOT, GOT-10k, TrackingNet


def make_lasot(root: Path) -> Path:
    for name, n in (("airplane-1", 4), ("airplane-13", 3), ("rubicCube-2", 3)):
        seq = root / name.split("-")[0] / name
        write_frames(seq / "img", [f"{k:08d}.jpg" for k in range(1, n + 1)])
        (seq / "groundtruth.txt").write_text(box_lines(n))
        (seq / "full_occlusion.txt").write_text(",".join(["0"] * (n - 1) + ["1"]))
        (seq / "out_of_view.txt").write_text(",".join(["0", "1"] + ["0"] * (n - 2)) + "\n")
        (seq / "nlp.txt").write_text("a thing")
    return root


def test_lasot_layout(tmp_path):
    data = load_lasot(make_lasot(tmp_path / "LaSOT"))
    assert [s.name for s in data] == ["airplane-1", "airplane-13", "rubicCube-2"]
    seq = data["airplane-1"]
    assert len(seq) == 4 and seq.frame_paths[0].name == "00000001.jpg" and seq.dataset == "lasot"
    np.testing.assert_array_equal(seq.visible, [True, False, True, False])


def test_lasot_flag_count_mismatch(tmp_path):
    root = make_lasot(tmp_path / "LaSOT")
    (root / "airplane" / "airplane-1" / "out_of_view.txt").write_text("0,0")
    with pytest.raises(ValueError, match="airplane-1: 4 frames but 2 out_of_view.txt flags"):
        load_lasot(root)


def make_got10k(root: Path) -> Path:
    for split, names in (("val", ["GOT-10k_Val_000001", "GOT-10k_Val_000002"]), ("test", ["GOT-10k_Test_000001"])):
        (root / split).mkdir(parents=True)
        (root / split / "list.txt").write_text("\n".join(names) + "\n")
        for name in names:
            seq = root / split / name
            write_frames(seq, [f"{k:08d}.jpg" for k in range(1, 5)])
            (seq / "groundtruth.txt").write_text(box_lines(1 if split == "test" else 4))
            (seq / "meta_info.ini").write_text("[METAINFO]\nobject_class: cat\nresolution: (32, 24)\n")
            if split == "val":
                (seq / "absence.label").write_text("0\n0\n1\n0\n")
                (seq / "cover.label").write_text("8\n0\n0\n5\n")
    return root


def test_got10k_layout(tmp_path):
    root = make_got10k(tmp_path / "GOT-10k")
    val = load_got10k(root)
    assert val.name == "got10k-val" and [s.name for s in val] == ["GOT-10k_Val_000001", "GOT-10k_Val_000002"]
    np.testing.assert_array_equal(val[0].visible, [True, False, False, True])  # not absent and cover > 0
    test = load_got10k(root, "test")
    assert len(test[0]) == 4 and test[0].visible is None
    assert np.all(np.isfinite(test[0].ground_truth[0])) and np.all(np.isnan(test[0].ground_truth[1:]))
    assert load_got10k(root / "val").name == "got10k-val"  # the split folder itself


def test_got10k_missing_sequence(tmp_path):
    root = make_got10k(tmp_path / "GOT-10k")
    (root / "val" / "list.txt").write_text("GOT-10k_Val_000001\nGOT-10k_Val_000009\n")
    with pytest.raises(FileNotFoundError, match="GOT-10k_Val_000009"):
        load_got10k(root)


def make_trackingnet(root: Path) -> Path:
    write_frames(root / "TEST" / "frames" / "seqA", [f"{k}.jpg" for k in range(12)])
    write_frames(root / "TEST" / "frames" / "seqB", [f"{k}.jpg" for k in range(3)])
    (root / "TEST" / "anno").mkdir(parents=True)
    (root / "TEST" / "anno" / "seqA.txt").write_text(box_lines(1))
    (root / "TEST" / "anno" / "seqB.txt").write_text(box_lines(3))
    return root


def test_trackingnet_layout(tmp_path):
    data = load_trackingnet(make_trackingnet(tmp_path / "TrackingNet"))
    assert [s.name for s in data] == ["seqA", "seqB"] and data.name == "trackingnet-TEST"
    seq = data["seqA"]
    assert [p.name for p in seq.frame_paths[:3]] + [seq.frame_paths[-1].name] == ["0.jpg", "1.jpg", "2.jpg", "11.jpg"]
    assert len(seq) == 12 and np.isnan(seq.ground_truth[1:]).all()
    assert abs(int(seq.frame(10)[0, 0, 1]) - 100) < 6  # numeric order: the 11th frame is 10.jpg
    assert np.isfinite(data["seqB"].ground_truth).all()


# --------------------------------------------------------------------------- video, image folder


def test_video_file(tmp_path):
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (32, 24))
    for k in range(7):
        writer.write(np.full((24, 32, 3), (10, 20 * k, 200), np.uint8))  # BGR: red in RGB
    writer.release()
    seq = load_video(path, (1, 2, 10, 8))
    assert len(seq) == 7 and seq.name == "clip" and seq.dataset == "video"
    np.testing.assert_array_equal(seq.init_box, [1, 2, 10, 8])
    assert np.isnan(seq.ground_truth[1:]).all()
    frames = list(seq)
    assert len(frames) == 7 and frames[0].shape == (24, 32, 3) and frames[0][0, 0, 0] > 150  # RGB
    assert abs(int(seq.frame(5)[0, 0, 1]) - 100) < 10
    with pytest.raises(FileNotFoundError, match="not found"):
        load_video(tmp_path / "nope.avi", (1, 2, 3, 4))
    with pytest.raises(ValueError, match="w, h > 0"):
        load_video(path, (1, 2, 0, 4))


def test_image_folder_sorted_naturally(tmp_path):
    write_frames(tmp_path / "frames", ["frame10.png", "frame2.png", "frame1.png"])
    seq = load_image_folder(tmp_path / "frames", [0, 0, 5, 5])
    assert [p.name for p in seq.frame_paths] == ["frame1.png", "frame2.png", "frame10.png"]
    assert len(seq) == 3 and seq.frame(0).shape == (24, 32, 3)
    with pytest.raises(ValueError, match="holds no images"):
        load_image_folder(tmp_path, [0, 0, 5, 5])


# --------------------------------------------------------------------------- load_dataset


def test_load_dataset_specs(tmp_path):
    otb, lasot = make_otb(tmp_path / "OTB"), make_lasot(tmp_path / "LaSOT")
    got, tnet = make_got10k(tmp_path / "GOT-10k"), make_trackingnet(tmp_path / "TrackingNet")
    assert len(load_dataset(f"otb:{otb}")) == 6
    assert len(load_dataset(str(otb))) == 6  # bare path: layout detected
    assert load_dataset(f"lasot:{lasot}").name == "lasot" and load_dataset(str(lasot)).name == "lasot"
    assert load_dataset(f"got10k:{got}").name == "got10k-val"
    assert load_dataset(f"got10k:{got}:test").name == "got10k-test" and load_dataset(str(got)).name == "got10k-val"
    assert load_dataset(f"trackingnet:{tnet}").name == "trackingnet-TEST" and len(load_dataset(str(tnet))) == 2


def test_load_dataset_synth_test_uses_the_generator(tmp_path, monkeypatch):
    root = make_otb(tmp_path / "synth")
    fake = types.ModuleType("dimp_core.data.synthetic")
    fake.ensure_benchmark = lambda split: root if split in ("test", "val") else None
    monkeypatch.setitem(sys.modules, "dimp_core.data.synthetic", fake)
    data = load_dataset("synth-test")
    assert data.name == "synth-test" and {s.dataset for s in data} == {"synth-test"} and len(data) == 6
    assert load_dataset("synth-val").name == "synth-val"


def test_load_dataset_errors(tmp_path):
    known = "known: real-val, synth-test, synth-val, synth-val-heldout, otb, lasot, got10k, trackingnet"
    with pytest.raises(ValueError, match=f"unknown dataset 'otb100'; {known}"):
        load_dataset("otb100")
    with pytest.raises(ValueError, match="unknown dataset kind 'vot'"):
        load_dataset("vot:/data/vot2018")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_dataset(f"otb:{tmp_path / 'missing'}")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_dataset(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="cannot tell the benchmark layout"):
        load_dataset(str(tmp_path / "empty"))
