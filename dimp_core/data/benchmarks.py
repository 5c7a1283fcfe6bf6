"""Tracking benchmarks in their official folder layouts, read into one :class:`Sequence` type.

A :class:`Sequence` is a name, its frames (image files, or a video file), the ground truth as an (N, 4)
float array of (x, y, w, h) boxes (NaN rows where a frame has no annotation), an optional per-frame
``visible`` flag, attribute labels and the dataset name. Loaders read only the text files; frames are
read with OpenCV, as RGB uint8 arrays, when they are accessed (``seq.frame(i)`` or ``for frame in seq``).

Layouts (``reference/baselines_eval_notebooks.md`` section C):

- **OTB** ``<root>/<Seq>/img/0001.jpg`` (4 or 5 digits), ``groundtruth_rect.txt`` (separated by commas,
  tabs or spaces). Two-target folders hold ``groundtruth_rect.1.txt`` / ``.2.txt`` and become
  ``Jogging_1`` / ``Jogging_2`` (pytracking's names); empty files are skipped (Human4's ``.1``), so
  Human4 gives ``Human4_2``. Some sequences use a sub-range of their folder's frames
  (:data:`OTB_FRAME_RANGES`, pytracking's table): David tracks frames 300-770, Tiger1 starts 5 frames in
  (``initOmit``: its first 5 frames and ground-truth rows are dropped). An optional ``attributes.json``
  at the root maps sequence names to attribute lists; an optional ``<Seq>/visible.txt`` (one 1/0 per
  line, written by the synthetic generator) gives per-frame visibility.
- **LaSOT** ``<root>/<class>/<class>-<n>/img/00000001.jpg``, ``groundtruth.txt``; visible = not
  ``full_occlusion.txt`` and not ``out_of_view.txt`` (one comma-separated row of 0/1 flags each).
- **GOT-10k** ``<root>/<split>/list.txt`` names the folders; each has ``00000001.jpg...``,
  ``groundtruth.txt`` (the test split annotates only the first frame; the other rows become NaN),
  ``absence.label`` and ``cover.label``; visible = not absent and cover > 0 (ltr's rule).
- **TrackingNet** ``<root>/TEST/frames/<seq>/<n>.jpg`` (0-based, sorted numerically) and
  ``<root>/TEST/anno/<seq>.txt`` (TEST annotates only the first frame).
- A **video file** or a **folder of images** (sorted naturally: ``2.jpg`` before ``10.jpg``) with a
  first-frame box given by the caller.

:func:`load_dataset` takes a spec string (``synth-test``, ``otb:PATH``, ``lasot:PATH``, ``got10k:PATH``,
``got10k:PATH:val``, ``trackingnet:PATH``, ``trackingnet:PATH:TRAIN_0`` or a bare PATH, whose layout is
detected).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import ArrayLike

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")

# pytracking's OTB frames (1-based numbers in the file names, inclusive) where a sequence does not use
# every image of its folder, and the number of leading frames dropped (``initOmit``) after the range.
# name: (start frame, end frame, init_omit)
OTB_FRAME_RANGES: dict[str, tuple[int, int, int]] = {
    "David": (300, 770, 0),
    "BlurCar1": (247, 988, 0),
    "BlurCar3": (3, 359, 0),
    "BlurCar4": (18, 397, 0),
    "Football1": (1, 74, 0),
    "Freeman3": (1, 460, 0),
    "Freeman4": (1, 283, 0),
    "Diving": (1, 215, 0),
    "Tiger1": (1, 354, 5),
}


# --------------------------------------------------------------------------- the sequence


@dataclass(frozen=True, eq=False)
class Sequence:
    """One annotated sequence; frames are read lazily, as H x W x 3 uint8 RGB arrays.

    Attributes:
        name: sequence name, unique within its dataset (used for result file names).
        frame_paths: one image file per frame; empty when ``video`` is set.
        ground_truth: (N, 4) float64 (x, y, w, h); NaN rows where a frame has no annotation.
        visible: (N,) bool, or None when the dataset says nothing about visibility.
        attributes: attribute labels (e.g. ``occlusion``, ``fast_motion``).
        dataset: name of the dataset the sequence belongs to.
        video: a video file holding the frames, read with ``cv2.VideoCapture``.
    """

    name: str
    frame_paths: tuple[Path, ...]
    ground_truth: np.ndarray  # (N, 4)
    visible: np.ndarray | None = None  # (N,) bool
    attributes: tuple[str, ...] = ()
    dataset: str = ""
    video: Path | None = None

    def __post_init__(self) -> None:
        # own read-only copies: the arrays are shared by every run over the sequence
        ground_truth = np.array(self.ground_truth, dtype=np.float64).reshape(-1, 4)
        ground_truth.flags.writeable = False
        object.__setattr__(self, "ground_truth", ground_truth)
        if self.visible is not None:
            visible = np.array(self.visible, dtype=bool).reshape(-1)
            if len(visible) != len(ground_truth):
                raise ValueError(f"{self.name}: {len(visible)} visibility flags for {len(ground_truth)} frames")
            visible.flags.writeable = False
            object.__setattr__(self, "visible", visible)
        if self.video is None and len(self.frame_paths) != len(ground_truth):
            raise ValueError(f"{self.name}: {len(self.frame_paths)} frames but {len(ground_truth)} ground-truth rows")

    def __len__(self) -> int:
        return len(self.ground_truth)

    @property
    def init_box(self) -> np.ndarray:
        """The first-frame box (x, y, w, h)."""
        return self.ground_truth[0]

    def frame(self, index: int) -> np.ndarray:
        """Frame ``index`` as an H x W x 3 uint8 RGB array."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"{self.name}: frame {index} out of range (the sequence has {len(self)} frames)")
        index %= len(self)
        if self.video is None:
            return read_image(self.frame_paths[index])
        capture = _open_video(self.video)
        try:
            capture.set(cv2.CAP_PROP_POS_FRAMES, index)
            ok, bgr = capture.read()
        finally:
            capture.release()
        if not ok:
            raise OSError(f"{self.name}: cannot read frame {index} of {self.video}")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def __iter__(self) -> Iterator[np.ndarray]:
        if self.video is None:
            for path in self.frame_paths:
                yield read_image(path)
            return
        capture = _open_video(self.video)
        try:
            for index in range(len(self)):
                ok, bgr = capture.read()
                if not ok:
                    raise OSError(f"{self.name}: cannot read frame {index} of {self.video}")
                yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        finally:
            capture.release()


