"""Frame sources for ``dimp track`` (a video file, a folder of images, a camera) and an annotated-video writer.

``open_source(source)`` returns a :class:`FrameSource`: iterate it for H x W x 3 uint8 **RGB** frames (the
trackers' input), read ``fps``, ``frame_size`` (width, height) and ``num_frames`` where they are known. The
source is opened and its first frame read at once, so a bad source fails before any tracker is built:

- a path that does not exist: ``FileNotFoundError``;
- a file OpenCV cannot open or whose first frame it cannot decode: ``ValueError('cannot decode video ...')``;
- a 0-byte file or a video without frames: ``ValueError('empty video ...')``;
- a folder without .jpg/.jpeg/.png/.bmp images, or an image that cannot be read: ``ValueError``;
- a camera index ("0", "1", ...) that cannot be opened: ``ValueError``.

Folders are read in natural order (``frame2.jpg`` before ``frame10.jpg``). A source is iterated once
(a camera cannot be rewound); use it as a context manager or call ``close()``.

:class:`VideoWriter` writes an mp4 (OpenCV's 'mp4v' codec) with the box, the flag and the score drawn on
each frame, one frame at a time (a camera never ends). :func:`write_annotated_video` writes a clip held in
memory with the boxes of several trackers and the ground truth, each tracker in its own colour.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
DEFAULT_FPS = 30.0  # for image folders and writers whose source does not know its frame rate

# BGR colours of the box for each flag (the writer draws on BGR frames)
FLAG_COLORS = {"normal": (0, 200, 0), "uncertain": (0, 220, 255), "hard_negative": (0, 140, 255),
               "not_found": (0, 0, 255)}
# BGR colours of the trackers in write_annotated_video, in order (red, blue, orange, purple: the figures' colours)
TRACK_COLORS = ((40, 39, 214), (180, 119, 31), (14, 127, 255), (189, 103, 148))
GT_BGR = (44, 160, 44)  # ground truth: green, as in the figures


def natural_key(name: str) -> list[Any]:
    """Sort key that orders the digit runs of ``name`` by value.

    Example:
        >>> sorted(["f10.jpg", "f2.jpg", "f1.jpg"], key=natural_key)
        ['f1.jpg', 'f2.jpg', 'f10.jpg']
    """
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


# --------------------------------------------------------------------------- sources


class FrameSource:
    """RGB uint8 frames from somewhere, with what is known about them.

    Attributes:
        name: a short name for result files (the video's stem, the folder's name, ``camera0``).
        fps: frames per second, or None when unknown (image folders).
        frame_size: (width, height) of the first frame.
        num_frames: the number of frames, or None when unknown (cameras; for videos the container's count).
    """

    name: str
    fps: float | None
    frame_size: tuple[int, int]
    num_frames: int | None

    def __iter__(self) -> Iterator[np.ndarray]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the source (a no-op for folders)."""

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class CaptureSource(FrameSource):
    """A video file or a camera, read with ``cv2.VideoCapture``."""

    def __init__(self, capture: cv2.VideoCapture, name: str, what: str, is_camera: bool = False) -> None:
        self._capture = capture
        self.name = name
        ok, first = capture.read()
        if not ok or first is None:
            count = capture.get(cv2.CAP_PROP_FRAME_COUNT)
            capture.release()
            if is_camera:
                raise ValueError(f"cannot read a frame from {what}")
            if count <= 0:
                raise ValueError(f"empty video: {what} has no frames")
            raise ValueError(f"cannot decode video {what}: its first frame cannot be read")
        self._first: np.ndarray | None = first
        fps = capture.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps > 0 else None
        self.frame_size = (first.shape[1], first.shape[0])
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self.num_frames = None if is_camera or count <= 0 else count

    def __iter__(self) -> Iterator[np.ndarray]:
        if self._first is None:
            raise RuntimeError(f"{self.name}: a video or camera source can be iterated only once")
        frame, self._first = self._first, None
        while frame is not None:
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            ok, frame = self._capture.read()
            if not ok:
                frame = None

    def close(self) -> None:
        self._capture.release()


class ImageFolderSource(FrameSource):
    """The images of a folder (.jpg, .jpeg, .png, .bmp), in natural order."""

    def __init__(self, folder: Path) -> None:
        self.files = sorted((f for f in folder.iterdir() if f.suffix.lower() in IMAGE_EXTENSIONS and f.is_file()),
                            key=lambda f: natural_key(f.name))
        if not self.files:
            raise ValueError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in folder {folder}")
        self.name = folder.resolve().name
        self.fps = None
        self.num_frames = len(self.files)
        first = read_image(self.files[0])
        self.frame_size = (first.shape[1], first.shape[0])

    def __iter__(self) -> Iterator[np.ndarray]:
        for f in self.files:
            yield read_image(f)


def read_image(path: Path) -> np.ndarray:
    """An image file as H x W x 3 uint8 RGB; ValueError if OpenCV cannot read it."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"cannot read image {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def open_source(source: str | int | Path) -> FrameSource:
    """Open a video file, a folder of images, or a camera (an int, or a string of digits like ``"0"``).

    See the module docstring for the errors. An existing file or folder named like a number wins over the
    camera of that index.
    """
    path = Path(source) if not isinstance(source, int) else None
    if path is not None and path.is_dir():
        return ImageFolderSource(path)
    if path is not None and path.is_file():
        if path.stat().st_size == 0:
            raise ValueError(f"empty video: {path} is 0 bytes")
        capture = cv2.VideoCapture(str(path))
        if not capture.isOpened():
            raise ValueError(f"cannot decode video {path} (not a video, or a codec OpenCV lacks)")
        return CaptureSource(capture, path.stem, str(path))
    if isinstance(source, int) or str(source).isdigit():
        index = int(source)
        capture = cv2.VideoCapture(index)
        if not capture.isOpened():
            raise ValueError(f"cannot open camera {index}")
        return CaptureSource(capture, f"camera{index}", f"camera {index}", is_camera=True)
    raise FileNotFoundError(f"{source}: no such video file or image folder (a camera is an index like 0)")


# --------------------------------------------------------------------------- writing


def draw_annotation(frame: np.ndarray, box: np.ndarray, flag: str | None = None,
                    score: float | None = None) -> np.ndarray:
    """A BGR copy of RGB ``frame`` with ``box`` (x, y, w, h) drawn, coloured by ``flag``, and the flag/score."""
    bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
    color = FLAG_COLORS.get(flag or "normal", (255, 255, 255))
    x, y, w, h = (float(v) for v in box)
    cv2.rectangle(bgr, (round(x), round(y)), (round(x + w), round(y + h)), color, 2)
    label = " ".join(part for part in (flag, None if score is None else f"{score:.3g}") if part)
    if label:
        cv2.putText(bgr, label, (5, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(bgr, label, (5, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, color, 1, cv2.LINE_AA)
    return bgr


class VideoWriter:
    """Writes an annotated mp4 ('mp4v'); the frame size is taken from the first frame written.

    Example (not run)::

        with VideoWriter("out.mp4", fps=25) as writer:
            writer.write(frame, box, flag="normal", score=0.9)
    """

    def __init__(self, path: str | Path, fps: float | None = None) -> None:
        self.path = Path(path)
        self.fps = fps or DEFAULT_FPS
        self._writer: cv2.VideoWriter | None = None
        self.frames_written = 0

    def write(self, frame: np.ndarray, box: np.ndarray, flag: str | None = None, score: float | None = None) -> None:
        """Draw ``box`` (x, y, w, h), ``flag`` and ``score`` on RGB ``frame`` and append it."""
        bgr = draw_annotation(frame, box, flag, score)
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            size = (bgr.shape[1], bgr.shape[0])
            self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, size)
            if not self._writer.isOpened():
                raise ValueError(f"cannot write video {self.path} (OpenCV has no 'mp4v' encoder for it)")
            self._size = size
        if (bgr.shape[1], bgr.shape[0]) != self._size:
            bgr = cv2.resize(bgr, self._size)  # a video has one frame size
        self._writer.write(bgr)
        self.frames_written += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _label(bgr: np.ndarray, text: str, origin: tuple[int, int], color: tuple[int, int, int], scale: float) -> None:
    """``text`` at ``origin`` (bottom-left) in ``color`` over a black outline, readable on any background."""
    thickness = max(1, round(scale * 2))
    cv2.putText(bgr, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness + 2, cv2.LINE_AA)
    cv2.putText(bgr, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, color, thickness, cv2.LINE_AA)


def draw_tracks(frame: np.ndarray, boxes: Mapping[str, np.ndarray], captions: Mapping[str, str] | None = None,
                gt: np.ndarray | None = None, title: str | None = None) -> np.ndarray:
    """A BGR copy of RGB ``frame`` with each tracker's box (x, y, w, h) in its colour of :data:`TRACK_COLORS`,
    the ground-truth box ``gt`` in thin green, and per tracker a line ``name caption`` at the top left."""
    bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
    height, width = bgr.shape[:2]
    scale = max(0.35, min(0.8, width / 900))
    step = round(28 * scale) + 4
    if gt is not None:
        x, y, w, h = (float(v) for v in gt)
        cv2.rectangle(bgr, (round(x), round(y)), (round(x + w), round(y + h)), GT_BGR, 1)
    for k, (name, box) in enumerate(boxes.items()):
        color = TRACK_COLORS[k % len(TRACK_COLORS)]
        x, y, w, h = (float(v) for v in box)
        cv2.rectangle(bgr, (round(x), round(y)), (round(x + w), round(y + h)), color, 2)
        text = f"{name} {captions[name]}" if captions and captions.get(name) else name
        _label(bgr, text, (5, step * (k + 1)), color, scale)
    if gt is not None:
        _label(bgr, "ground truth", (5, step * (len(boxes) + 1)), GT_BGR, scale)
    if title:
        _label(bgr, title, (5, height - 6), (255, 255, 255), scale)
    return bgr


def write_annotated_video(path: str | Path, frames: Sequence[np.ndarray], boxes: Mapping[str, np.ndarray],
                          captions: Mapping[str, Sequence[str]] | None = None, gt: np.ndarray | None = None,
                          visible: np.ndarray | None = None, fps: float | None = None) -> Path:
    """Write RGB ``frames`` as an mp4 ('mp4v') with the boxes of every tracker and the ground truth drawn.

    Args:
        boxes: tracker name -> (N, 4) boxes (x, y, w, h), one per frame.
        captions: tracker name -> N short texts shown after its name (e.g. score and flag).
        gt: (N, 4) ground-truth boxes; not drawn on frames where ``visible`` is False (the target is hidden).
        fps: frame rate (default :data:`DEFAULT_FPS`).

    Returns the path. ValueError when the lengths disagree or OpenCV cannot write the file.
    """
    n = len(frames)
    if n == 0:
        raise ValueError("no frames to write")
    lengths = {name: len(b) for name, b in boxes.items()}
    lengths |= {f"captions[{name}]": len(c) for name, c in (captions or {}).items()}
    if gt is not None:
        lengths["gt"] = len(gt)
    if any(length != n for length in lengths.values()):
        raise ValueError(f"{n} frames but lengths {lengths}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    size = (frames[0].shape[1], frames[0].shape[0])
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps or DEFAULT_FPS, size)
    if not writer.isOpened():
        raise ValueError(f"cannot write video {path} (OpenCV has no 'mp4v' encoder for it)")
    try:
        for i, frame in enumerate(frames):
            shown = gt is not None and (visible is None or bool(visible[i]))
            title = f"frame {i}" + ("" if gt is None or shown else " (target hidden)")
            bgr = draw_tracks(frame, {name: b[i] for name, b in boxes.items()},
                              {name: c[i] for name, c in (captions or {}).items()}, gt[i] if shown else None, title)
            writer.write(bgr if (bgr.shape[1], bgr.shape[0]) == size else cv2.resize(bgr, size))
    finally:
        writer.release()
    return path
