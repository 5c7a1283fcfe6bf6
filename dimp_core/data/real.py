"""``real-val``: a tracking benchmark cut from real video and real photographs that ship in packages.

The recipe is ``data/real/manifest.json`` (its ``val`` entries; the ``train`` entries feed training); the files
come from :mod:`dimp_core.data.real_sources`.
The benchmark is written in the OTB layout (``<seq>/img/0001.jpg``, ``groundtruth_rect.txt``,
``visible.txt``, ``attributes.json``) on first use, like the synthetic one, under
``$DIMP_LAB_DATA/real-<split>`` (default ``~/.cache/dimp-lab``). Ground truth is made by recorded,
repeatable procedures:

- **video, keyframes**: boxes read by eye off a 20 px grid on a few frames (the manifest's ``keyframes``),
  linear interpolation in between (:func:`interpolate_keyframes`); frames in ``absent`` are fully hidden.
- **video, face detector**: OpenCV's frontal-face Haar cascade on every frame, the detection nearest to
  the previous box kept, misses interpolated, a 5-frame running median (:func:`track_faces`).
- **photo**: a virtual camera pans, zooms and turns (anisotropic zoom, as foreshortening) over a photograph
  around a real object whose box is known
  (hand-read, or one of the face boxes that ship with the Solvay photograph); the box follows exactly from
  the camera (:func:`camera_path`, :func:`render_photo_sequence`).

Every sequence is checked by eye on ``figures/real_val_contact.png`` (``tools/real_val_contact.py``).
``python -m dimp_core.data.real --fetch`` unpacks the Debian packages it needs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from dimp_core.data.real_sources import fetch_debian, locate

__all__ = ["MANIFEST", "VERSION", "CameraSpec", "load_manifest", "interpolate_keyframes", "track_faces",
           "solvay_faces", "camera_path", "render_photo_sequence", "sequence_frames", "write_benchmark",
           "real_root", "ensure_real_benchmark"]

MANIFEST = Path(__file__).resolve().parents[2] / "data" / "real" / "manifest.json"
VERSION = 2  # bump when the procedures below change the files they write
JPEG_QUALITY = 95


@dataclass(frozen=True)
class CameraSpec:
    """The virtual camera of a photo sequence.

    Attributes:
        seed: seeds the path. zoom: frame pixels per photo pixel, at the middle of its range.
        num_frames: sequence length. size: frame (width, height).
        travel: how far the object's centre wanders from the frame centre, as a fraction of the frame.
        zoom_range: the zoom varies by a factor ``exp(+-zoom_range)``. gain: brightness varies by ``1 +- gain``.
        stretch_range: the horizontal and vertical zooms differ by a factor up to ``exp(+-2 stretch_range)``,
            as the foreshortening of a camera that turns: the object's aspect ratio changes, as real ones do.
    """

    seed: int
    zoom: float
    num_frames: int = 100
    size: tuple[int, int] = (480, 360)
    travel: float = 0.3
    zoom_range: float = 0.35
    gain: float = 0.2
    stretch_range: float = 0.15


def load_manifest(path: Path = MANIFEST) -> list[dict]:
    """The sequence entries of a real-imagery manifest, checked for the fields each kind needs."""
    entries = json.loads(Path(path).read_text())["sequences"]
    for e in entries:
        need = {"video": ("frames",), "photo": ("object", "camera")}.get(e.get("kind"))
        if need is None:
            raise ValueError(f"{path}: sequence {e.get('name')!r} has kind {e.get('kind')!r}; expected video or photo")
        missing = [k for k in ("name", "split", "source", *need) if k not in e]
        if e["kind"] == "video" and "keyframes" not in e and "procedure" not in e:
            missing.append("keyframes or procedure")
        if missing:
            raise ValueError(f"{path}: sequence {e.get('name')!r} lacks {', '.join(missing)}")
    return entries


# --------------------------------------------------------------------------- video ground truth


def interpolate_keyframes(keyframes: dict[int, list[float]], start: int, end: int) -> np.ndarray:
    """Boxes for frames ``start..end`` (inclusive) by linear interpolation of (x, y, w, h) between keyframes.

    The first and last keyframes must be ``start`` and ``end``. Returns (end - start + 1, 4) float64.
    """
    keys = sorted(int(k) for k in keyframes)
    if not keys or keys[0] != start or keys[-1] != end:
        raise ValueError(f"keyframes {keys} must begin at frame {start} and end at frame {end}")
    boxes = np.array([keyframes[k] if k in keyframes else keyframes[str(k)] for k in keys], dtype=np.float64)
    if boxes.shape[1:] != (4,) or (boxes[:, 2:] <= 0).any():
        raise ValueError(f"keyframe boxes must be (x, y, w, h) with w, h > 0, got {boxes.tolist()}")
    frames = np.arange(start, end + 1)
    return np.stack([np.interp(frames, keys, boxes[:, i]) for i in range(4)], axis=1)  # (N, 4)


def _fill_and_smooth(boxes: np.ndarray, window: int = 5) -> np.ndarray:
    """Interpolate NaN rows linearly, then a running median of ``window`` frames per coordinate."""
    n = len(boxes)
    ok = np.isfinite(boxes).all(axis=1)
    if not ok.any():
        raise ValueError("the detector found the target in no frame")
    idx = np.arange(n)
    filled = np.stack([np.interp(idx, idx[ok], boxes[ok, i]) for i in range(4)], axis=1)
    half = window // 2
    padded = np.pad(filled, ((half, half), (0, 0)), mode="edge")
    return np.stack([np.median(padded[i:i + window], axis=0) for i in range(n)])


def track_faces(frames: list[np.ndarray]) -> np.ndarray:
    """Face boxes by OpenCV's frontal-face Haar cascade: per frame, the detection nearest the previous box
    (the largest in the first frame), misses interpolated, a 5-frame running median. (N, 4) float64."""
    cascade = cv2.CascadeClassifier(str(Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"))
    boxes = np.full((len(frames), 4), np.nan)
    previous = None
    for i, frame in enumerate(frames):
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        found = cascade.detectMultiScale(gray, scaleFactor=1.05, minNeighbors=4, minSize=(24, 24))
        if len(found) == 0:
            continue
        found = np.asarray(found, dtype=np.float64)
        if previous is None:
            pick = found[np.argmax(found[:, 2] * found[:, 3])]
        else:
            centres = found[:, :2] + found[:, 2:] / 2
            pick = found[np.argmin(np.linalg.norm(centres - (previous[:2] + previous[2:] / 2), axis=1))]
        boxes[i] = previous = pick
    return _fill_and_smooth(boxes)


def solvay_faces() -> list[list[float]]:
    """The face boxes (x, y, w, h) that ship with ViSP's Solvay photograph (four (row, col) corners each)."""
    tokens = locate("visp/solvay-faces")[0].read_text().split()
    boxes = []
    for i, token in enumerate(tokens):
        if token.startswith("detection"):
            corners = np.array([float(v) for v in tokens[i + 1:i + 9]]).reshape(4, 2)  # (row, col)
            (r0, c0), (r1, c1) = corners.min(0), corners.max(0)
            boxes.append([c0, r0, c1 - c0, r1 - r0])
    return boxes


