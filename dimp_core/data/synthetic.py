"""A procedural, seeded synthetic tracking benchmark (SPEC section 4), in memory or on disk in the OTB layout.

Each sequence is drawn from one seed: a textured background (an offline photo, a procedural pattern or both,
with static clutter painted in), a target (a photo crop inside a random shape, or a textured shape), moving
objects, look-alike distractors and occluders, a virtual camera (pan, zoom, roll, shake), light, blur and
sensor noise. What each attribute label does is documented in :mod:`dimp_core.data.synthetic_scene`; the
labels are ``ATTRIBUTES``. Rendering is described in :mod:`dimp_core.data.synthetic_render`.

Splits. ``train`` and ``test`` use disjoint source photos (``TRAIN_PHOTOS``, ``TEST_PHOTOS`` in
:mod:`dimp_core.data.synthetic_assets`) and disjoint seeds: the random generator of a sequence is seeded with
``(split, seed)``, so the same number gives unrelated sequences in the splits, and the default seeds are
``0, 1, ...`` for train and ``1000000, 1000001, ...`` for test. ``val`` is the split to select on (training
schedules, tracker settings) so that the test split is only ever reported: the train photos, but its own random
stream (no scene, motion or target of a training sequence recurs), 24 sequences planned like the test ones.

The default test (and val) benchmark (``benchmark_plan('test')``): 24 sequences of 100-150 frames at 480 x 360.
Sequence ``i`` has 2-4 attributes, ``ATTRIBUTES[(i + step j) % 12]`` for ``j = 0, 1, ...`` with ``step`` 5 for
the first 12 sequences and 1 for the next 12 (``planned_test_attributes``), so every attribute labels at least 4
sequences and no two sequences share the same set. Train sequences draw 2-4 attributes at random from their seed.

Layout on disk (OTB, SPEC section 3)::

    <root>/attributes.json              {sequence name: [attribute, ...]}
    <root>/recipe.json                  generator version and parameters; written last
    <root>/<seq>/img/0001.jpg ...       1-based, JPEG quality 90
    <root>/<seq>/groundtruth_rect.txt   one "x,y,w,h" line per frame, 2 decimals
    <root>/<seq>/visible.txt            one 1/0 line per frame

Ground truth follows LaSOT: the box is where the whole target is (the axis-aligned box of its outline,
rotation included), also when it is hidden or outside the image, and is never clipped to the image, so it can
have negative or too large coordinates. Visibility is separate: ``visible.txt`` holds 0 in frames where less
than 2 % of the target's area can be seen (``VISIBLE_THRESHOLD``): fully occluded or out of view.

Determinism: the same seed, split, attributes, frame count and size give byte-identical frames and files
(``numpy.random.Generator`` per sequence, fixed JPEG quality, no threads of our own).

Symbols: ``SyntheticSequence``, ``SequenceSpec``, ``benchmark_plan``, ``make_scene``, ``make_sequence``,
``iter_benchmark``, ``write_sequence``, ``benchmark_recipe``, ``write_benchmark``, ``benchmark_root``,
``ensure_benchmark``.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from dimp_core.data.synthetic_assets import TEST_PHOTOS, TRAIN_PHOTOS
from dimp_core.data.synthetic_render import Scene, render_frame, target_boxes
from dimp_core.data.synthetic_scene import ATTRIBUTES, SynthParams, build_scene

__all__ = [
    "ATTRIBUTES", "GENERATOR_VERSION", "HELD_OUT_PHOTOS", "IMAGE_SIZE", "KEPT_PHOTOS", "SPLITS", "TEST_PHOTOS",
    "TRAIN_PHOTOS", "VISIBLE_THRESHOLD",
    "SequenceSpec", "SynthParams", "SyntheticSequence", "benchmark_plan", "benchmark_recipe", "benchmark_root",
    "ensure_benchmark", "iter_benchmark", "make_scene", "make_sequence", "write_benchmark", "write_sequence",
]

GENERATOR_VERSION = 1  # bump when the output of the same recipe changes
# The held-out-photo experiment: train on the other 9 train photos ("train-kept", the train split's random stream)
# and validate on scenes made of these 4 only ("val-heldout", planned like val), to see what a tracker loses on
# photos its training never saw while the test split stays untouched.
HELD_OUT_PHOTOS = TRAIN_PHOTOS[::4]  # astronaut, retina, text, china
KEPT_PHOTOS = tuple(p for p in TRAIN_PHOTOS if p not in HELD_OUT_PHOTOS)
SPLITS = ("train", "val", "test", "train-kept", "val-heldout")
SPLIT_PHOTOS = {"train": TRAIN_PHOTOS, "val": TRAIN_PHOTOS, "test": TEST_PHOTOS, "train-kept": KEPT_PHOTOS,
                "val-heldout": HELD_OUT_PHOTOS}
PLANNED_SPLITS = ("val", "test", "val-heldout")  # benchmarks with planned attributes (``planned_test_attributes``)
DEFAULT_SEED = {"train": 0, "val": 0, "test": 1_000_000, "train-kept": 0, "val-heldout": 0}
DEFAULT_NUM_SEQUENCES = {"train": 200, "val": 24, "test": 24, "train-kept": 200, "val-heldout": 24}
FRAMES_RANGE = (100, 150)  # inclusive
IMAGE_SIZE = (480, 360)  # (width, height)
VISIBLE_THRESHOLD = 0.02
JPEG_QUALITY = 90
_SPLIT_CODE = {"train": 1, "test": 2, "val": 3, "train-kept": 1, "val-heldout": 4}


@dataclass(frozen=True, eq=False)
class SyntheticSequence:
    """One generated sequence.

    Attributes:
        name: sequence name.
        frames: N images, (H, W, 3) uint8 RGB.
        boxes: (N, 4) float64 (x, y, w, h) ground truth, unclipped.
        visible: (N,) bool, False where the target is fully occluded or out of view.
        visible_ratio: (N,) float64, the fraction of the target's area that can be seen.
        attributes: attribute labels, in ``ATTRIBUTES`` order.
        seed: the seed it was drawn from.
        split: one of ``SPLITS``.
    """

    name: str
    frames: list[np.ndarray]
    boxes: np.ndarray
    visible: np.ndarray
    visible_ratio: np.ndarray
    attributes: tuple[str, ...]
    seed: int
    split: str

    def __len__(self) -> int:
        return len(self.frames)


@dataclass(frozen=True)
class SequenceSpec:
    """What to generate for one sequence of a benchmark: ``make_sequence(seed, split, attributes, num_frames)``."""

    name: str
    seed: int
    attributes: tuple[str, ...]
    num_frames: int


# --------------------------------------------------------------------------- plans


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")


def _draw_defaults(seed: int, split: str) -> tuple[tuple[str, ...], int]:
    """The attributes (2-4, at random) and frame count a seed gets when the caller gives none."""
    rng = np.random.default_rng([_SPLIT_CODE[split], seed, 0])
    num_frames = int(rng.integers(FRAMES_RANGE[0], FRAMES_RANGE[1] + 1))
    chosen = rng.choice(len(ATTRIBUTES), size=int(rng.integers(2, 5)), replace=False)
    return tuple(ATTRIBUTES[i] for i in sorted(chosen)), num_frames


def _canonical(attributes: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    unknown = sorted(set(attributes) - set(ATTRIBUTES))
    if unknown:
        raise ValueError(f"unknown attributes {unknown}; choose from {', '.join(ATTRIBUTES)}")
    return tuple(a for a in ATTRIBUTES if a in set(attributes))


def planned_test_attributes(index: int) -> tuple[str, ...]:
    """Attributes of test sequence ``index``: ``ATTRIBUTES[(index + step * j) % 12]`` for ``j < 2 + (index + r) % 3``,
    where ``r = index // 12`` is the round and ``step`` is 5, 1, 5, 1, ... by round (so the labels of one sequence
    are distinct, each round of 12 sequences uses every attribute at least twice, and the 24 sets differ)."""
    k = len(ATTRIBUTES)
    round_ = index // k
    step = 5 if round_ % 2 == 0 else 1
    return _canonical([ATTRIBUTES[(index + step * j) % k] for j in range(2 + (index + round_) % 3)])



def benchmark_plan(split: str = "test", num_sequences: int | None = None, num_frames: int | None = None,
                   seed: int | None = None) -> tuple[SequenceSpec, ...]:
    """The sequences of a benchmark, without rendering anything.

    Args:
        split: one of ``SPLITS``.
        num_sequences: defaults to 24 (val, test) or 200 (train).
        num_frames: frames per sequence; by default each draws 100-150 from its seed.
        seed: seed of the first sequence (the others follow: seed + 1, ...); defaults to 1000000 (test), 0 (train, val).

    Returns:
        One ``SequenceSpec`` per sequence, named ``<split>_000``, ``<split>_001``, ...
    """
    _check_split(split)
    count = DEFAULT_NUM_SEQUENCES[split] if num_sequences is None else num_sequences
    if count < 1:
        raise ValueError(f"num_sequences must be positive, got {count}")
    if num_frames is not None and num_frames < 2:
        raise ValueError(f"num_frames must be at least 2, got {num_frames}")
    base = DEFAULT_SEED[split] if seed is None else seed
    specs = []
    for i in range(count):
        attributes, frames = _draw_defaults(base + i, split)
        if split in PLANNED_SPLITS:
            attributes = planned_test_attributes(i)
        specs.append(SequenceSpec(f"{split}_{i:03d}", base + i, attributes, num_frames or frames))
    return tuple(specs)


# --------------------------------------------------------------------------- sequences in memory


def make_scene(seed: int, split: str = "train", attributes: tuple[str, ...] | list[str] | None = None,
               num_frames: int | None = None, image_size: tuple[int, int] = IMAGE_SIZE,
               params: SynthParams | None = None) -> Scene:
    """The full description of one sequence (see ``make_sequence``), to render frame by frame."""
    _check_split(split)
    default_attributes, default_frames = _draw_defaults(seed, split)
    attributes = default_attributes if attributes is None else _canonical(attributes)
    num_frames = default_frames if num_frames is None else num_frames
    if num_frames < 2:
        raise ValueError(f"num_frames must be at least 2, got {num_frames}")
    if min(image_size) < 32:
        raise ValueError(f"image_size must be at least 32 x 32 pixels, got {image_size}")
    rng = np.random.default_rng([_SPLIT_CODE[split], seed, 1])
    return build_scene(rng, attributes, num_frames, tuple(image_size), SPLIT_PHOTOS[split], params or SynthParams())


def make_sequence(seed: int, split: str = "train", attributes: tuple[str, ...] | list[str] | None = None,
                  num_frames: int | None = None, image_size: tuple[int, int] = IMAGE_SIZE, *,
                  name: str | None = None, params: SynthParams | None = None) -> SyntheticSequence:
    """Generate one sequence in memory.

    Args:
        seed: any integer; with ``split`` it fixes every pixel.
        split: one of ``SPLITS`` (decides the source photos and the random stream).
        attributes: labels from ``ATTRIBUTES``; None draws 2-4 from the seed.
        num_frames: N; None draws 100-150 from the seed.
        image_size: (width, height).
        name: defaults to ``<split>_seed<seed>``.
        params: difficulty knobs; defaults to ``SynthParams()``.

    Returns:
        The frames, boxes and visibility.

    Sequences shorter than about 60 frames cannot fit every event: occlusions and exits are shortened, and on
    very short ones some events (and the distractors' crossings) are left out.
    """
    scene = make_scene(seed, split, attributes, num_frames, image_size, params)
    rendered = [render_frame(scene, t) for t in range(scene.num_frames)]
    ratio = np.clip([r.visible_ratio for r in rendered], 0.0, 1.0)
    return SyntheticSequence(
        name=name or f"{split}_seed{seed}",
        frames=[r.image for r in rendered],
        boxes=target_boxes(scene),
        visible=ratio >= VISIBLE_THRESHOLD,
        visible_ratio=ratio,
        attributes=_canonical(attributes) if attributes is not None else _draw_defaults(seed, split)[0],
        seed=seed,
        split=split,
    )


def iter_benchmark(split: str = "test", num_sequences: int | None = None, num_frames: int | None = None,
                   seed: int | None = None) -> Iterator[SyntheticSequence]:
    """Generate the sequences of ``benchmark_plan(...)`` one after another, in memory."""
    for spec in benchmark_plan(split, num_sequences, num_frames, seed):
        yield make_sequence(spec.seed, split, spec.attributes, spec.num_frames, name=spec.name)


# --------------------------------------------------------------------------- on disk


def write_sequence(sequence: SyntheticSequence, root: str | Path) -> Path:
    """Write one sequence in the OTB layout under ``root``; returns ``<root>/<name>``."""
    seq_dir = Path(root) / sequence.name
    img_dir = seq_dir / "img"
    if img_dir.exists():
        shutil.rmtree(img_dir)
    img_dir.mkdir(parents=True)
    for i, frame in enumerate(sequence.frames, start=1):
        path = img_dir / f"{i:04d}.jpg"
        if not cv2.imwrite(str(path), frame[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
            raise OSError(f"cannot write {path}")
    lines = [f"{x:.2f},{y:.2f},{w:.2f},{h:.2f}" for x, y, w, h in sequence.boxes]
    (seq_dir / "groundtruth_rect.txt").write_text("\n".join(lines) + "\n")
    (seq_dir / "visible.txt").write_text("\n".join("1" if v else "0" for v in sequence.visible) + "\n")
    return seq_dir


def benchmark_recipe(split: str = "test", num_sequences: int | None = None, num_frames: int | None = None,
                     seed: int | None = None) -> dict:
    """Everything that decides the files of a benchmark, as plain JSON data (``recipe.json``)."""
    plan = benchmark_plan(split, num_sequences, num_frames, seed)
    recipe = {
        "generator": "dimp_core.data.synthetic",
        "version": GENERATOR_VERSION,
        "split": split,
        "image_size": list(IMAGE_SIZE),
        "jpeg_quality": JPEG_QUALITY,
        "visible_threshold": VISIBLE_THRESHOLD,
        "photos": list(SPLIT_PHOTOS[split]),
        "params": asdict(SynthParams()),
        "sequences": [asdict(spec) for spec in plan],
    }
    return json.loads(json.dumps(recipe))  # tuples -> lists, as read back from disk


def write_benchmark(root: str | Path, split: str = "test", num_sequences: int | None = None,
                    num_frames: int | None = None, seed: int | None = None, progress: bool = False) -> Path:
    """Generate a benchmark (see ``benchmark_plan``) into ``root`` in the OTB layout; returns ``root``.

    ``recipe.json`` is written last, so a folder without it is incomplete. ``progress`` shows a tqdm bar.
    """
    root = Path(root)
    recipe = benchmark_recipe(split, num_sequences, num_frames, seed)
    plan = benchmark_plan(split, num_sequences, num_frames, seed)
    root.mkdir(parents=True, exist_ok=True)
    (root / "recipe.json").unlink(missing_ok=True)
    for spec in tqdm(plan, desc=f"synth-{split}", unit="seq", disable=not progress):
        write_sequence(make_sequence(spec.seed, split, spec.attributes, spec.num_frames, name=spec.name), root)
    attributes = {spec.name: list(spec.attributes) for spec in plan}
    (root / "attributes.json").write_text(json.dumps(attributes, indent=1) + "\n")
    (root / "recipe.json").write_text(json.dumps(recipe, indent=1) + "\n")
    return root


def benchmark_root(split: str = "test") -> Path:
    """``$DIMP_LAB_DATA/synth-<split>``; ``DIMP_LAB_DATA`` defaults to ``~/.cache/dimp-lab``."""
    _check_split(split)
    return Path(os.environ.get("DIMP_LAB_DATA", "~/.cache/dimp-lab")).expanduser() / f"synth-{split}"


def _is_complete(root: Path, recipe: dict) -> bool:
    """Whether ``root`` holds every file of ``recipe`` (checked by recipe, names and line counts)."""
    try:
        if json.loads((root / "recipe.json").read_text()) != recipe:
            return False
        for spec in recipe["sequences"]:
            seq_dir = root / spec["name"]
            n = spec["num_frames"]
            if len((seq_dir / "groundtruth_rect.txt").read_text().splitlines()) != n:
                return False
            if not (seq_dir / "img" / f"{n:04d}.jpg").is_file():
                return False
        return (root / "attributes.json").is_file()
    except (OSError, ValueError):
        return False


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only checks that the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        pass
    return True


def ensure_benchmark(split: str = "test", progress: bool = False) -> Path:
    """The default benchmark of ``split`` at ``benchmark_root(split)``, generated first if missing, incomplete or
    made by a different recipe. Generation goes to a temporary sibling folder, renamed when complete."""
    root = benchmark_root(split)
    recipe = benchmark_recipe(split)
    if _is_complete(root, recipe):
        return root
    for stale in root.parent.glob(f"{root.name}.partial-*"):  # left by an interrupted run
        pid = stale.name.rsplit("-", 1)[1]
        if pid.isdigit() and not _process_alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    partial = root.with_name(f"{root.name}.partial-{os.getpid()}")
    write_benchmark(partial, split, progress=progress)
    if root.exists():
        shutil.rmtree(root)
    try:
        partial.rename(root)
    except OSError:  # another process finished first
        shutil.rmtree(partial, ignore_errors=True)
        if not _is_complete(root, recipe):
            raise
    return root
