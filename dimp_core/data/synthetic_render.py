"""Rendering of one synthetic frame from a :class:`Scene`: background, sprites, light, blur, contrast, noise.

A scene is a full description of a sequence: every pose and effect for every frame is decided when it is
built, so :func:`render_frame` is a pure function of ``(scene, t)`` and frames can be rendered in any order.

Per frame ``t``::

    frame = warp(background, background_affines[t])            # camera pan / zoom / rotation
    for layer in layers:                                         # back to front
        frame = frame * (1 - a) + rgb_premultiplied              # a = warped alpha * opacity[t]
    frame *= gain[t] * (1 + spot_amplitude * gaussian(x - spot)) # illumination
    frame = line_blur(frame, blur[t])                            # motion blur
    frame = mean + contrast * (frame - mean) + noise_sigma * noise

The ground-truth box is the axis-aligned box of the target's outline under its affine map, unclipped, so it
says where the target is even when it is hidden or outside the image (LaSOT practice). ``visible_ratio`` is
the fraction of the target's alpha mass that can be seen: inside the image and not covered by later layers.

Symbols: ``Layer``, ``Scene``, ``RenderedFrame``, ``target_boxes``, ``draw_sprite``, ``line_blur``,
``render_frame``. Shapes: images (H, W, 3) RGB, affines (N, 3, 3), sizes (width, height).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from dimp_core.data.synthetic_assets import Sprite
from dimp_core.data.synthetic_motion import bounding_boxes, to_cv2, transform_points

# --------------------------------------------------------------------------- scene description


@dataclass(frozen=True, eq=False)
class Layer:
    """One sprite in the scene.

    Attributes:
        sprite: its appearance.
        affines: (N, 3, 3) sprite pixels -> image pixels, camera included.
        opacity: (N,) in [0, 1]; 0 hides the layer in that frame.
        role: ``target``, ``distractor``, ``occluder`` or ``object``.
    """

    sprite: Sprite
    affines: np.ndarray
    opacity: np.ndarray
    role: str


@dataclass(frozen=True, eq=False)
class Scene:
    """Everything needed to render every frame of one sequence.

    Attributes:
        image_size: (width, height) of the frames.
        background: (Hb, Wb, 3) uint8 RGB world image (clutter included).
        background_affines: (N, 3, 3) world pixels -> image pixels (the camera).
        layers: sprites drawn back to front.
        target: index of the target in ``layers``.
        gain: (N, 3) per-channel illumination gain.
        spot: (N, 4) a light (amplitude > 0) or shadow (< 0): x, y, sigma in pixels, amplitude.
        blur: (N, 2) motion-blur length in pixels (< 2: none) and direction in degrees.
        contrast: factor applied to every frame's deviations from its mean colour.
        noise_sigma: standard deviation of the sensor noise, in grey levels.
        noise: (K, H, W, 3) float32 standard-normal fields; frame ``t`` uses ``noise[noise_index[t]]``.
        noise_index: (N,) int.
    """

    image_size: tuple[int, int]
    background: np.ndarray
    background_affines: np.ndarray
    layers: tuple[Layer, ...]
    target: int
    gain: np.ndarray
    spot: np.ndarray
    blur: np.ndarray
    contrast: float
    noise_sigma: float
    noise: np.ndarray
    noise_index: np.ndarray

    @property
    def num_frames(self) -> int:
        return len(self.background_affines)


@dataclass(frozen=True, eq=False)
class RenderedFrame:
    """One rendered frame: ``image`` (H, W, 3) uint8 RGB, the target's ``visible_ratio`` in [0, 1], and
    ``target_alpha`` (H, W) float32, the target's own coverage of each pixel before anything hides it."""

    image: np.ndarray
    visible_ratio: float
    target_alpha: np.ndarray


def target_boxes(scene: Scene) -> np.ndarray:
    """(N, 4) float64 (x, y, w, h) ground truth: the box of the target's outline in every frame, unclipped."""
    layer = scene.layers[scene.target]
    return bounding_boxes(layer.affines, layer.sprite.hull)


# --------------------------------------------------------------------------- drawing


def _mip_level(sprite: Sprite, affine: np.ndarray) -> int:
    """The pyramid level whose resolution is closest above what the affine map asks for."""
    scale = np.sqrt(abs(np.linalg.det(affine[:2, :2])))
    level = int(np.floor(np.log2(1.0 / max(scale, 1e-6))))
    return min(max(level, 0), len(sprite.levels) - 1)