@dataclass(frozen=True)
class Dataset:
    """An ordered collection of sequences; index by position or by sequence name."""

    name: str
    sequences: tuple[Sequence, ...] = field(default_factory=tuple)

    def __len__(self) -> int:
        return len(self.sequences)

    def __iter__(self) -> Iterator[Sequence]:
        return iter(self.sequences)

    def __getitem__(self, key: int | str) -> Sequence:
        if isinstance(key, str):
            for seq in self.sequences:
                if seq.name == key:
                    return seq
            raise KeyError(f"no sequence {key!r} in {self.name}")
        return self.sequences[key]

    @property
    def attributes(self) -> list[str]:
        """Every attribute label used by a sequence, sorted."""
        return sorted({a for seq in self.sequences for a in seq.attributes})


# --------------------------------------------------------------------------- small readers


def read_image(path: Path) -> np.ndarray:
    """An image file as an H x W x 3 uint8 RGB array; a clear error if it cannot be read."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise OSError(f"cannot read image {path} (missing, empty or not an image)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _open_video(path: Path) -> cv2.VideoCapture:
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise OSError(f"cannot open video {path}")
    return capture


def read_boxes(path: Path) -> np.ndarray:
    """An annotation file as an (N, 4) float64 array of (x, y, w, h).

    Numbers may be separated by commas, tabs or spaces (OTB mixes them); blank lines are skipped;
    ``NaN`` parses as NaN.
    """
    rows = []
    for line_no, line in enumerate(path.read_text().splitlines(), start=1):
        parts = re.split(r"[,\s]+", line.strip())
        if parts == [""]:
            continue
        try:
            row = [float(p) for p in parts]
        except ValueError as err:
            raise ValueError(f"{path}, line {line_no}: not a box: {line!r}") from err
        if len(row) != 4:
            raise ValueError(f"{path}, line {line_no}: expected 4 numbers (x, y, w, h), got {len(row)}")
        rows.append(row)
    return np.asarray(rows, dtype=np.float64).reshape(-1, 4)


def read_flags(path: Path) -> np.ndarray:
    """A file of 0/1 (or integer) flags, one per frame, separated by commas or whitespace."""
    parts = [p for p in re.split(r"[,\s]+", path.read_text().strip()) if p]
    try:
        return np.asarray([int(float(p)) for p in parts], dtype=np.int64)
    except ValueError as err:
        raise ValueError(f"{path}: expected integer flags, one per frame") from err


def natural_key(path: Path) -> list[int | str]:
    """Sort key that orders ``2.jpg`` before ``10.jpg``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def list_images(folder: Path) -> list[Path]:
    """The image files of ``folder``, sorted naturally."""
    return sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=natural_key)


