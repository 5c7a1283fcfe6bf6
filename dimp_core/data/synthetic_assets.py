"""Appearance for the synthetic benchmark: offline photos, procedural textures and sprites.

Everything here is a pure function of a ``numpy.random.Generator`` and the photo list it is given, so a seeded
generator gives the same pixels every time.

Photos (SPEC section 4) ship offline inside installed packages. The two splits use disjoint photos:

- ``TRAIN_PHOTOS``: scikit-image astronaut, rocket, immunohistochemistry, hubble_deep_field, retina, brick, grass,
  gravel, text, cell, clock, colorwheel; scikit-learn china.
- ``TEST_PHOTOS``: scikit-image chelsea (also published as ``cat``), coffee, camera, coins, moon, page,
  stereo_motorcycle (left view); scikit-learn flower; matplotlib grace_hopper.

A *sprite* is an object to paste into a frame: premultiplied RGBA in float32 (values 0-255), a pyramid of
half-resolution copies for cheap, alias-free shrinking, and the convex outline of its mask, from which boxes are
computed exactly. Sprite coordinates are continuous pixels: pixel ``(i, j)`` covers ``[j, j + 1) x [i, i + 1)``.

Symbols: ``load_photo``, ``noise_texture``, ``procedural_texture``, ``make_background``, ``Sprite``,
``make_sprite``, ``shape_mask``, ``photo_sprite``, ``shape_sprite``, ``look_alike``.
Shapes: images are (H, W, 3) RGB, masks (H, W), sizes are (width, height).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

# --------------------------------------------------------------------------- photos


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data

        return getattr(skimage.data, name)()

    return load


def _sklearn(filename: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from sklearn.datasets import load_sample_image

        return load_sample_image(filename)

    return load


def _grace_hopper() -> np.ndarray:
    from matplotlib import cbook

    with cbook.get_sample_data("grace_hopper.jpg") as f:
        data = np.frombuffer(f.read(), np.uint8)
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _motorcycle() -> np.ndarray:
    import skimage.data

    return skimage.data.stereo_motorcycle()[0]


PHOTO_SOURCES: dict[str, Callable[[], np.ndarray]] = {
    # train
    "astronaut": _skimage("astronaut"),
    "rocket": _skimage("rocket"),
    "immunohistochemistry": _skimage("immunohistochemistry"),
    "hubble_deep_field": _skimage("hubble_deep_field"),
    "retina": _skimage("retina"),
    "brick": _skimage("brick"),
    "grass": _skimage("grass"),
    "gravel": _skimage("gravel"),
    "text": _skimage("text"),
    "cell": _skimage("cell"),
    "clock": _skimage("clock"),
    "colorwheel": _skimage("colorwheel"),
    "china": _sklearn("china.jpg"),
    # test
    "chelsea": _skimage("chelsea"),
    "coffee": _skimage("coffee"),
    "camera": _skimage("camera"),
    "coins": _skimage("coins"),
    "moon": _skimage("moon"),
    "page": _skimage("page"),
    "motorcycle": _motorcycle,
    "flower": _sklearn("flower.jpg"),
    "grace_hopper": _grace_hopper,
}

TRAIN_PHOTOS: tuple[str, ...] = (
    "astronaut", "rocket", "immunohistochemistry", "hubble_deep_field", "retina", "brick", "grass", "gravel",
    "text", "cell", "clock", "colorwheel", "china",
)
TEST_PHOTOS: tuple[str, ...] = (
    "chelsea", "coffee", "camera", "coins", "moon", "page", "motorcycle", "flower", "grace_hopper",
)


@functools.cache
def load_photo(name: str) -> np.ndarray:
    """One source photo as a read-only (H, W, 3) uint8 RGB array (grayscale photos are repeated to 3 channels)."""
    if name not in PHOTO_SOURCES:
        raise ValueError(f"unknown photo {name!r}; choose from {', '.join(PHOTO_SOURCES)}")
    img = np.asarray(PHOTO_SOURCES[name]())
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    img = np.ascontiguousarray(img[:, :, :3].astype(np.uint8))
    img.setflags(write=False)
    return img


# --------------------------------------------------------------------------- procedural textures


def _random_color(rng: np.random.Generator) -> np.ndarray:
    """(3,) float32 saturated-ish RGB colour in [0, 255]."""
    hsv = np.array([[[rng.uniform(0, 180), rng.uniform(80, 255), rng.uniform(60, 255)]]], np.float32)
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)


def noise_texture(rng: np.random.Generator, size: tuple[int, int], cells: int = 4, octaves: int = 4) -> np.ndarray:
    """Multi-octave value noise: (H, W) float32 in [0, 1]; ``cells`` is the coarsest grid resolution."""
    w, h = size
    out = np.zeros((h, w), np.float32)
    amp, total = 1.0, 0.0
    for k in range(octaves):
        n = cells * 2**k
        grid = rng.random((n + 1, max(2, round(n * h / w)) + 1)).astype(np.float32)
        out += amp * cv2.resize(grid.T, (w, h), interpolation=cv2.INTER_CUBIC)
        total += amp
        amp *= 0.55
    out /= total
    return (out - out.min()) / max(float(out.max() - out.min()), 1e-6)


def _pattern(rng: np.random.Generator, kind: str, size: tuple[int, int]) -> np.ndarray:
    """(H, W) float32 pattern in [0, 1] of one ``kind``: noise, gradient, stripes, checker or blobs."""
    w, h = size
    if kind == "noise":
        return noise_texture(rng, size, cells=int(rng.integers(2, 8)))
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    theta = rng.uniform(0, np.pi)
    u = x * np.cos(theta) + y * np.sin(theta)
    if kind == "gradient":
        return (u - u.min()) / max(float(u.max() - u.min()), 1e-6)
    period = rng.uniform(6, 40)
    if kind == "stripes":
        return 0.5 + 0.5 * np.sign(np.sin(2 * np.pi * u / period)).astype(np.float32)
    if kind == "checker":
        v = -x * np.sin(theta) + y * np.cos(theta)
        return ((np.floor(u / period) + np.floor(v / period)) % 2).astype(np.float32)
    if kind == "blobs":
        return (noise_texture(rng, size, cells=int(rng.integers(3, 10)), octaves=2) > 0.5).astype(np.float32)
    raise ValueError(f"unknown pattern {kind!r}")


PATTERNS = ("noise", "gradient", "stripes", "checker", "blobs")


def procedural_texture(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """A two-colour pattern plus fine noise: (H, W, 3) float32 RGB in [0, 255]."""
    pattern = _pattern(rng, str(rng.choice(PATTERNS)), size)
    c0, c1 = _random_color(rng), _random_color(rng)
    img = c0 + pattern[:, :, None] * (c1 - c0)
    detail = noise_texture(rng, size, cells=int(rng.integers(8, 24)), octaves=2)
    img = img * (0.8 + 0.4 * detail[:, :, None])
    return np.clip(img, 0, 255).astype(np.float32)


def photo_crop(rng: np.random.Generator, photo: np.ndarray, size: tuple[int, int], zoom: float = 1.0) -> np.ndarray:
    """A random crop of ``photo`` resized to ``size``: (H, W, 3) float32. ``zoom`` > 1 magnifies the photo."""
    w, h = size
    ph, pw = photo.shape[:2]
    scale = max(w / pw, h / ph) * zoom  # output pixels per photo pixel, at least covering
    cw, ch = min(pw, round(w / scale)), min(ph, round(h / scale))
    x0, y0 = int(rng.integers(0, pw - cw + 1)), int(rng.integers(0, ph - ch + 1))
    crop = photo[y0 : y0 + ch, x0 : x0 + cw]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(np.ascontiguousarray(crop), (w, h), interpolation=interp).astype(np.float32)


def make_background(rng: np.random.Generator, photos: tuple[str, ...], size: tuple[int, int]) -> np.ndarray:
    """A textured backdrop: a photo (possibly blended with a pattern) or a pure pattern; (H, W, 3) float32."""
    if rng.random() < 0.7:
        img = photo_crop(rng, load_photo(str(rng.choice(photos))), size, zoom=rng.uniform(1.0, 1.8))
        if rng.random() < 0.3:
            img = img * rng.uniform(0.6, 1.0, 3).astype(np.float32)  # tint grayscale photos
        if rng.random() < 0.3:
            mix = rng.uniform(0.2, 0.5)
            img = (1 - mix) * img + mix * procedural_texture(rng, size)
    else:
        img = procedural_texture(rng, size)
    return img.astype(np.float32)


# --------------------------------------------------------------------------- sprites


@dataclass(frozen=True)
class Sprite:
    """An object to paste: premultiplied RGBA pyramid and the convex outline of its mask.

    Attributes:
        levels: premultiplied RGBA float32 images; ``levels[k]`` has shape (H / 2**k, W / 2**k, 4).
        hull: (K, 2) convex outline of the mask (alpha > 0.5) in continuous level-0 pixels, x before y.
        area: sum of the alpha channel of level 0, in pixels.
    """

    levels: tuple[np.ndarray, ...]
    hull: np.ndarray
    area: float

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of level 0."""
        return self.levels[0].shape[1], self.levels[0].shape[0]