def draw_sprite(frame: np.ndarray, sprite: Sprite, affine: np.ndarray,
                opacity: float = 1.0) -> tuple[tuple[slice, slice], np.ndarray] | None:
    """Composite ``sprite`` over ``frame`` (H, W, 3) float32 in place, through ``affine`` (3, 3).

    Returns:
        The region of ``frame`` touched (row slice, column slice) and the sprite's alpha (h, w) there, or None
        when the sprite falls outside the frame.
    """
    level = _mip_level(sprite, affine)
    image = sprite.levels[level]
    m = affine @ np.diag([2.0**level, 2.0**level, 1.0])  # level pixels -> level-0 pixels -> frame
    h, w = image.shape[:2]
    corners = transform_points(m[None], np.array([[0.0, 0.0], [w, 0.0], [0.0, h], [w, h]]))[0]
    x0, y0 = np.floor(corners.min(0)).astype(int) - 1
    x1, y1 = np.ceil(corners.max(0)).astype(int) + 1
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, frame.shape[1]), min(y1, frame.shape[0])
    if x1 <= x0 or y1 <= y0:
        return None
    shift = np.array([[1.0, 0.0, -x0], [0.0, 1.0, -y0], [0.0, 0.0, 1.0]])
    warped = cv2.warpAffine(image, to_cv2(shift @ m), (int(x1 - x0), int(y1 - y0)), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0))  # (h, w, 4)
    if opacity < 1.0:
        warped *= opacity
    alpha = warped[:, :, 3]
    region = (slice(y0, y1), slice(x0, x1))
    frame[region] = frame[region] * (1.0 - alpha[:, :, None]) + warped[:, :, :3]
    return region, alpha


def line_blur(frame: np.ndarray, length: float, angle_deg: float) -> np.ndarray:
    """Average of ``frame`` shifted along a line of ``length`` pixels (a linear motion-blur kernel).

    Shifts are whole pixels along the rasterised line; much faster than ``cv2.filter2D`` for long kernels.
    """
    n = int(round(length))
    if n < 2:
        return frame
    a = np.deg2rad(angle_deg)
    steps = np.arange(n) - (n - 1) / 2
    dx, dy = np.round(steps * np.cos(a)).astype(int), np.round(steps * np.sin(a)).astype(int)
    p = int(max(np.abs(dx).max(), np.abs(dy).max()))
    padded = cv2.copyMakeBorder(frame, p, p, p, p, cv2.BORDER_REPLICATE)
    h, w = frame.shape[:2]
    out = np.zeros_like(frame)
    for sx, sy in zip(dx, dy, strict=True):
        out += padded[p + sy : p + sy + h, p + sx : p + sx + w]
    return out / n


def _light_field(size: tuple[int, int], gain: np.ndarray, spot: np.ndarray) -> np.ndarray:
    """(H, W, 3) float32 multiplicative illumination: per-channel gain times a Gaussian light or shadow."""
    w, h = size
    x, y, sigma, amplitude = spot
    if amplitude == 0:
        return np.broadcast_to(gain.astype(np.float32), (h, w, 3))
    gx = np.exp(-0.5 * ((np.arange(w) + 0.5 - x) / sigma) ** 2)
    gy = np.exp(-0.5 * ((np.arange(h) + 0.5 - y) / sigma) ** 2)
    field = 1.0 + amplitude * np.outer(gy, gx)  # (H, W)
    return (np.maximum(field, 0.05)[:, :, None] * gain).astype(np.float32)


# --------------------------------------------------------------------------- one frame


def render_frame(scene: Scene, t: int) -> RenderedFrame:
    """Render frame ``t`` of ``scene``."""
    w, h = scene.image_size
    frame = cv2.warpAffine(scene.background, to_cv2(scene.background_affines[t]), (w, h), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REFLECT_101).astype(np.float32)
    target_alpha = np.zeros((h, w), np.float32)
    seen = np.zeros((h, w), np.float32)  # target alpha not yet covered by later layers
    for index, layer in enumerate(scene.layers):
        if layer.opacity[t] <= 0:
            continue
        drawn = draw_sprite(frame, layer.sprite, layer.affines[t], float(layer.opacity[t]))
        if drawn is None:
            continue
        region, alpha = drawn
        if index == scene.target:
            target_alpha[region] = alpha
            seen[region] = alpha
        elif index > scene.target:
            seen[region] *= 1.0 - alpha

    frame *= _light_field(scene.image_size, scene.gain[t], scene.spot[t])
    frame = line_blur(frame, scene.blur[t, 0], scene.blur[t, 1])
    if scene.contrast != 1.0:
        mean = frame.mean((0, 1), keepdims=True)
        frame = mean + scene.contrast * (frame - mean)
    if scene.noise_sigma > 0:
        frame += scene.noise_sigma * scene.noise[scene.noise_index[t]]
    image = np.clip(frame + 0.5, 0, 255).astype(np.uint8)

    target = scene.layers[scene.target]
    area = target.sprite.area * abs(np.linalg.det(target.affines[t, :2, :2])) * float(target.opacity[t])
    return RenderedFrame(image, float(seen.sum() / max(area, 1e-6)), target_alpha)