# --------------------------------------------------------------------------- photo sequences


def camera_path(spec: CameraSpec) -> np.ndarray:
    """(N, 5) per-frame (u, v, zoom_x, zoom_y, gain): where the object's centre sits in the frame (pixels), the
    horizontal and vertical zoom and the brightness gain. Smooth: sums of two sinusoids with seeded frequencies
    and phases."""
    rng = np.random.default_rng(spec.seed)
    t = np.linspace(0.0, 1.0, spec.num_frames)
    w, h = spec.size

    def wave(amplitude: float) -> np.ndarray:
        freq = rng.uniform(0.4, 1.6, size=2)
        phase = rng.uniform(0, 2 * np.pi, size=2)
        weight = rng.dirichlet([2.0, 2.0])
        return amplitude * (weight[0] * np.sin(2 * np.pi * freq[0] * t + phase[0])
                            + weight[1] * np.sin(2 * np.pi * freq[1] * t + phase[1]))

    u = w / 2 + wave(spec.travel * w)
    v = h / 2 + wave(spec.travel * h)
    zoom = spec.zoom * np.exp(wave(spec.zoom_range))
    gain = 1.0 + wave(spec.gain)
    stretch = np.exp(wave(spec.stretch_range))
    return np.stack([u, v, zoom * stretch, zoom / stretch, gain], axis=1)


def render_photo_sequence(photo: np.ndarray, box: list[float], spec: CameraSpec) -> tuple[list[np.ndarray], np.ndarray]:
    """Frames of a virtual camera over ``photo`` (H x W x 3 RGB uint8) and the object's box in each.

    The camera window is shifted to stay inside the photograph (the object then moves less in the frame),
    so every frame shows only real pixels. Returns (frames, (N, 4) boxes)."""
    fw, fh = spec.size
    ph, pw = photo.shape[:2]
    bx, by, bw, bh = (float(v) for v in box)
    centre = np.array([bx + bw / 2, by + bh / 2])
    frames, boxes = [], []
    for u, v, zx, zy, gain in camera_path(spec):
        zx, zy = max(zx, fw / pw), max(zy, fh / ph)  # the window never exceeds the photograph
        # photo coordinates of the frame's top-left corner, clamped so the window stays inside the photo
        x0 = np.clip(centre[0] - u / zx, 0.0, pw - fw / zx)
        y0 = np.clip(centre[1] - v / zy, 0.0, ph - fh / zy)
        affine = np.array([[zx, 0.0, -zx * x0], [0.0, zy, -zy * y0]])
        frame = cv2.warpAffine(photo, affine, (fw, fh), flags=cv2.INTER_AREA if min(zx, zy) < 1 else cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE)
        frames.append(np.clip(frame.astype(np.float32) * gain, 0, 255).astype(np.uint8))
        boxes.append([zx * (bx - x0), zy * (by - y0), zx * bw, zy * bh])
    return frames, np.asarray(boxes)