def _mask_hull(alpha: np.ndarray) -> np.ndarray:
    """(K, 2) convex outline, in continuous pixels, of the pixels whose alpha exceeds one half."""
    ys, xs = np.nonzero(alpha > 0.5)
    if len(xs) == 0:
        raise ValueError("sprite mask is empty")
    corners = np.concatenate([np.stack([xs + dx, ys + dy], 1) for dx in (0, 1) for dy in (0, 1)])
    return cv2.convexHull(corners.astype(np.float32))[:, 0, :].astype(np.float64)


def make_sprite(rgb: np.ndarray, alpha: np.ndarray, num_levels: int = 4) -> Sprite:
    """Build a ``Sprite`` from straight (not premultiplied) colour (H, W, 3) and alpha (H, W) in [0, 1]."""
    pad = 2**num_levels
    h, w = alpha.shape
    ph, pw = -(-(h + 2) // pad) * pad, -(-(w + 2) // pad) * pad  # a transparent border, sizes divisible by 2**L
    rgba = np.zeros((ph, pw, 4), np.float32)
    oy, ox = (ph - h) // 2, (pw - w) // 2
    rgba[oy : oy + h, ox : ox + w, :3] = rgb * alpha[:, :, None]
    rgba[oy : oy + h, ox : ox + w, 3] = alpha
    levels = [rgba]
    for _ in range(num_levels - 1):
        levels.append(cv2.pyrDown(levels[-1]))
    return Sprite(levels=tuple(levels), hull=_mask_hull(rgba[:, :, 3]), area=float(rgba[:, :, 3].sum()))


SHAPES = ("ellipse", "polygon", "rounded_rect", "star")


def shape_mask(rng: np.random.Generator, kind: str, size: tuple[int, int]) -> np.ndarray:
    """An anti-aliased (H, W) float32 mask in [0, 1] of one ``kind`` of shape filling ``size``."""
    w, h = size
    ss = 4  # supersampling factor for smooth edges
    canvas = np.zeros((h * ss, w * ss), np.uint8)
    cx, cy, rx, ry = w * ss / 2, h * ss / 2, w * ss / 2 - 1, h * ss / 2 - 1
    if kind == "ellipse":
        cv2.ellipse(canvas, (round(cx), round(cy)), (round(rx), round(ry)), 0, 0, 360, 255, -1)
    elif kind in ("polygon", "star"):
        n = int(rng.integers(5, 9))
        if kind == "polygon":
            angles, radii = np.sort(rng.uniform(0, 2 * np.pi, n)), rng.uniform(0.6, 1.0, n)
        else:  # a star: n points, alternating outer and inner radius
            angles, radii = np.linspace(0, 2 * np.pi, 2 * n + 1)[:-1], np.tile([1.0, 0.5], n)
        pts = np.stack([cx + rx * radii * np.cos(angles), cy + ry * radii * np.sin(angles)], 1)
        cv2.fillPoly(canvas, [np.round(pts).astype(np.int32)], 255)
    elif kind == "rounded_rect":
        r = round(min(rx, ry) * rng.uniform(0.1, 0.5))
        x0, y0, x1, y1 = 0, 0, w * ss - 1, h * ss - 1
        cv2.rectangle(canvas, (x0 + r, y0), (x1 - r, y1), 255, -1)
        cv2.rectangle(canvas, (x0, y0 + r), (x1, y1 - r), 255, -1)
        for px, py in ((x0 + r, y0 + r), (x1 - r, y0 + r), (x0 + r, y1 - r), (x1 - r, y1 - r)):
            cv2.circle(canvas, (px, py), r, 255, -1)
    else:
        raise ValueError(f"unknown shape {kind!r}; choose from {', '.join(SHAPES)}")
    return cv2.resize(canvas, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def _object_size(rng: np.random.Generator, max_side: int, aspect: tuple[float, float]) -> tuple[int, int]:
    """(width, height) with the larger side ``max_side`` and width / height drawn log-uniformly in ``aspect``."""
    ratio = float(np.exp(rng.uniform(np.log(aspect[0]), np.log(aspect[1]))))
    if ratio >= 1:
        return max_side, max(4, round(max_side / ratio))
    return max(4, round(max_side * ratio)), max_side


def photo_sprite(rng: np.random.Generator, photos: tuple[str, ...], max_side: int = 128,
                 aspect: tuple[float, float] = (0.5, 2.0), shapes: tuple[str, ...] = SHAPES) -> Sprite:
    """A crop of a random photo inside a random shape, with a thin dark rim that separates it from the scene."""
    size = _object_size(rng, max_side, aspect)
    rgb = photo_crop(rng, load_photo(str(rng.choice(photos))), size, zoom=rng.uniform(1.5, 4.0))
    rgb = np.clip(rgb * rng.uniform(0.8, 1.25, 3), 0, 255).astype(np.float32)
    alpha = shape_mask(rng, str(rng.choice(shapes)), size)
    return make_sprite(_rim(rgb, alpha, rng), alpha)


def shape_sprite(rng: np.random.Generator, max_side: int = 128, aspect: tuple[float, float] = (0.5, 2.0),
                 shapes: tuple[str, ...] = SHAPES) -> Sprite:
    """A procedural shape filled with a procedural texture."""
    size = _object_size(rng, max_side, aspect)
    rgb = procedural_texture(rng, size)
    alpha = shape_mask(rng, str(rng.choice(shapes)), size)
    return make_sprite(_rim(rgb, alpha, rng), alpha)


def _rim(rgb: np.ndarray, alpha: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Darken or lighten the outer band of the mask, as real objects have edges; returns (H, W, 3) float32."""
    width = max(1, round(min(alpha.shape) * 0.05))
    inner = cv2.erode((alpha > 0.5).astype(np.uint8), np.ones((2 * width + 1, 2 * width + 1), np.uint8))
    band = ((alpha > 0.5) & (inner == 0))[:, :, None]
    tone = rng.uniform(0.2, 0.5) if rng.random() < 0.7 else rng.uniform(1.4, 1.8)
    return np.where(band, np.clip(rgb * tone, 0, 255), rgb).astype(np.float32)


def look_alike(rng: np.random.Generator, sprite: Sprite, color_jitter: float) -> Sprite:
    """A copy of ``sprite`` with each colour channel scaled by a factor within 1 +- ``color_jitter``."""
    gains = (1.0 + rng.uniform(-color_jitter, color_jitter, 3)).astype(np.float32)
    levels = []
    for level in sprite.levels:
        rgba = level.copy()
        rgba[:, :, :3] = np.minimum(rgba[:, :, :3] * gains, 255.0 * rgba[:, :, 3:])  # stays premultiplied-valid
        levels.append(rgba)
    return Sprite(levels=tuple(levels), hull=sprite.hull, area=sprite.area)


def recolor_towards(sprite: Sprite, color: np.ndarray, contrast: float) -> Sprite:
    """``sprite`` with its colours pulled towards ``color`` (3,): c' = color + contrast * (c - mean(c))."""
    rgba0 = sprite.levels[0]
    a = rgba0[:, :, 3:]
    mean = (rgba0[:, :, :3].sum((0, 1)) / max(float(a.sum()), 1e-6)).astype(np.float32)
    levels = []
    for level in sprite.levels:
        rgba = level.copy()
        alpha = rgba[:, :, 3:]
        straight = rgba[:, :, :3] / np.maximum(alpha, 1e-6)
        straight = np.clip(color + contrast * (straight - mean), 0, 255)
        rgba[:, :, :3] = straight * alpha
        levels.append(rgba)
    return Sprite(levels=tuple(levels), hull=sprite.hull, area=sprite.area)