def _frame_number(path: Path) -> int:
    digits = re.findall(r"\d+", path.stem)
    return int(digits[-1]) if digits else -1


def _require_dir(root: Path, what: str) -> Path:
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"{what} root {root} does not exist or is not a folder")
    return root


def _require_file(path: Path, seq_name: str, what: str = "ground truth") -> Path:
    if not path.is_file():
        raise FileNotFoundError(f"sequence {seq_name}: {what} file {path} not found")
    return path


def _check_count(seq_name: str, n_frames: int, ground_truth: np.ndarray, first_frame_only: bool = False) -> np.ndarray:
    """Check that there is one ground-truth row per frame; pad first-frame-only annotations with NaN."""
    if first_frame_only and len(ground_truth) == 1 and n_frames > 1:
        pad = np.full((n_frames - 1, 4), np.nan)
        return np.concatenate([ground_truth, pad])
    if n_frames == 0:
        raise ValueError(f"sequence {seq_name}: no frames found")
    if len(ground_truth) != n_frames:
        raise ValueError(f"sequence {seq_name}: {n_frames} frames but {len(ground_truth)} ground-truth rows")
    return ground_truth


def _visible_from(flags: np.ndarray, seq_name: str, n_frames: int, what: str) -> np.ndarray:
    if len(flags) != n_frames:
        raise ValueError(f"sequence {seq_name}: {n_frames} frames but {len(flags)} {what} flags")
    return flags


def _read_attributes(root: Path) -> dict[str, list[str]]:
    path = root / "attributes.json"
    if not path.is_file():
        return {}
    table = json.loads(path.read_text())
    if not isinstance(table, dict):
        raise ValueError(f"{path}: expected an object mapping sequence name -> list of attributes")
    return {str(k): [str(a) for a in v] for k, v in table.items()}


# --------------------------------------------------------------------------- OTB


def _otb_ground_truth_files(seq_dir: Path) -> list[tuple[str, Path]]:
    """(sequence name, ground-truth file) pairs of one OTB folder; empty files are skipped."""
    pairs = []
    for path in sorted(seq_dir.glob("groundtruth_rect*.txt"), key=natural_key):
        match = re.fullmatch(r"groundtruth_rect(?:\.(\d+))?\.txt", path.name)
        if match is None or path.stat().st_size == 0 or not path.read_text().strip():
            continue
        name = seq_dir.name if match.group(1) is None else f"{seq_dir.name}_{match.group(1)}"
        pairs.append((name, path))
    return pairs