# --------------------------------------------------------------------------- sequences and the benchmark


def _read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise OSError(f"cannot read image {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _video_frames(source: str, start: int, end: int) -> list[np.ndarray]:
    paths = locate(source)
    if len(paths) > 1:  # a numbered frame sequence
        if end >= len(paths):
            raise ValueError(f"{source}: frame {end} asked for, the sequence has {len(paths)}")
        return [_read_rgb(p) for p in paths[start:end + 1]]
    capture = cv2.VideoCapture(str(paths[0]))
    frames = []
    try:
        for i in range(end + 1):
            ok, bgr = capture.read()
            if not ok:
                raise ValueError(f"{source}: frame {i} asked for, the video has {i}")
            if i >= start:
                frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    finally:
        capture.release()
    return frames


def sequence_frames(entry: dict) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """(frames, (N, 4) boxes, (N,) visible) of one manifest entry."""
    if entry["kind"] == "video":
        start, end = entry["frames"]
        frames = _video_frames(entry["source"], start, end)
        if entry.get("procedure") == "haar-frontalface":
            boxes = track_faces(frames)
        elif "procedure" in entry:
            raise ValueError(f"{entry['name']}: unknown ground-truth procedure {entry['procedure']!r}")
        else:
            boxes = interpolate_keyframes({int(k): v for k, v in entry["keyframes"].items()}, start, end)
        visible = np.ones(len(frames), dtype=bool)
        for a, b in entry.get("absent", []):
            visible[a - start:b - start + 1] = False
        return frames, boxes, visible
    photo = _read_rgb(locate(entry["source"])[0])
    box = entry["object"]
    if isinstance(box, str):  # "face:K", the K-th face box shipped with the Solvay photograph
        box = solvay_faces()[int(box.split(":")[1])]
    frames, boxes = render_photo_sequence(photo, box, CameraSpec(**entry["camera"]))
    return frames, boxes, np.ones(len(frames), dtype=bool)


def _recipe(split: str, entries: list[dict]) -> dict:
    return {"generator": "dimp_core.data.real", "version": VERSION, "split": split,
            "jpeg_quality": JPEG_QUALITY, "sequences": [e for e in entries if e["split"] == split]}


def write_benchmark(root: Path, split: str = "val", manifest: Path = MANIFEST) -> Path:
    """Write the ``split`` sequences of ``manifest`` under ``root`` in the OTB layout; returns ``root``."""
    recipe = _recipe(split, load_manifest(manifest))
    if not recipe["sequences"]:
        raise ValueError(f"{manifest} has no sequences of split {split!r}")
    root.mkdir(parents=True, exist_ok=True)
    attributes = {}
    for entry in recipe["sequences"]:
        frames, boxes, visible = sequence_frames(entry)
        seq_dir = root / entry["name"]
        (seq_dir / "img").mkdir(parents=True, exist_ok=True)
        for i, frame in enumerate(frames, start=1):
            cv2.imwrite(str(seq_dir / "img" / f"{i:04d}.jpg"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR),
                        [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        np.savetxt(seq_dir / "groundtruth_rect.txt", boxes, fmt="%.2f", delimiter=",")
        (seq_dir / "visible.txt").write_text("\n".join(str(int(v)) for v in visible) + "\n")
        attributes[entry["name"]] = [entry["kind"] if entry["kind"] == "photo" else "real_video",
                                     *entry.get("attributes", [])]
    (root / "attributes.json").write_text(json.dumps(attributes, indent=1) + "\n")
    (root / "recipe.json").write_text(json.dumps(recipe, indent=1) + "\n")
    return root


def real_root(split: str = "val") -> Path:
    """``$DIMP_LAB_DATA/real-<split>``; ``DIMP_LAB_DATA`` defaults to ``~/.cache/dimp-lab``."""
    return Path(os.environ.get("DIMP_LAB_DATA", "~/.cache/dimp-lab")).expanduser() / f"real-{split}"


def _is_complete(root: Path, recipe: dict) -> bool:
    try:
        return json.loads((root / "recipe.json").read_text()) == json.loads(json.dumps(recipe))
    except (OSError, ValueError):
        return False


def ensure_real_benchmark(split: str = "val", manifest: Path = MANIFEST) -> Path:
    """The ``real-<split>`` benchmark folder, written first when missing or made from another recipe."""
    root = real_root(split)
    if _is_complete(root, _recipe(split, load_manifest(manifest))):
        return root
    partial = root.with_name(f"{root.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    write_benchmark(partial, split, manifest)
    shutil.rmtree(root, ignore_errors=True)
    partial.rename(root)
    return root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dimp_core.data.real", description=__doc__.split("\n")[0])
    parser.add_argument("--fetch", action="store_true", help="unpack the Debian packages the sources need")
    parser.add_argument("--build", default=None, metavar="SPLIT", help="write real-SPLIT now (e.g. val)")
    args = parser.parse_args(argv)
    if args.fetch:
        for folder in fetch_debian():
            print(f"unpacked {folder}")
    if args.build:
        print(f"wrote {ensure_real_benchmark(args.build)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