def _otb_sequence(seq_dir: Path, name: str, gt_path: Path, attributes: dict[str, list[str]],
                  dataset: str) -> Sequence:
    frames = list_images(seq_dir / "img")
    ground_truth = read_boxes(gt_path)
    folder = seq_dir.name
    if folder in OTB_FRAME_RANGES:
        start, end, init_omit = OTB_FRAME_RANGES[folder]
        if len(frames) != len(ground_truth):  # the folder holds more frames than were annotated
            frames = [p for p in frames if start <= _frame_number(p) <= end]
        frames, ground_truth = frames[init_omit:], ground_truth[init_omit:]
    ground_truth = _check_count(name, len(frames), ground_truth)
    visible = None
    if (seq_dir / "visible.txt").is_file():
        flags = read_flags(seq_dir / "visible.txt")
        visible = _visible_from(flags, name, len(frames), "visible.txt").astype(bool)
    attrs = attributes.get(name, attributes.get(folder, []))
    return Sequence(name, tuple(frames), ground_truth, visible, tuple(attrs), dataset)


def load_otb(root: str | Path, name: str = "otb") -> Dataset:
    """An OTB-layout folder (or a single OTB sequence folder) as a :class:`Dataset`."""
    root = _require_dir(Path(root), "OTB")
    single = (root / "img").is_dir()
    attributes = _read_attributes(root.parent if single else root)
    seq_dirs = [root] if single else sorted((d for d in root.iterdir() if d.is_dir()), key=natural_key)
    sequences = []
    for seq_dir in seq_dirs:
        if not (seq_dir / "img").is_dir():
            continue
        pairs = _otb_ground_truth_files(seq_dir)
        if not pairs:
            raise FileNotFoundError(f"sequence {seq_dir.name}: no non-empty groundtruth_rect*.txt in {seq_dir}")
        sequences += [_otb_sequence(seq_dir, n, p, attributes, name) for n, p in pairs]
    if not sequences:
        raise FileNotFoundError(f"no OTB sequences (<seq>/img/ and <seq>/groundtruth_rect.txt) under {root}")
    return Dataset(name, tuple(sequences))


# --------------------------------------------------------------------------- LaSOT


def _lasot_sequence(seq_dir: Path, attributes: dict[str, list[str]]) -> Sequence:
    name = seq_dir.name
    ground_truth = read_boxes(_require_file(seq_dir / "groundtruth.txt", name))
    frames = list_images(seq_dir / "img") if (seq_dir / "img").is_dir() else []
    ground_truth = _check_count(name, len(frames), ground_truth)
    invisible = np.zeros(len(frames), dtype=bool)
    for flag_file in ("full_occlusion.txt", "out_of_view.txt"):
        if (seq_dir / flag_file).is_file():
            invisible |= _visible_from(read_flags(seq_dir / flag_file), name, len(frames), flag_file).astype(bool)
    attrs = attributes.get(name, [])
    return Sequence(name, tuple(frames), ground_truth, ~invisible, tuple(attrs), "lasot")


def load_lasot(root: str | Path) -> Dataset:
    """A LaSOT folder ``<root>/<class>/<class>-<n>/`` as a :class:`Dataset` (every sequence found)."""
    root = _require_dir(Path(root), "LaSOT")
    attributes = _read_attributes(root)
    seq_dirs = sorted((p.parent for p in root.glob("*/*/groundtruth.txt")), key=natural_key)
    seq_dirs += sorted((p.parent for p in root.glob("*/groundtruth.txt")), key=natural_key)
    if not seq_dirs:
        raise FileNotFoundError(f"no LaSOT sequences (<class>/<class>-<n>/groundtruth.txt) under {root}")
    return Dataset("lasot", tuple(_lasot_sequence(d, attributes) for d in seq_dirs))


# --------------------------------------------------------------------------- GOT-10k


def _got10k_sequence(seq_dir: Path, attributes: dict[str, list[str]]) -> Sequence:
    name = seq_dir.name
    if not seq_dir.is_dir():
        raise FileNotFoundError(f"sequence {name}: folder {seq_dir} (listed in list.txt) not found")
    ground_truth = read_boxes(_require_file(seq_dir / "groundtruth.txt", name))
    frames = list_images(seq_dir)
    ground_truth = _check_count(name, len(frames), ground_truth, first_frame_only=True)
    visible = None
    if (seq_dir / "absence.label").is_file():
        absent = _visible_from(read_flags(seq_dir / "absence.label"), name, len(frames), "absence.label")
        visible = absent == 0
    if (seq_dir / "cover.label").is_file():
        cover = _visible_from(read_flags(seq_dir / "cover.label"), name, len(frames), "cover.label")
        visible = (cover > 0) if visible is None else visible & (cover > 0)
    attrs = attributes.get(name, [])
    return Sequence(name, tuple(frames), ground_truth, visible, tuple(attrs), "got10k")


def load_got10k(root: str | Path, split: str = "val") -> Dataset:
    """A GOT-10k split as a :class:`Dataset`; ``root`` is the folder holding ``train/``, ``val/``, ``test/``
    (or a split folder itself, the one holding ``list.txt``)."""
    root = _require_dir(Path(root), "GOT-10k")
    split_dir = root if (root / "list.txt").is_file() else root / split
    list_file = _require_file(split_dir / "list.txt", f"GOT-10k {split}", "sequence list")
    names = [line.strip() for line in list_file.read_text().splitlines() if line.strip()]
    attributes = _read_attributes(split_dir)
    return Dataset(f"got10k-{split_dir.name}", tuple(_got10k_sequence(split_dir / n, attributes) for n in names))


# --------------------------------------------------------------------------- TrackingNet


def load_trackingnet(root: str | Path, chunk: str = "TEST") -> Dataset:
    """A TrackingNet chunk (``TEST`` or ``TRAIN_0`` ... ``TRAIN_11``) as a :class:`Dataset`; ``root`` holds the
    chunks (or is a chunk folder itself, the one holding ``frames/`` and ``anno/``)."""
    root = _require_dir(Path(root), "TrackingNet")
    chunk_dir = root if (root / "anno").is_dir() else root / chunk
    anno_dir = chunk_dir / "anno"
    if not anno_dir.is_dir():
        raise FileNotFoundError(f"TrackingNet {chunk}: annotation folder {anno_dir} not found")
    attributes = _read_attributes(chunk_dir)
    sequences = []
    for anno in sorted(anno_dir.glob("*.txt"), key=natural_key):
        name = anno.stem
        frame_dir = chunk_dir / "frames" / name
        if not frame_dir.is_dir():
            raise FileNotFoundError(f"sequence {name}: frame folder {frame_dir} not found")
        frames = sorted((p for p in frame_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=_frame_number)
        ground_truth = _check_count(name, len(frames), read_boxes(anno), first_frame_only=True)
        sequences.append(Sequence(name, tuple(frames), ground_truth, None, tuple(attributes.get(name, [])),
                                  "trackingnet"))
    if not sequences:
        raise FileNotFoundError(f"no TrackingNet annotations (anno/<seq>.txt) under {chunk_dir}")
    return Dataset(f"trackingnet-{chunk_dir.name}", tuple(sequences))


# --------------------------------------------------------------------------- a video or a folder of images


def _first_frame_ground_truth(init_box: ArrayLike, n_frames: int) -> np.ndarray:
    box = np.asarray(init_box, dtype=np.float64).reshape(-1)
    if box.shape != (4,) or not np.all(np.isfinite(box)) or box[2] <= 0 or box[3] <= 0:
        raise ValueError(f"first-frame box must be 4 finite numbers x, y, w, h with w, h > 0, got {init_box!r}")
    ground_truth = np.full((n_frames, 4), np.nan)
    ground_truth[0] = box
    return ground_truth


def load_video(path: str | Path, init_box: ArrayLike, name: str | None = None) -> Sequence:
    """A video file as a :class:`Sequence` whose only annotation is the caller's first-frame box."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"video {path} not found")
    capture = _open_video(path)
    try:  # count by decoding: CAP_PROP_FRAME_COUNT is an estimate for many containers
        n_frames = 0
        while capture.grab():
            n_frames += 1
    finally:
        capture.release()
    if n_frames == 0:
        raise ValueError(f"video {path} has no readable frames")
    return Sequence(name or path.stem, (), _first_frame_ground_truth(init_box, n_frames), dataset="video", video=path)


def load_image_folder(path: str | Path, init_box: ArrayLike, name: str | None = None) -> Sequence:
    """A folder of images (sorted naturally) as a :class:`Sequence` with the caller's first-frame box."""
    path = _require_dir(Path(path), "image folder")
    frames = list_images(path)
    if not frames:
        raise ValueError(f"image folder {path} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return Sequence(name or path.name, tuple(frames), _first_frame_ground_truth(init_box, len(frames)),
                    dataset="images")


# --------------------------------------------------------------------------- load_dataset


DATASET_KINDS = ("real-val", "synth-test", "synth-val", "synth-val-heldout", "otb", "lasot", "got10k", "trackingnet")
REAL = ("real-val",)  # cut from package files on first use (dimp_core.data.real)
SYNTHETIC = ("synth-test", "synth-val", "synth-val-heldout")  # generated on first use


def detect_layout(root: Path) -> str:
    """The benchmark layout of a folder: ``otb``, ``lasot``, ``got10k`` or ``trackingnet``."""
    if (root / "img").is_dir() or any(root.glob("*/groundtruth_rect*.txt")):
        return "otb"
    if (root / "list.txt").is_file() or any((root / s / "list.txt").is_file() for s in ("val", "test", "train")):
        return "got10k"
    if (root / "anno").is_dir() or (root / "TEST" / "anno").is_dir():
        return "trackingnet"
    if any(root.glob("*/*/groundtruth.txt")):
        return "lasot"
    raise ValueError(f"cannot tell the benchmark layout of {root}: expected OTB (<seq>/img/, "
                     "<seq>/groundtruth_rect.txt), LaSOT, GOT-10k (<split>/list.txt) or TrackingNet (TEST/anno/)")


def _split_suffix(rest: str) -> tuple[str, str]:
    """``PATH:SPLIT`` -> (PATH, SPLIT) for a GOT-10k split or TrackingNet chunk name; else (rest, "")."""
    match = re.fullmatch(r"(.*):(train|val|test|TEST|TRAIN_\d+)", rest)
    return (match.group(1), match.group(2)) if match else (rest, "")


def load_dataset(spec: str) -> Dataset:
    """A dataset from a spec: ``real-val`` (real video and photographs, :mod:`dimp_core.data.real`),
    ``synth-test``, ``synth-val`` (the split to select settings on), ``synth-val-heldout``
    (the held-out-photo experiment, :mod:`dimp_core.data.synthetic`), ``otb:PATH``,
    ``lasot:PATH``, ``got10k:PATH[:SPLIT]`` (split ``val`` by default), ``trackingnet:PATH[:CHUNK]`` (chunk
    ``TEST`` by default) or a bare ``PATH`` (layout detected by :func:`detect_layout`)."""
    if spec in REAL:
        from dimp_core.data.real import ensure_real_benchmark  # written on first use

        return load_otb(ensure_real_benchmark(spec.removeprefix("real-")), name=spec)
    if spec in SYNTHETIC:
        from dimp_core.data.synthetic import ensure_benchmark  # written on first use

        return load_otb(ensure_benchmark(spec.removeprefix("synth-")), name=spec)
    kind, sep, rest = spec.partition(":")
    if sep and kind == "otb":
        return load_otb(rest)
    if sep and kind == "lasot":
        return load_lasot(rest)
    if sep and kind == "got10k":
        path, split = _split_suffix(rest)
        return load_got10k(path, split or "val")
    if sep and kind == "trackingnet":
        path, chunk = _split_suffix(rest)
        return load_trackingnet(path, chunk or "TEST")
    root = Path(spec).expanduser()
    if root.is_dir():
        return load_dataset(f"{detect_layout(root)}:{root}")
    known = f"known: {', '.join(DATASET_KINDS)} (the last four as KIND:PATH), or the PATH of a benchmark folder"
    if sep and re.fullmatch(r"[A-Za-z][\w-]+", kind):
        raise ValueError(f"unknown dataset kind {kind!r} in {spec!r}; {known}")
    if "/" in spec or "\\" in spec or spec.startswith((".", "~")):
        raise FileNotFoundError(f"dataset folder {root} does not exist")
    raise ValueError(f"unknown dataset {spec!r}; {known}")
